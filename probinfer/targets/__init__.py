"""Target densities: the shared interface, its algebra, and analytic ground truth."""

from probinfer.targets.base import (GeometricPath, LogDensityTarget, Target, TiltedTarget,
                                    from_logdensity, geometric_path, tilt)
from probinfer.targets.gaussian import Gaussian, GaussianMixture
from probinfer.targets.numpyro import NumPyroModel, from_numpyro

__all__ = ["Target", "LogDensityTarget", "TiltedTarget", "GeometricPath", "from_logdensity",
           "tilt", "geometric_path", "Gaussian", "GaussianMixture", "from_numpyro", "NumPyroModel"]
