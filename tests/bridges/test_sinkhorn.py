"""Log-domain Sinkhorn against exact answers: marginals, POT's entropic cost, exact OT."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi


def _problem(rng, n=60, m=45, d=2):
    x = rng.normal(size=(n, d))
    y = 0.7 * rng.normal(size=(m, d)) + 1.0
    a = rng.uniform(0.5, 1.5, n)
    b = rng.uniform(0.5, 1.5, m)
    return x, y, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("max_dense", [None, 100])
def test_marginals_are_satisfied(rng, x64, max_dense):
    x, y, a, b = _problem(rng)
    kwargs = {} if max_dense is None else {"max_dense": max_dense}
    res = pi.bridges.sinkhorn(x, y, 0.1, a=a, b=b, tol=1e-9, **kwargs)
    coupling = res.coupling if max_dense is None else res.coupling.dense()
    assert coupling.shape == (60, 45)
    row_err = float(jnp.abs(coupling.sum(1) - a).sum())
    assert row_err <= 1e-9 * 1.01 and abs(row_err - float(res.marginal_error)) < 1e-12
    assert float(jnp.abs(coupling.sum(0) - b).sum()) < 1e-12
    assert int(res.num_iterations) < 2000
    # The operator form agrees with the matrix.
    if max_dense is not None:
        v = jnp.asarray(rng.normal(size=(45, 3)))
        dense = pi.bridges.sinkhorn(x, y, 0.1, a=a, b=b, tol=1e-9)
        np.testing.assert_allclose(res.coupling @ v, dense.coupling @ v, atol=1e-12)
        np.testing.assert_allclose(res.cost, dense.cost, rtol=1e-12)
        np.testing.assert_allclose(pi.bridges.barycentric_map(res.coupling, y),
                                   pi.bridges.barycentric_map(dense.coupling, y), atol=1e-10)


def test_entropic_cost_matches_pot(rng, x64):
    ot = pytest.importorskip("ot")
    for eps in (1.0, 0.2, 0.05):
        x, y, a, b = _problem(rng)
        res = pi.bridges.sinkhorn(x, y, eps, a=a, b=b, tol=1e-10, max_iter=20000)
        cost = ot.dist(x, y)
        plan = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log", stopThr=1e-12,
                           numItermax=100000)
        np.testing.assert_allclose(float(res.cost), float(np.sum(plan * cost)), rtol=1e-7)
        np.testing.assert_allclose(np.asarray(res.coupling), plan, atol=1e-9)


def test_epsilon_to_zero_approaches_exact_ot(rng, x64):
    """Exact sandwich for uniform weights, n = m: W <= <P_eps, C> <= W + eps log n."""
    ot = pytest.importorskip("ot")
    n = 40
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + 0.5
    exact = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), ot.dist(x, y))
    gaps = []
    for eps in (0.3, 0.1, 0.03, 0.01):
        res = pi.bridges.sinkhorn(x, y, eps, tol=1e-10, max_iter=50000, epsilon_start=10.0)
        gap = float(res.cost) - exact
        assert -1e-8 <= gap <= eps * np.log(n) + 1e-8
        gaps.append(gap)
    assert gaps[-1] < 0.1 * gaps[0]


def test_callable_cost_and_euclidean(rng, x64):
    x, y, a, b = _problem(rng, 30, 20)
    res = pi.bridges.sinkhorn(x, y, 0.2, cost="euclidean", tol=1e-10)
    res_fn = pi.bridges.sinkhorn(x, y, 0.2, cost=lambda u, v: jnp.linalg.norm(u - v), tol=1e-10)
    np.testing.assert_allclose(res.cost, res_fn.cost, rtol=1e-10)
    np.testing.assert_allclose(res.f, res_fn.f, atol=1e-8)


def test_batched_and_jitted(rng, x64):
    x1, y1, _, _ = _problem(rng, 30, 30)
    x2, y2, _, _ = _problem(rng, 30, 30)
    batched = pi.bridges.sinkhorn(np.stack([x1, x2]), np.stack([y1, y2]), 0.1, tol=1e-9)
    for i, (x, y) in enumerate([(x1, y1), (x2, y2)]):
        single = pi.bridges.sinkhorn(x, y, 0.1, tol=1e-9)
        np.testing.assert_allclose(batched.cost[i], single.cost, rtol=1e-8)
    # epsilon is traced: a jitted function of it gives the eager answers.
    costs = jax.jit(lambda e: pi.bridges.sinkhorn(x1, y1, e, tol=1e-9).cost)
    np.testing.assert_allclose(costs(0.1), batched.cost[0], rtol=1e-8)


def test_epsilon_scaling_reaches_the_same_solution(rng, x64):
    x, y, a, b = _problem(rng)
    plain = pi.bridges.sinkhorn(x, y, 0.02, a=a, b=b, tol=1e-9, max_iter=50000)
    scaled = pi.bridges.sinkhorn(x, y, 0.02, a=a, b=b, tol=1e-9, max_iter=50000,
                                 epsilon_start=5.0)
    np.testing.assert_allclose(scaled.cost, plain.cost, rtol=1e-6)
    assert float(scaled.marginal_error) <= 1e-9


def test_not_converged_warns(rng):
    x, y, _, _ = _problem(rng)
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        res = pi.bridges.sinkhorn(x, y, 0.01, max_iter=3)
    assert int(res.num_iterations) == 3 and float(res.marginal_error) > 1e-6


def test_wasserstein_exact_and_divergence(rng, x64):
    pytest.importorskip("ot")
    x = rng.normal(size=(50, 2))
    # A translation is transported by itself: W_p = |shift| exactly.
    assert abs(pi.bridges.wasserstein(x, x + np.array([3.0, 4.0]), p=2) - 5.0) < 1e-9
    assert abs(pi.bridges.wasserstein(x, x + np.array([3.0, 4.0]), p=1) - 5.0) < 1e-9
    y = rng.normal(size=(50, 2)) + 1.0
    s_div = float(pi.bridges.sinkhorn_divergence(x, y, 0.01, tol=1e-8, max_iter=20000,
                                                  epsilon_start=5.0))
    w2 = pi.bridges.wasserstein(x, y, p=2) ** 2
    assert 0.0 < s_div <= w2 + 1e-6 and s_div > 0.9 * w2
    assert abs(float(pi.bridges.sinkhorn_divergence(x, x, 0.1, tol=1e-10))) < 1e-8
