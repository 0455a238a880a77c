"""from_numpyro: log densities equal NumPyro's own (with Jacobians), exact normalisation of
the unconstrained prior, the constrain map, tempered SMC in one line, and ArviZ output."""

import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer.util import constrain_fn, log_likelihood, potential_energy

import probinfer as pi

Y = jnp.array([0.3, 1.2, -0.4, 2.2, 0.9])


def model_sites(y):
    """Positive, simplex, interval (fixed and data-dependent bounds), vector and plate sites."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    w = numpyro.sample("w", dist.Dirichlet(jnp.ones(3)))
    p = numpyro.sample("p", dist.Beta(2.0, 3.0))
    a = numpyro.sample("a", dist.Uniform(-1.0, 2.0))
    b = numpyro.sample("b", dist.Uniform(a, 3.0))
    v = numpyro.sample("v", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    with numpyro.plate("groups", 4):
        theta = numpyro.sample("theta", dist.Gamma(2.0, 1.0))
    numpyro.deterministic("shift", mu + p * v.sum())
    with numpyro.plate("data", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu + p * v.sum() + w[0] + a + b + theta.mean(), sigma),
                       obs=y)


def model_factor(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    scale = numpyro.sample("scale", dist.LogNormal(0.0, 0.5))
    numpyro.factor("penalty", -0.5 * mu ** 2)
    numpyro.sample("y", dist.StudentT(4.0, mu, scale).expand([y.shape[0]]).to_event(1), obs=y)


def _points(key, dim, num=5):
    return 1.5 * jax.random.normal(key, (num, dim))


def test_log_density_equals_numpyro_potential(key, x64):
    pm = pi.from_numpyro(model_sites, Y)
    assert pm.site_names == ("a", "b", "mu", "p", "sigma", "theta", "v", "w")
    assert pm.dim == 1 + 1 + 1 + 1 + 1 + 4 + 2 + 2  # the simplex of size 3 has 2 free coordinates
    u = _points(key, pm.dim)

    @jax.jit
    @jax.vmap
    def ours(x):
        return (pm.target.log_density(x), pm.prior.log_density(x), pm.log_likelihood(x),
                pm.constrain(x))

    @jax.jit
    @jax.vmap
    def numpyro_reference(x):
        params = pm.unravel(x)
        constrained = constrain_fn(model_sites, (Y,), {}, params, return_deterministic=True)
        batch = {name: value[None] for name, value in constrained.items()}
        log_lik = jnp.sum(log_likelihood(model_sites, batch, Y)["y"])
        return -potential_energy(model_sites, (Y,), {}, params), log_lik, constrained

    target, prior, log_lik, sites = ours(u)
    expected_target, expected_ll, expected_sites = numpyro_reference(u)
    np.testing.assert_allclose(target, expected_target, rtol=1e-10)
    # The likelihood part is exactly NumPyro's per-datum log-likelihood, summed.
    np.testing.assert_allclose(log_lik, expected_ll, rtol=1e-10)
    np.testing.assert_allclose(prior, expected_target - expected_ll, rtol=1e-10, atol=1e-10)
    assert set(sites) == set(expected_sites)
    for name in expected_sites:
        np.testing.assert_allclose(sites[name], expected_sites[name], rtol=1e-10, atol=1e-12)
    back = jax.jit(jax.vmap(pm.unconstrain))(sites)
    np.testing.assert_allclose(back, u, rtol=1e-8, atol=1e-8)


def test_factor_terms_count_as_likelihood(key, x64):
    pm = pi.from_numpyro(model_factor, Y)
    for u in _points(key, pm.dim):
        params = pm.unravel(u)
        expected = -float(potential_energy(model_factor, (Y,), {}, params))
        np.testing.assert_allclose(float(pm.target.log_density(u)), expected, rtol=1e-10)
        c = pm.constrain(u)
        student = float(dist.StudentT(4.0, c["mu"], c["scale"]).log_prob(Y).sum())
        np.testing.assert_allclose(float(pm.log_likelihood(u)),
                                   student - 0.5 * float(c["mu"]) ** 2, rtol=1e-10)


def _integral(log_density, grid_1d, dim):
    mesh = jnp.stack(jnp.meshgrid(*([grid_1d] * dim), indexing="ij"), -1).reshape(-1, dim)
    cell = float(grid_1d[1] - grid_1d[0]) ** dim
    return float(jnp.sum(jnp.exp(jax.vmap(log_density)(mesh))) * cell)


@pytest.mark.parametrize("prior_dist", [dist.HalfNormal(2.0), dist.Beta(2.0, 3.0),
                                        dist.Dirichlet(jnp.array([1.5, 2.0, 3.0]))],
                         ids=["positive", "interval", "simplex"])
def test_unconstrained_prior_is_normalised(x64, prior_dist):
    """The Jacobian is right exactly when the prior of u integrates to one."""
    def model():
        numpyro.sample("z", prior_dist)

    pm = pi.from_numpyro(model)
    grid = jnp.linspace(-15.0, 15.0, 3001 if pm.dim == 1 else 601)
    # Riemann sums of these smooth densities are accurate to ~1e-6 on these grids; a wrong
    # or missing Jacobian changes the integral by O(1).
    np.testing.assert_allclose(_integral(jax.jit(pm.prior.log_density), grid, pm.dim), 1.0,
                               atol=1e-4)


def model_light(y):
    """Sites whose samplers compile quickly (the gamma-based ones are slow to compile)."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    a = numpyro.sample("a", dist.Uniform(-1.0, 2.0))
    b = numpyro.sample("b", dist.Uniform(a, 3.0))
    with numpyro.plate("groups", 4):
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(mu + b, sigma.mean()).expand([y.shape[0]]).to_event(1), obs=y)


