"""``pi.design``: counterfactual design search — small, plausible, diverse changes of a
design that meet performance targets.

Regenwetter, Abu Obaideh & Ahmed (2023), "Counterfactuals for design: a model-agnostic
method for design recommendations" (MCD), with a second search of our own:

* :func:`counterfactuals`: the entry point (``method='nsga2'`` or ``'smc'``);
* :class:`Targets`: ranges, classes and minimised outputs of the predictor;
* :class:`Real`, :class:`Integer`, :class:`Categorical`, :class:`Binary`,
  :class:`DesignSpace`: mixed-variable design spaces;
* :func:`gower_distance`, :func:`sparsity`: the distances of the objectives;
* :func:`dpp_select`, :func:`pareto_front`, :func:`hypervolume`: selection and reporting;
* :func:`plot_pareto`.

Needs pymoo (``pip install 'probinfer[design]'``) for NSGA-II, Pareto fronts and the
hypervolume.
"""

from probinfer.design._api import HYPERVOLUME_OBJECTIVES, counterfactuals
from probinfer.design._plots import plot_pareto
from probinfer.design._select import dpp_select, hypervolume, pareto_front
from probinfer.design._space import (Binary, Categorical, DesignSpace, Integer, Real,
                                     gower_distance, sparsity)
from probinfer.design._targets import Targets

__all__ = ["counterfactuals", "Targets", "Real", "Integer", "Categorical", "Binary",
           "DesignSpace", "gower_distance", "sparsity", "dpp_select", "pareto_front",
           "hypervolume", "plot_pareto", "HYPERVOLUME_OBJECTIVES"]
