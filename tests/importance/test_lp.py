"""l_p sensitivity sampling: invariants of leverage scores, Lewis weights, sensitivities."""

import numpy as np
import pytest
import jax

import probinfer as pi


def _heavy_matrix(rng, n=60, d=3):
    # Rows scaled by heavy-tailed factors: a few coherent rows carry most of the mass.
    return rng.standard_normal((n, d)) * np.abs(rng.standard_t(1.5, (n, 1)))


def test_leverage_scores_sum_to_rank(rng, x64):
    A = _heavy_matrix(rng)
    np.testing.assert_allclose(float(pi.importance.leverage_scores(A).sum()), 3.0, rtol=1e-8)
    deficient = np.c_[A, A[:, 0] - 2 * A[:, 2]]
    tau = pi.importance.leverage_scores(deficient)
    np.testing.assert_allclose(float(tau.sum()), 3.0, rtol=1e-8)
    assert np.all((np.asarray(tau) >= -1e-12) & (np.asarray(tau) <= 1 + 1e-12))


@pytest.mark.parametrize("p", [1.0, 1.5, 3.0])
def test_lewis_weights_sum_to_d_and_bound_sensitivities(rng, x64, p):
    A = _heavy_matrix(rng, n=40)
    w = np.asarray(pi.importance.lewis_weights(A, p))
    np.testing.assert_allclose(w.sum(), 3.0, rtol=1e-6)
    s = np.asarray(pi.importance.lp_sensitivities(A, p, method="exact"))
    approx = np.asarray(pi.importance.lp_sensitivities(A, p, method="approximate"))
    # The Lewis-weight bound is an upper bound of the exact sensitivities.
    assert np.all(s <= approx * (1 + 1e-6) + 1e-9)
    # Total sensitivity: at most d for p <= 2, at most d^{p/2} for p > 2.
    assert s.sum() <= 3.0 ** max(1.0, p / 2) + 1e-6
    # Each exact sensitivity is attained: some x reaches it (the row itself is a witness
    # lower bound), so s_i >= |a_i^T a_i|^p / ||A a_i||_p^p.
    lower = np.abs(np.sum(A * A, axis=1)) ** p / np.sum(np.abs(A @ A.T) ** p, axis=0)
    assert np.all(s >= lower * (1 - 1e-6))


def test_l1_sensitivities_by_lp_total_at_most_d(rng, x64):
    A = _heavy_matrix(rng, n=50, d=4)
    s = np.asarray(pi.importance.lp_sensitivities(A, 1.0))
    assert 0 < s.sum() <= 4.0 + 1e-6
    # Duplicating a row halves its sensitivity (it can no longer dominate alone).
    A2 = np.r_[A, A[:1]]
    s2 = np.asarray(pi.importance.lp_sensitivities(A2, 1.0))
    np.testing.assert_allclose(s2[0], s2[-1], rtol=1e-6)
    assert s2[0] <= s[0] + 1e-9


@pytest.mark.parametrize("method", ["sensitivity", "lewis", "root-leverage",
                                    "leverage+sensitivity"])
def test_sampled_regression_keeps_reported_distortion(rng, x64, method):
    A = _heavy_matrix(rng, n=80)
    b = A @ np.ones(3) + rng.laplace(size=80)
    res = pi.importance.lp_regression(jax.random.key(3), A, b, 1.0, 40, method)
    lo, hi = res.distortion_range
    assert lo <= 1.0 <= hi or abs(lo - 1) < 1e-9
    M = np.c_[A, b]
    S = M[np.asarray(res.indices)]
    w = np.asarray(res.weights)
    for v in rng.standard_normal((100, 4)):
        ratio = np.sum(w * np.abs(S @ v)) / np.sum(np.abs(M @ v))
        assert lo - 1e-9 <= ratio <= hi + 1e-9
    assert res.cost >= res.optimal_cost * (1 - 1e-6)
    assert res.relative_error >= -1e-6


def test_sample_shapes_and_unbiasedness(rng, x64):
    A = _heavy_matrix(rng, n=30)
    x = rng.standard_normal(3)
    q = np.asarray(pi.importance.sampling_probabilities(A, 1.5, "lewis"))
    np.testing.assert_allclose(q.sum(), 1.0, rtol=1e-10)
    # sum_j w_j |a_{i_j}^T x|^p is unbiased for ||A x||_p^p: check with many draws.
    idx, w = pi.importance.lp_sample(jax.random.key(1), A, 1.5, 20000, "lewis")
    terms = 20000 * np.asarray(w) * np.abs(A[np.asarray(idx)] @ x) ** 1.5
    exact = np.sum(np.abs(A @ x) ** 1.5)
    assert abs(terms.mean() - exact) < 4 * terms.std(ddof=1) / np.sqrt(terms.size)
    idx, w = pi.importance.lp_sample(jax.random.key(0), A, 1.5, 20, "lewis")
    assert idx.shape == (20,) and w.shape == (20,)
    np.testing.assert_allclose(np.asarray(w), 1 / (20 * q[np.asarray(idx)]), rtol=1e-6)


def test_bad_input(rng):
    A = rng.standard_normal((20, 3))
    with pytest.raises(ValueError, match="p must be"):
        pi.importance.lewis_weights(A, 0.5)
    with pytest.raises(ValueError, match="rank-deficient"):
        pi.importance.lewis_weights(np.c_[A, A[:, 0]], 1.0)
    with pytest.raises(ValueError, match="rank-deficient"):
        pi.importance.lp_sample(jax.random.key(0), np.c_[A, A[:, 0]], 1.0, 5)
    with pytest.raises(ValueError, match="method"):
        pi.importance.lp_sample(jax.random.key(0), A, 1.0, 5, method="uniform")
    with pytest.raises(ValueError, match="finite"):
        pi.importance.leverage_scores(np.full((4, 2), np.nan))
