"""Bad input to the bridges: clear errors naming the argument."""

import numpy as np
import pytest

import probinfer as pi


def test_multimarginal_bad_input(rng):
    good = [rng.normal(size=(10, 2)), rng.normal(size=(12, 2))]
    ref = pi.bridges.Brownian()
    with pytest.raises(ValueError, match="same dimension|share one dimension"):
        pi.bridges.multimarginal([good[0], rng.normal(size=(10, 3))], [0.0, 1.0], reference=ref,
                                 sigma=0.1)
    with pytest.raises(ValueError, match="at least two times"):
        pi.bridges.multimarginal(good[:1], [0.0], reference=ref, sigma=0.1)
    with pytest.raises(ValueError, match="strictly increasing"):
        pi.bridges.multimarginal(good, [1.0, 1.0], reference=ref, sigma=0.1)
    with pytest.raises(ValueError, match="strictly increasing"):
        pi.bridges.multimarginal(good, [1.0, 0.0], reference=ref, sigma=0.1)
    bad = good[1].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"snapshots\[1\] must be finite"):
        pi.bridges.multimarginal([good[0], bad], [0.0, 1.0], reference=ref, sigma=0.1)
    for sigma in (0.0, -1.0):
        with pytest.raises(ValueError, match="sigma"):
            pi.bridges.multimarginal(good, [0.0, 1.0], reference=ref, sigma=sigma)
    with pytest.raises(ValueError, match="times must have shape"):
        pi.bridges.multimarginal(good, [0.0, 1.0, 2.0], reference=ref, sigma=0.1)
    with pytest.raises(TypeError, match="reference"):
        pi.bridges.multimarginal(good, [0.0, 1.0], reference="LV", sigma=0.1)
    with pytest.raises(ValueError, match="reference drift must return shape"):
        pi.bridges.multimarginal(good, [0.0, 1.0], reference=lambda x, p: x[:1] * p, params=1.0,
                                 sigma=0.1)


def test_sinkhorn_bad_input(rng):
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(6, 2))
    with pytest.raises(ValueError, match="epsilon"):
        pi.bridges.sinkhorn(x, y, 0.0)
    with pytest.raises(ValueError, match="same dimension"):
        pi.bridges.sinkhorn(x, rng.normal(size=(6, 3)), 0.1)
    with pytest.raises(ValueError, match="a must sum to one"):
        pi.bridges.sinkhorn(x, y, 0.1, a=np.ones(5))
    with pytest.raises(ValueError, match="a must have shape"):
        pi.bridges.sinkhorn(x, y, 0.1, a=np.ones(4) / 4)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x must be finite"):
        pi.bridges.sinkhorn(bad, y, 0.1)
    with pytest.raises(ValueError, match="cost must be"):
        pi.bridges.sinkhorn(x, y, 0.1, cost="manhattan")
    with pytest.raises(ValueError, match="epsilon_decay"):
        pi.bridges.sinkhorn(x, y, 0.1, epsilon_start=1.0, epsilon_decay=1.5)


def test_gaussian_bridge_bad_input():
    eye = np.eye(2)
    with pytest.raises(ValueError, match="sigma"):
        pi.bridges.gaussian_bridge(np.zeros(2), eye, np.zeros(2), eye, 0.0)
    with pytest.raises(ValueError, match="cov1 must be positive definite"):
        pi.bridges.gaussian_bridge(np.zeros(2), eye, np.zeros(2), -eye, 1.0)
    with pytest.raises(ValueError, match="mean1 must have shape"):
        pi.bridges.gaussian_bridge(np.zeros(2), eye, np.zeros(3), eye, 1.0)
    with pytest.raises(ValueError, match="mean0 must be finite"):
        pi.bridges.gaussian_bridge(np.array([np.nan, 0.0]), eye, np.zeros(2), eye, 1.0)
