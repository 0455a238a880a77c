"""Bad input to the SMC runner: clear errors that name the argument or the step."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi


def _fk(log_potential, num_steps=5):
    return pi.smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=lambda key, x, t: x + jax.random.normal(key, x.shape),
        log_potential=log_potential,
        num_steps=num_steps)


def test_nan_potential_is_reported_with_its_step(key):
    fk = _fk(lambda xp, x, t: jnp.where((t == 3) & (x > 0), jnp.nan, -x ** 2))
    with pytest.raises(ValueError, match=r"NaN or \+inf .* at step 3"):
        pi.smc.run(key, fk, 100)
    # The pure scan reports the same through Info instead of raising.
    _, info = pi.smc.scan(key, fk, 100, pi.particles.systematic, pi.smc.ess_below(0.5))
    assert int(info.num_nonfinite[3]) > 0 and int(info.num_nonfinite[:3].sum()) == 0


def test_all_zero_weights_is_explained(key):
    fk = _fk(lambda xp, x, t: jnp.where(t == 2, -jnp.inf, 0.0) * jnp.ones_like(x))
    with pytest.raises(ValueError, match="every particle has zero weight at step 2"):
        pi.smc.run(key, fk, 50)


def test_non_finite_initial_log_weights(key):
    fk = _fk(lambda xp, x, t: jnp.where(xp is None, jnp.inf, 0.0) * jnp.ones_like(x))
    with pytest.raises(ValueError, match="at step 0"):
        pi.smc.run(key, fk, 10)


def test_argument_validation(key):
    fk = _fk(lambda xp, x, t: -x ** 2)
    with pytest.raises(ValueError, match="num_particles must be >= 1"):
        pi.smc.run(key, fk, 0)
    with pytest.raises(TypeError, match="num_particles must be an integer"):
        pi.smc.run(key, fk, 10.5)
    with pytest.raises(TypeError, match="fk must be a probinfer.smc.FeynmanKac"):
        pi.smc.run(key, lambda: None, 10)
    with pytest.raises(ValueError, match="resampling must be one of"):
        pi.smc.run(key, fk, 10, resampling="bogus")
    with pytest.raises(ValueError, match="ess fraction"):
        pi.smc.run(key, fk, 10, ess_threshold=1.5)
    with pytest.raises(ValueError, match="policy.schedule must have shape"):
        pi.smc.run(key, fk, 10, policy=pi.smc.every(2, num_steps=7))
    with pytest.raises(ValueError, match="policy must be"):
        pi.smc.run(key, fk, 10, policy="sometimes")
    with pytest.raises(ValueError, match="log_potential must return shape"):
        pi.smc.run(key, _fk(lambda xp, x, t: jnp.zeros(3)), 10)
    with pytest.raises(TypeError, match="FeynmanKac.move must be callable"):
        pi.smc.FeynmanKac(lambda k, n: None, 3, lambda *a: None, 4)
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        _fk(lambda xp, x, t: x, num_steps=0)
    with pytest.raises(ValueError, match="steps must lie in"):
        pi.smc.at_steps([0, 9], num_steps=5)


def test_single_step_model(key):
    fk = _fk(lambda xp, x, t: -0.5 * x ** 2, num_steps=1)
    res = pi.smc.run(key, fk, 20_000)
    # log E[exp(-x²/2)] for x ~ N(0, 1) is -½ log 2.
    assert abs(float(res.log_evidence) + 0.5 * np.log(2)) < 0.02
    assert res.info.ess.shape == (1,)


def test_integer_seed_is_a_key(key):
    fk = _fk(lambda xp, x, t: -0.5 * x ** 2)
    a = pi.smc.run(7, fk, 50)
    b = pi.smc.run(jax.random.key(7), fk, 50)
    np.testing.assert_array_equal(np.asarray(a.samples), np.asarray(b.samples))
    with pytest.raises(TypeError, match="key must be a PRNG key .* or an integer seed"):
        pi.smc.run(1.5, fk, 10)
    with pytest.raises(ValueError, match="single PRNG key, got a batch of shape \\(3,\\)"):
        pi.smc.run(jax.random.split(key, 3), fk, 10)


def test_init_with_wrong_particle_count_names_init(key):
    fk = pi.smc.FeynmanKac(init=lambda key, n: jax.random.normal(key, (n + 1,)),
                           move=lambda key, x, t: x, log_potential=lambda xp, x, t: -x ** 2,
                           num_steps=3)
    with pytest.raises(ValueError, match=r"FeynmanKac.init\(key, n\) must return particles "
                                         r"whose leaves have leading axis n = 100, got shape "
                                         r"\(101,\)"):
        pi.smc.run(key, fk, 100)


def test_move_that_changes_shape_names_move(key):
    fk = pi.smc.FeynmanKac(init=lambda key, n: jax.random.normal(key, (n, 2)),
                           move=lambda key, x, t: x[:, 0],
                           log_potential=lambda xp, x, t: jnp.zeros(x.shape[0]), num_steps=3)
    with pytest.raises(ValueError, match=r"FeynmanKac.move must keep the shape and dtype of "
                                         r"the particles: got float32\[100\] from x_prev of "
                                         r"float32\[100, 2\]"):
        pi.smc.run(key, fk, 100)
    fk = pi.smc.FeynmanKac(init=lambda key, n: {"a": jnp.zeros(n)},
                           move=lambda key, x, t: {"b": x["a"]},
                           log_potential=lambda xp, x, t: jnp.zeros(100), num_steps=3)
    with pytest.raises(ValueError, match="FeynmanKac.move must return particles with the "
                                         "structure of its input"):
        pi.smc.run(key, fk, 100)


def test_collapsed_final_ess_warns_with_its_value(key):
    """One sharp potential and no resampling: the ESS of 2 000 particles falls to a few."""
    fk = _fk(lambda xp, x, t: jnp.where(t == 4, -0.5 * (x - 6.0) ** 2 / 0.01, 0.0), 5)
    with pytest.warns(RuntimeWarning, match=r"effective sample size collapsed to [0-9.]+ of "
                                            r"2000 particles .*Use more particles"):
        res = pi.smc.run(key, fk, 2000, policy="never")
    assert float(res.ess) < 20
