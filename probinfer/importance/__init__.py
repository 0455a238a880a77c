"""``pi.importance``: importance sampling, adaptive IS + control variates, Sobol' indices,
and l_p sensitivity sampling.

* :func:`importance_sampling`, :func:`self_normalized`, :func:`unbiased`,
  :func:`pareto_khat`, :class:`Mixture`, :func:`defensive`: the IS core over the shared
  :class:`~probinfer.Target` interface.
* :func:`expectations`: many expectations from one adaptive sample (Demange-Chryst,
  Bachoc & Morio 2023).
* :func:`sobol`: first-order and total Sobol' indices (``"ais-cv"`` or ``"pick-freeze"``),
  :func:`plot_sobol`.
* :func:`leverage_scores`, :func:`lewis_weights`, :func:`lp_sensitivities`,
  :func:`lp_sample`, :func:`lp_regression` (Woodruff & Yasuda 2023).
"""

from probinfer.importance.adaptive import (AISState, ExpectationsResult, ais_init, ais_step,
                                           expectations)
from probinfer.importance.core import (Estimate, ISInfo, Mixture, defensive, importance_sampling,
                                       pareto_khat, pareto_smooth, self_normalized, unbiased)
from probinfer.importance.lp import (LpRegressionResult, leverage_scores, lewis_weights,
                                     lp_regression, lp_sample, lp_sensitivities,
                                     sampling_probabilities)
from probinfer.importance.sobol import SobolResult, SobolSample, plot_sobol, sobol

__all__ = ["importance_sampling", "self_normalized", "unbiased", "pareto_khat", "pareto_smooth",
           "Mixture", "defensive", "ISInfo", "Estimate", "expectations", "ExpectationsResult",
           "AISState", "ais_init", "ais_step", "sobol", "SobolResult", "SobolSample", "plot_sobol",
           "leverage_scores", "lewis_weights", "lp_sensitivities", "lp_sample",
           "sampling_probabilities", "lp_regression", "LpRegressionResult"]
