"""Default tempered SMC on small posteriordb posteriors against their reference moments.

The reference is posteriordb's 10 000-draw reference posterior (means and sds stored in
``inference/posteriordb/``). The issue's goal at N = 2 000 with default settings is every
posterior mean within 0.2 reference sd and every sd ratio in [0.8, 1.25]. Each test checks
that goal on the average of R independent runs, with the Monte Carlo error of that check
added: 3 standard errors from the spread of the R runs (and the reference's own error, sd
over the square root of its bulk ESS). Nothing is tuned per model.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import jax

import probinfer as pi

pytest.importorskip("numpyro")

_MODELS = Path(__file__).resolve().parents[2] / "inference" / "posteriordb" / "models.py"
_spec = importlib.util.spec_from_file_location("posteriordb_suite_models", _MODELS)
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

NUM_PARTICLES = 2000
NUM_RUNS = 3
MEAN_GOAL = 0.2              # max |mean - ref| / ref-sd (issue 19)
SD_RATIO_GOAL = (0.8, 1.25)  # sd / ref-sd (issue 19)
Z = 3.0                      # standard errors of Monte Carlo slack on the check


def _replicate_moments(name, key):
    post = suite.SUITE[name]
    ref = post.reference()
    pm = pi.from_numpyro(post.model, **post.data())
    means, sds = [], []
    for k in jax.random.split(key, NUM_RUNS):
        res = pi.smc.tempered(k, pm, NUM_PARTICLES, progress_bar=False)
        draws = suite.flatten_draws(jax.vmap(pm.constrain)(res.samples), ref["names"])
        weights = np.exp(np.asarray(res.log_weights, dtype=float))
        weights /= weights.sum()
        mean = weights @ draws
        means.append(mean)
        sds.append(np.sqrt(weights @ (draws - mean) ** 2))
    return np.array(means), np.array(sds), ref


def _check_against_reference(means, sds, ref):
    ref_mcse = ref["sd"] / np.sqrt(ref["ess_bulk"])
    mean_mcse = np.sqrt(means.var(axis=0, ddof=1) / NUM_RUNS + ref_mcse ** 2)
    error = np.abs(means.mean(axis=0) - ref["mean"])
    allowed = MEAN_GOAL * ref["sd"] + Z * mean_mcse
    ratio = sds / ref["sd"]
    ratio_mcse = ratio.std(axis=0, ddof=1) / np.sqrt(NUM_RUNS)
    ratio_mean = ratio.mean(axis=0)
    names = np.array(ref["names"])
    far = error > allowed
    assert not far.any(), (
        f"posterior means of {names[far].tolist()} off by "
        f"{(error / ref['sd'])[far].round(3).tolist()} reference sd (allowed "
        f"{(allowed / ref['sd'])[far].round(3).tolist()})")
    low = ratio_mean < SD_RATIO_GOAL[0] - Z * ratio_mcse
    high = ratio_mean > SD_RATIO_GOAL[1] + Z * ratio_mcse
    assert not (low | high).any(), (
        f"sd ratios of {names[low | high].tolist()} are "
        f"{ratio_mean[low | high].round(3).tolist()}, outside {SD_RATIO_GOAL}")


def test_suite_files_are_consistent():
    for name, post in suite.SUITE.items():
        ref = post.reference()
        assert len(ref["names"]) == ref["mean"].shape[0] == ref["sd"].shape[0]
        assert (ref["sd"] > 0).all() and (ref["ess_bulk"] > 1000).all(), name
        if post.wide_priors:
            assert ref["wide_prior_effect"]["max_abs_mean_shift_in_sd"] < 0.02, name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eight_schools-eight_schools_noncentered", "arK-arK",
                                  "kilpisjarvi_mod-kilpisjarvi"])
def test_default_tempered_smc_matches_reference(name, key, x64):
    means, sds, ref = _replicate_moments(name, key)
    _check_against_reference(means, sds, ref)
