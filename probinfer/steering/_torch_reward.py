"""Differentiable torch rewards: one batched host call per step, gradients by torch autograd.

A :class:`~probinfer.steer.HostReward` cannot be differentiated (``jax.pure_callback``
has no JVP), so gradient-guided steering (``pi.steer.fk(..., proposal="gradient")``,
classifier and DPS-style guidance) needs more. :class:`TorchReward` reuses the torch
bridge's host machinery (the ``_TorchCall`` of :mod:`probinfer.diffusion.torch_bridge`,
which also serves ``TorchDenoiser(differentiable=True)``): the forward pass is one
``pure_callback`` with ``vmap_method="broadcast_all"`` (all particles in one call), and a
``jax.custom_vjp`` whose backward pass is a second callback running the function under
torch autograd and returning ``(∂r/∂x)ᵀ g`` for the whole batch.
"""

import numpy as np
import jax
import jax.numpy as jnp

from probinfer.diffusion.torch_bridge import _import_torch, _TorchCall
from probinfer.steering._rewards import HostReward


def _as_module(torch, fn):
    """``fn`` as a ``torch.nn.Module`` (the bridge reads the device and dtype from it)."""
    if isinstance(fn, torch.nn.Module):
        return fn

    class _Function(torch.nn.Module):
        def forward(self, x):
            return fn(x)

    return _Function()


class TorchReward(HostReward):
    """A batched torch function ``f(x (B, *event_shape)) -> (B,)`` as a differentiable reward.

    Call it on ONE sample inside JAX code (as any reward); under ``jax.vmap`` over
    particles it makes one host call for the batch, and ``jax.grad`` of it makes one more
    (torch autograd, in chunks of ``max_batch_size`` rows). Counters: ``num_calls`` and
    ``num_evaluations`` (forward host calls and samples scored, as for
    :class:`~probinfer.steer.HostReward`) and ``num_gradient_calls``.

    An exception raised by ``f`` (or an output of the wrong shape) is kept and re-raised,
    with its own type and message, by the runner that made the call.
    """

    def __init__(self, fn, differentiable: bool = True, max_batch_size: int | None = None,
                 dtype=None):
        torch = _import_torch()
        if not callable(fn):
            raise TypeError("module_or_fn must be a torch.nn.Module or a function of a torch "
                            f"batch (B, ...) -> (B,), got {type(fn).__name__}")
        if max_batch_size is not None and (isinstance(max_batch_size, bool) or not isinstance(
                max_batch_size, (int, np.integer)) or max_batch_size < 1):
            raise ValueError(f"max_batch_size must be a positive integer or None, got "
                             f"{max_batch_size!r}")
        super().__init__(fn, dtype)
        self.module = _as_module(torch, fn)
        self.differentiable = bool(differentiable)
        self.max_batch_size = max_batch_size
        self.num_gradient_calls = 0
        self._torch = torch
        self._calls = {}

    def _host_forward(self, host, x):
        try:
            out = host.forward(x, None, np.dtype(self.dtype))
        except Exception as exc:              # re-raised by the runner, see raise_pending
            if self._error is None:
                self._error = exc
            return np.full(x.shape[:x.ndim - host.event_ndim], np.nan, self.dtype)
        self.num_calls += 1
        self.num_evaluations += int(np.prod(out.shape))
        return out

    def _host_vjp(self, host, x, cotangent):
        try:
            grad = host.vjp(x, None, np.asarray(cotangent, dtype=x.dtype))
        except Exception as exc:
            if self._error is None:
                self._error = exc
            return np.full(x.shape, np.nan, x.dtype)
        self.num_gradient_calls += 1
        return grad

    def _call_for(self, event_ndim):
        """The differentiable JAX function for samples with ``event_ndim`` dimensions."""
        if event_ndim in self._calls:
            return self._calls[event_ndim]
        host = _TorchCall(self._torch, self.module, event_ndim, None, self.max_batch_size, ())
        dtype = self.dtype
        differentiable = self.differentiable

        def raw(x):
            return jax.pure_callback(lambda a: self._host_forward(host, a),
                                     jax.ShapeDtypeStruct((), dtype), x,
                                     vmap_method="broadcast_all")

        @jax.custom_vjp
        def call(x):
            return raw(x)

        def fwd(x):
            return raw(x), x

        def bwd(x, cotangent):
            if not differentiable:
                raise ValueError("this torch reward was built with differentiable=False; use "
                                 "pi.steer.torch_reward(fn, differentiable=True) for gradients")
            grad = jax.pure_callback(lambda a, g: self._host_vjp(host, a, g),
                                     jax.ShapeDtypeStruct(x.shape, x.dtype), x,
                                     cotangent.astype(x.dtype), vmap_method="broadcast_all")
            return (grad,)

        call.defvjp(fwd, bwd)
        self._calls[event_ndim] = call
        return call

    def __call__(self, x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"a torch reward takes floating-point samples, got {x.dtype}")
        return self._call_for(x.ndim)(x)

    def __repr__(self):
        name = type(self.module).__name__
        return f"TorchReward({name}, differentiable={self.differentiable})"


def torch_reward(module_or_fn, differentiable: bool = True, *,
                 max_batch_size: int | None = None, dtype=None) -> TorchReward:
    """A torch model or function as a steering reward, differentiable by torch autograd.

    Parameters
    ----------
    module_or_fn : a ``torch.nn.Module`` or a function mapping a torch batch
        ``(B, *event_shape)`` to rewards ``(B,)`` (e.g. a classifier's log-probability of
        one class). It runs on the device and dtype of the module's parameters (a plain
        function: CPU, torch's default dtype).
    differentiable : give the reward a JAX gradient (needed by
        ``pi.steer.fk(..., proposal="gradient")``); ``False`` makes it a plain host reward
        that raises if differentiated.
    max_batch_size : split host calls into chunks of at most this many samples.
    dtype : dtype of the rewards on the JAX side (default JAX's default float).

    Returns
    -------
    TorchReward : call it on one sample; ``jax.vmap`` batches it into one host call.

    Example
    -------
    >>> import jax, jax.numpy as jnp, torch, probinfer as pi
    >>> reward = pi.steer.torch_reward(lambda x: -(x ** 2).sum(dim=(1,)))
    >>> float(jax.grad(reward)(jnp.array([1.0, -2.0]))[1])
    4.0
    """
    return TorchReward(module_or_fn, differentiable, max_batch_size, dtype)
