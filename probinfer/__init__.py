"""probinfer: generation as inference, on JAX.

The public API is re-exported flat here; namespaces (``pi.smc``, ``pi.ssm``,
``pi.particles``) group the algorithms.
"""

from probinfer import diagnostics, particles, smc, ssm
from probinfer import diffusion
from probinfer import zoo
from probinfer import kernels
from probinfer import steer
from probinfer.targets import from_numpyro
from probinfer.result import Result
from probinfer._checkpoint import Checkpoint
from probinfer._progress import progress_enabled, set_progress
from probinfer.targets import (Gaussian, GaussianMixture, GeometricPath, Target, from_logdensity,
                               geometric_path, tilt)

__version__ = "0.1.0"

# Application packages are imported on first attribute access (PEP 562): they pull in
# optional dependencies (pandas, pymoo, gpytorch, POT) that ``import probinfer`` must not.
_LAZY_SUBPACKAGES = ("dmcmc", "importance", "bridges", "gpdp", "design", "compare", "plot")


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        import importlib
        return importlib.import_module(f"probinfer.{name}")
    raise AttributeError(f"module 'probinfer' has no attribute {name!r}")

__all__ = ["Target", "from_logdensity", "tilt", "geometric_path", "GeometricPath", "Gaussian",
           "GaussianMixture", "Result", "smc", "ssm", "steer", "particles", "diagnostics",
           "diffusion", "zoo", "kernels", "from_numpyro", "set_progress", "progress_enabled",
           "Checkpoint"]
