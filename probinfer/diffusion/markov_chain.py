"""The exact masked-diffusion prior of a first-order Markov chain over a finite alphabet.

For ``x_0 ~ initial``, ``x_{l+1} | x_l ~ transition[l][x_l]`` the optimal masked-diffusion
denoiser is the conditional law of each masked position given all unmasked ones. Unmasked
positions are evidence; one forward and one backward pass (scaled forward–backward,
Rabiner 1989) give every position's conditional marginal ``∝ forward_l(a) backward_l(a)``.
It does not depend on the diffusion time, so the prior is time-agnostic and the
first-hitting sampler is exact. This is probinfer's discrete ground truth (a DNA model is a
4-letter chain).

Exactness of :meth:`MarkovChainPrior.sample`: a ground-truth prior samples exactly by
default, so ``sample`` runs the chain forward (exact in any number of steps) instead of
the reverse diffusion. The masked transitions (``transition``, ``denoise``,
``transition_log_density``) stay what steering follows; of those, the first-hitting
sampler is exact and the ancestral one is not: tokens revealed in the same step are drawn
independently from their own conditionals, which breaks the dependence between adjacent
positions (pair marginals off by z ≈ 17 at n = 20 000 with ``num_steps = length``; exact
only as ``num_steps`` grows).
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._compile import cached
from probinfer._validation import check_positive_int, check_positive_scalar, is_concrete
from probinfer.diffusion.categorical import best_float, categorical
from probinfer.diffusion.masked import MaskedDiffusionPrior


def _check_stochastic(arr, name):
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr < 0):
        raise ValueError(f"{name} must have non-negative entries, got a minimum of "
                         f"{arr.min():.3g}")
    sums = arr.sum(-1)
    if np.abs(sums - 1.0).max() > 1e-6:
        bad = np.unravel_index(np.argmax(np.abs(sums - 1.0)), sums.shape)
        raise ValueError(f"{name} must sum to one along its last axis; entry {tuple(bad)} "
                         f"sums to {sums[bad]:.8g}")


class MarkovChainPrior(MaskedDiffusionPrior):
    """Masked-diffusion prior whose data distribution is a Markov chain (exact denoiser).

    Parameters
    ----------
    initial : (K,) law of the first token.
    transition : (K, K) row-stochastic matrix, or (length-1, K, K) for a non-homogeneous
        chain (``transition[l]`` maps position l to l+1).
    length : sequence length L >= 2.
    num_steps, schedule : see :class:`MaskedDiffusionPrior`.
    sampler : the masked transitions that steering follows (:meth:`sample` is exact
        whatever it is). Default: ``"first_hitting"`` when ``num_steps`` is ``None`` or
        ``length`` (exact: the steered target is the tilted chain), ``"ancestral"``
        otherwise (exact only as ``num_steps`` grows; steering then targets the tilt of the
        ancestral sampler's law, measured in ``docs/results/steering_discrete.md``).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> prior = pi.diffusion.MarkovChainPrior(jnp.array([0.5, 0.5]),
    ...                                       jnp.array([[0.9, 0.1], [0.2, 0.8]]), length=6)
    >>> x = prior.sample(jax.random.key(0), 100)
    >>> x.shape, bool((x < 2).all())
    ((100, 6), True)
    """

    def __init__(self, initial, transition, length: int, num_steps: int | None = None,
                 schedule: str = "linear", sampler=None):
        length = check_positive_int(length, "length", 2)
        if sampler is None:
            sampler = "first_hitting" if num_steps in (None, length) else "ancestral"
        init = np.asarray(initial, dtype=np.float64)
        trans = np.asarray(transition, dtype=np.float64)
        if init.ndim != 1:
            raise ValueError(f"initial must be a (K,) probability vector, got shape {init.shape}")
        k = init.shape[0]
        if trans.shape == (k, k):
            trans = np.broadcast_to(trans, (length - 1, k, k))
        elif trans.shape != (length - 1, k, k):
            raise ValueError(f"transition must have shape ({k}, {k}) or ({length - 1}, {k}, "
                             f"{k}) for length={length} and {k} states, got {trans.shape}")
        _check_stochastic(init, "initial")
        _check_stochastic(trans, "transition")
        super().__init__(k, length, num_steps, schedule, sampler)
        self._initial64, self._transition64 = init, np.array(trans)
        dtype = best_float()
        self.initial = jnp.asarray(init, dtype)
        self.transition_matrices = jnp.asarray(trans, dtype)

    def _conditionals(self, seq):
        """Conditional marginals ``(L, K)`` of one sequence given its unmasked tokens."""
        k = self.vocab_size
        evidence = jnp.where((seq == self.mask_id)[:, None], 1.0,
                             jax.nn.one_hot(seq, k, dtype=self.initial.dtype))
        f0 = self.initial * evidence[0]
        f0 = f0 / jnp.sum(f0)

        def forward(f, inputs):
            trans, ev = inputs
            f = (f @ trans) * ev
            f = f / jnp.sum(f)
            return f, f

        _, fs = jax.lax.scan(forward, f0, (self.transition_matrices, evidence[1:]))
        fwd = jnp.concatenate([f0[None], fs])

        def backward(b, inputs):
            trans, ev = inputs
            b = trans @ (ev * b)
            b = b / jnp.sum(b)
            return b, b

        ones = jnp.ones(k, self.initial.dtype)
        _, bs = jax.lax.scan(backward, ones, (self.transition_matrices, evidence[1:]),
                             reverse=True)
        bwd = jnp.concatenate([bs, ones[None]])
        post = fwd * bwd
        return post / jnp.sum(post, axis=1, keepdims=True)

    def denoise(self, x, step=None):
        """``p(x_0^l = a | unmasked tokens of x)`` for every position, ``(n, L, K)``.

        Exact (forward–backward) and independent of ``step``; unmasked positions get
        one-hot rows.
        """
        self.check_particles(x)
        return jax.vmap(self._conditionals)(x)

    def log_prob(self, x):
        """Exact ``log p(x)`` of full (unmasked) sequences ``(..., L)`` -> ``(...)``."""
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.length,):
            raise ValueError(f"x must have shape (..., {self.length}), got {x.shape}")
        if is_concrete(x) and bool(jnp.any((x < 0) | (x >= self.vocab_size))):
            raise ValueError(f"tokens must lie in [0, {self.vocab_size}) (no masks) for log_prob")
        steps = self.transition_matrices[jnp.arange(self.length - 1), x[..., :-1], x[..., 1:]]
        return jnp.log(self.initial[x[..., 0]]) + jnp.sum(jnp.log(steps), axis=-1)

    def marginals(self) -> np.ndarray:
        """Exact single-site marginals ``(L, K)`` (NumPy float64)."""
        out = [self._initial64]
        for trans in self._transition64:
            out.append(out[-1] @ trans)
        return np.stack(out)

    def pair_marginals(self) -> np.ndarray:
        """Exact ``P(x_l = a, x_{l+1} = b)``, ``(L-1, K, K)`` (NumPy float64)."""
        return self.marginals()[:-1, :, None] * self._transition64

    def sample(self, key, num_samples: int, return_trajectory: bool = False):
        """Exact draws, ``(num_samples, length)`` int32, by running the chain forward.

        Unlike the masked reverse process with the ancestral sampler (see the module
        docstring), this is exact for every ``num_steps``. With ``return_trajectory=True``
        it returns ``(num_steps + 1, num_samples, length)``: the exact data with the exact
        masking path of the continuous-time process on this prior's grid (position ``l``
        is revealed at step ``i`` with probability ``unmasked[i]``, independently across
        positions), whose reversal is the exact denoising path; step 0 is all-masked and
        step ``num_steps`` is the data.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        run = cached(self, ("exact-sample", num_samples, bool(return_trajectory)),
                     lambda: jax.jit(lambda key: self._exact_run(key, num_samples,
                                                                 bool(return_trajectory))))
        return run(key)

    def _exact_run(self, key, num_samples, return_trajectory):
        data_key, mask_key = jax.random.split(key)
        x0 = self._forward(data_key, num_samples)
        if not return_trajectory:
            return x0
        # The reveal time of each position: uniform u, revealed once unmasked[i] > u.
        u = jax.random.uniform(mask_key, x0.shape, self.unmasked.dtype)
        revealed = u[None] < self.unmasked[:, None, None]
        revealed = revealed.at[-1].set(True)
        return jnp.where(revealed, x0[None], self.mask_id).astype(jnp.int32)

    def sample_exact(self, key, num_samples: int):
        """Exact draws by running the chain forward (the same as :meth:`sample`), ``(n, L)``."""
        return self.sample(key, num_samples)

    def _forward(self, key, num_samples):
        keys = jax.random.split(key, self.length)
        x0 = categorical(keys[0], self.initial, (num_samples,))

        def body(prev, inputs):
            k, trans = inputs
            nxt = categorical(k, trans[prev])
            return nxt, nxt

        _, rest = jax.lax.scan(body, x0, (keys[1:], self.transition_matrices))
        return jnp.concatenate([x0[:, None], rest.T], axis=1)

    def tilt_additive(self, site_rewards, temperature=1.0):
        """Exact tilt by an additive reward ``r(x) = sum_l site_rewards[l, x_l]``.

        ``p(x) exp(r(x) / temperature)`` is again a (non-homogeneous) Markov chain.
        Returns ``(tilted MarkovChainPrior, log E_p[exp(r(x) / temperature)])``; the tilted
        prior keeps this prior's steps, schedule and sampler.
        """
        r = np.asarray(site_rewards, dtype=np.float64)
        if r.shape != (self.length, self.vocab_size):
            raise ValueError(f"site_rewards must have shape ({self.length}, {self.vocab_size}), "
                             f"got {r.shape}")
        if not np.all(np.isfinite(r)):
            raise ValueError("site_rewards must be finite")
        t = float(check_positive_scalar(temperature, "temperature"))
        # Backward messages in log space: h_l(a) = log E[exp(sum_{m>l} r_m / t) | x_l = a].
        g = r / t
        h = np.zeros((self.length, self.vocab_size))
        trans = self._transition64
        new_trans = np.empty_like(trans)
        for l in range(self.length - 2, -1, -1):
            w = g[l + 1] + h[l + 1]
            shift = w.max()
            mass = trans[l] * np.exp(w - shift)
            h[l] = np.log(mass.sum(1)) + shift
            new_trans[l] = mass / mass.sum(1, keepdims=True)
        w0 = np.log(self._initial64) + g[0] + h[0]
        log_z = np.logaddexp.reduce(w0)
        tilted = MarkovChainPrior(np.exp(w0 - log_z), new_trans, self.length, self.num_steps,
                                  self.masking_schedule, self.sampler)
        return tilted, float(log_z)

    def __repr__(self):
        return (f"MarkovChainPrior(vocab_size={self.vocab_size}, length={self.length}, "
                f"num_steps={self.num_steps}, sampler={self.sampler!r})")