def test_prior_draws_have_prior_moments(key):
    pm = pi.from_numpyro(model_light, Y)
    u = jax.jit(pm.prior.sample, static_argnums=1)(key, 4000)
    assert u.shape == (4000, pm.dim)
    sites = jax.jit(jax.vmap(pm.constrain))(u)
    assert sites["sigma"].shape == (4000, 4)
    checks = {  # name: (draws, exact mean, exact sd)
        "mu": (sites["mu"], 0.0, 1.0),
        "sigma0": (sites["sigma"][:, 0], math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi)),
        "sigma3": (sites["sigma"][:, 3], math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi)),
        "a": (sites["a"], 0.5, 3 / math.sqrt(12)),
    }
    for name, (draws, mean, sd) in checks.items():
        z = (float(jnp.mean(draws)) - mean) / (sd / math.sqrt(4000))
        assert abs(z) < 4.0, (name, z)
    # b | a ~ Uniform(a, 3): E[b] = E[(a + 3) / 2] = 1.75.
    z = (float(jnp.mean(sites["b"])) - 1.75) / (float(jnp.std(sites["b"])) / math.sqrt(4000))
    assert abs(z) < 4.0 and bool(jnp.all(sites["b"] > sites["a"]))


def conjugate(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    w = numpyro.sample("w", dist.Dirichlet(jnp.ones(3)))
    with numpyro.plate("data", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    numpyro.deterministic("w_max", jnp.max(w))


def test_tempered_one_liner_and_arviz(key):
    import arviz as az
    pm = pi.from_numpyro(conjugate, Y)
    res = pi.smc.tempered(key, pm, 200, progress_bar=False)
    same = pi.smc.tempered(key, pm.prior, pm.log_likelihood, 200, progress_bar=False)
    np.testing.assert_array_equal(res.samples, same.samples)
    assert res.samples.shape == (200, pm.dim)
    idata = res.to_arviz()
    assert set(idata.posterior.data_vars) == {"mu", "w", "w_max"}
    assert idata.posterior["w"].shape == (1, 200, 3)
    np.testing.assert_allclose(idata.posterior["w"].values.sum(-1), 1.0, rtol=1e-5)
    stats = idata.sample_stats
    n = res.info.beta.shape[0]
    assert stats["log_weight"].shape == (1, 200)
    for name in ("tempering_exponent", "ess", "log_evidence_increment", "acceptance_rate",
                 "step_size"):
        assert stats[name].shape == (n,), name
    np.testing.assert_allclose(stats["tempering_exponent"].values[-1], 1.0)
    np.testing.assert_allclose(idata.attrs["log_evidence"], float(res.log_evidence))
    summary = az.summary(idata, kind="stats")
    assert {"mu", "w[0]", "w[2]", "w_max"} <= set(summary.index)
    # NumPyro log densities are differentiable: the default move uses gradients.
    assert res.info.kernel == "adaptive_repeat(hmc(10), max 20)"
    assert set(res.constrain()) == {"mu", "w", "w_max"}


def test_bad_models():
    def broken(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y @ jnp.ones((7, 2)))

    with pytest.raises(ValueError, match="could not trace the model.*TypeError"):
        pi.from_numpyro(broken, Y)

    def observed_only(y):
        numpyro.sample("y", dist.Normal(0.0, 1.0).expand([y.shape[0]]), obs=y)

    with pytest.raises(ValueError, match="no latent"):
        pi.from_numpyro(observed_only, Y)

    def discrete(y):
        k = numpyro.sample("k", dist.Bernoulli(0.5))
        numpyro.sample("y", dist.Normal(k, 1.0).expand([y.shape[0]]), obs=y)

    with pytest.raises(ValueError, match="discrete latent site.*'k'"):
        pi.from_numpyro(discrete, Y)
    with pytest.raises(TypeError, match="callable"):
        pi.from_numpyro("model")
    pm = pi.from_numpyro(conjugate, Y)
    with pytest.raises(TypeError, match="either a from_numpyro model"):
        pi.smc.tempered(jax.random.key(0), pm, pm.log_likelihood, 100)
