"""PyTorch denoisers as probinfer diffusion priors (the torch bridge).

:class:`TorchDenoiser` wraps any ``torch.nn.Module`` ``f(x_t, t) -> prediction`` (noise,
clean data or velocity) as a :class:`~probinfer.diffusion.ContinuousDiffusionPrior`, so
every sampler and steering algorithm runs on it unchanged; :class:`TorchMaskedDenoiser`
does the same for masked-diffusion networks returning logits over the vocabulary, and
:func:`from_diffusers` adapts a ``diffusers`` ``UNet2DModel`` with its scheduler config.

How a call crosses over
-----------------------
``denoise(x, step)`` is one ``jax.pure_callback`` with ``vmap_method="broadcast_all"``:
inside ``jit``, ``scan`` and any number of ``vmap`` s the network is called **once per
step for all particles** (the callback flattens every leading batch axis), split into
chunks of at most ``max_batch_size`` rows when given. On the host the particles arrive
as a JAX buffer and enter torch through DLPack without a copy (``torch.from_dlpack``);
the prediction is written into the output buffer once, moved to the particles' dtype in
the same copy. The module runs under ``torch.inference_mode()`` on its own device and
dtype (CPU tensors are viewed, others moved there once per call).

Only the step index crosses into the callback: the network's time input for every
step is a table built once at construction (:attr:`TorchDenoiser.network_times`), so
the time value has exactly the type the network was trained on (``int64`` training
timesteps for a :class:`~probinfer.diffusion.DiscreteVPSchedule`).

Gradients (``differentiable=True``) go through a ``jax.custom_vjp`` whose backward pass
is a second callback that runs the module under torch autograd and returns the
vector–Jacobian product ``(∂f/∂x)ᵀ g``; JAX differentiates the prediction → ``x_0``
conversion itself. This is what gradient-guided proposals (``pi.steer.fk(...,
proposal="gradient")``) and reconstruction guidance need.

torch is imported when a bridge object is built, never by ``import probinfer``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._optional import require
from probinfer._validation import check_positive_int
from probinfer.diffusion.base import ContinuousDiffusionPrior, x0_from_eps, x0_from_v
from probinfer.diffusion.categorical import best_float
from probinfer.diffusion.masked import MaskedDiffusionPrior
from probinfer.diffusion.schedules import (DiscreteVPSchedule, Schedule,
                                           discrete_timesteps)

PREDICTIONS = ("eps", "x0", "v")
TIME_INPUTS = ("native", "sigma")


def _import_torch():
    return require("torch", "torch", "the torch bridge")


def _check_module(torch, module, name="module"):
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
    stochastic = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)
    if module.training and any(isinstance(m, stochastic) for m in module.modules()):
        raise ValueError(f"{name} is in training mode and has dropout or batch-norm layers, "
                         "which would make denoise random and batch-dependent; call "
                         f"{name}.eval() first")


def _module_device_dtype(torch, module):
    for tensor in list(module.parameters()) + list(module.buffers()):
        if torch.is_floating_point(tensor):
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _chunks(total, max_batch_size):
    size = total if max_batch_size is None else max(1, min(max_batch_size, total))
    return [(k, min(k + size, total)) for k in range(0, total, size)] or [(0, 0)]


class _TorchCall:
    """Host side of the bridge: runs ``module(x, t)`` on flattened particles, chunked."""

    def __init__(self, torch, module, event_ndim, time_table, max_batch_size, output_shape):
        self.torch = torch
        self.module = module
        self.event_ndim = event_ndim
        self.device, self.dtype = _module_device_dtype(torch, module)
        self.time_table = time_table              # torch tensor (num_steps + 1,) or None
        self.max_batch_size = max_batch_size
        self.output_shape = tuple(output_shape)   # per-row output shape

    def _inputs(self, x, step):
        torch = self.torch
        # DLPack view of the JAX buffer: no copy on CPU when dtypes agree.
        xt = torch.from_dlpack(x)
        batch_shape = tuple(xt.shape[:xt.ndim - self.event_ndim])
        xt = xt.reshape((-1,) + tuple(xt.shape[xt.ndim - self.event_ndim:]))
        if xt.is_floating_point():
            xt = xt.to(self.device, self.dtype)
        else:
            xt = xt.to(self.device, torch.int64)
        t = None
        if self.time_table is not None:
            t = self.time_table[torch.from_dlpack(step).reshape(-1).to(self.device,
                                                                        torch.int64)]
        return xt, t, batch_shape

    def _apply(self, xt, t):
        out = self.module(xt) if t is None else self.module(xt, t)
        if not isinstance(out, self.torch.Tensor):
            out = getattr(out, "sample", out)
        if not isinstance(out, self.torch.Tensor) or tuple(out.shape) != \
                (xt.shape[0],) + self.output_shape:
            got = tuple(out.shape) if isinstance(out, self.torch.Tensor) else type(out).__name__
            raise ValueError(f"the torch module returned {got} for a batch of {xt.shape[0]}, "
                             f"expected {(xt.shape[0],) + self.output_shape}")
        return out

    def forward(self, x, step, out_dtype):
        torch = self.torch
        xt, t, batch_shape = self._inputs(x, step)
        out = np.empty((xt.shape[0],) + self.output_shape, dtype=out_dtype)
        view = torch.from_numpy(out)
        with torch.inference_mode():
            for lo, hi in _chunks(xt.shape[0], self.max_batch_size):
                view[lo:hi].copy_(self._apply(xt[lo:hi], None if t is None else t[lo:hi]))
        return out.reshape(batch_shape + self.output_shape)

    def vjp(self, x, step, cotangent):
        torch = self.torch
        xt, t, batch_shape = self._inputs(x, step)
        cot = torch.from_dlpack(cotangent).reshape((-1,) + self.output_shape)
        out = np.empty(tuple(xt.shape), dtype=np.dtype(x.dtype))
        view = torch.from_numpy(out)
        with torch.enable_grad():
            for lo, hi in _chunks(xt.shape[0], self.max_batch_size):
                leaf = xt[lo:hi].detach().requires_grad_(True)
                pred = self._apply(leaf, None if t is None else t[lo:hi])
                (grad,) = torch.autograd.grad(pred, leaf, cot[lo:hi].to(pred.device, pred.dtype))
                view[lo:hi].copy_(grad)
        return out.reshape(tuple(x.shape))


class TorchDenoiser(ContinuousDiffusionPrior):
    """A PyTorch denoising network as a continuous diffusion prior.

    ``module(x_t, t)`` predicts the noise (``prediction="eps"``), the clean data
    (``"x0"``) or the velocity ``v = alpha eps - sigma x_0`` (``"v"``, VP schedules only)
    from a batch ``x_t`` of shape ``(B, *event_shape)`` and the time input ``t`` of shape
    ``(B,)``. :meth:`denoise` turns the prediction into ``E[x_0 | x_step]``; samplers,
    score and transition densities come from :class:`ContinuousDiffusionPrior`.

    Parameters
    ----------
    module : ``torch.nn.Module``; its device and dtype are used as they are. It must not
        be in training mode with dropout or batch-norm layers (randomness would break
        determinism).
    schedule : the :class:`~probinfer.diffusion.Schedule` the network was trained on.
    prediction : ``"eps"``, ``"x0"`` or ``"v"``.
    num_steps : number of reverse transitions (step 0 = noise, ``num_steps`` = data).
    event_shape : shape of one sample, e.g. ``(1, 8, 8)``; default ``module.image_shape``
        when the module has that attribute.
    sampler, rho : see :class:`ContinuousDiffusionPrior`.
    spacing : any spacing of :func:`~probinfer.diffusion.timesteps` (``"uniform"``,
        ``"quadratic"``, ``"karras"``, ``"logsnr"``, ``"leading"``, ``"trailing"``; the last
        two are :func:`discrete_timesteps` on a :class:`DiscreteVPSchedule`) or, for a
        :class:`DiscreteVPSchedule` only, diffusers' ``"linspace"``; ignored when
        ``timesteps`` is given.
    timesteps : explicit native times of steps ``0 .. num_steps-1`` (strictly decreasing).
    max_batch_size : largest batch passed to the module in one call (None: all particles
        at once).
    time_input : what the network receives as ``t``: ``"native"`` (default) the
        schedule's native time — integer training timesteps ``0 .. T-1`` as ``int64`` for a
        :class:`DiscreteVPSchedule`, the continuous time in the module's dtype otherwise;
        ``"sigma"`` the VE noise level ``sigma / alpha`` (EDM-style networks); or a callable
        mapping the native times (float64 NumPy array) to the network's values (e.g.
        ``lambda t: 1000 * t``).
    differentiable : give ``denoise`` a JAX gradient computed by torch autograd (one
        extra module call per backward pass). Without it ``jax.grad`` raises.
    check_prediction : at construction, check on a probe batch of pure noise that an
        ``eps`` network returns (about) that noise and an ``x0`` or ``v`` network (``v ≈
        -x_0`` there) does not; only where the noisiest level has ``alpha/sigma < 0.1``.

    Attributes
    ----------
    network_times : ``(num_steps + 1,)`` NumPy array, ``network_times[i]`` is what the module
        is called with at step ``i`` (the last entry, for the data step, is never used by
        the samplers).

    Raises
    ------
    TypeError : ``module`` is not a ``torch.nn.Module``, ``schedule`` not a Schedule.
    ValueError : unknown ``prediction``/``time_input``, ``"v"`` on a non-VP schedule, or a
        probe call whose output has the wrong shape, a non-float dtype, non-finite values
        or a scale inconsistent with ``prediction``.

    Example
    -------
    >>> import jax, torch, probinfer as pi
    >>> class Zero(torch.nn.Module):       # the exact x0-predictor of data with mean 0 as t -> max
    ...     def forward(self, x, t):
    ...         return torch.zeros_like(x)
    >>> prior = pi.diffusion.TorchDenoiser(Zero(), pi.diffusion.DiscreteVPSchedule.linear(),
    ...                                    prediction="x0", num_steps=10, event_shape=(2,),
    ...                                    sampler="ddim", spacing="trailing")
    >>> prior.sample(jax.random.key(0), 4).shape
    (4, 2)
    """

    def __init__(self, module, schedule: Schedule, prediction: str = "eps",
                 num_steps: int | None = 50, event_shape=None, sampler="ddim",
                 spacing: str = "uniform", rho: float = 7.0, timesteps=None,
                 max_batch_size: int | None = None, time_input="native",
                 differentiable: bool = False, check_prediction: bool = True, dtype=None):
        torch = _import_torch()
        _check_module(torch, module)
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a probinfer.diffusion Schedule, got "
                            f"{type(schedule).__name__}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if prediction == "v" and schedule.kind != "vp":
            raise ValueError("prediction='v' is defined for variance-preserving schedules only, "
                             f"got {schedule!r}")
        if event_shape is None:
            if not hasattr(module, "image_shape"):
                raise ValueError("event_shape is required (the module has no image_shape)")
            event_shape = module.image_shape
        if max_batch_size is not None:
            max_batch_size = check_positive_int(max_batch_size, "max_batch_size")
        # "leading"/"trailing" are grids of every schedule (`timesteps`); only diffusers'
        # "linspace" is defined on integer training steps alone.
        if timesteps is None and spacing == "linspace":
            if not isinstance(schedule, DiscreteVPSchedule):
                raise ValueError(f"spacing='linspace' needs a DiscreteVPSchedule, got "
                                 f"{schedule!r}")
            timesteps = discrete_timesteps(schedule.num_train_steps,
                                           check_positive_int(num_steps, "num_steps"), spacing)
        super().__init__(schedule, num_steps, event_shape, sampler=sampler, spacing=spacing,
                         rho=rho, timesteps=timesteps, dtype=dtype)
        self.module = module
        self.prediction = prediction
        self.max_batch_size = max_batch_size
        self.differentiable = bool(differentiable)
        self.network_times = self._network_times(torch, schedule, time_input)
        self.time_input = time_input
        device, module_dtype = _module_device_dtype(torch, module)
        table = torch.as_tensor(self.network_times)
        table = table.to(device, module_dtype if table.is_floating_point() else torch.int64)
        self._host = _TorchCall(torch, module, len(self.event_shape), table, max_batch_size,
                                self.event_shape)
        self._call = self._make_call()
        # Compiled once per shape: eager calls (outside the caller's jit) would otherwise
        # retrace the custom VJP and the callback on every call.
        self._denoise_jit = jax.jit(self._denoise)
        self._probe(check_prediction)

    def _network_times(self, torch, schedule, time_input):
        times = np.asarray(self.timesteps)
        native = np.concatenate([times, [schedule.t_min]])
        if isinstance(time_input, str):
            if time_input not in TIME_INPUTS:
                raise ValueError(f"time_input must be one of {TIME_INPUTS} or a callable, got "
                                 f"{time_input!r}")
            if time_input == "sigma":
                return np.asarray(schedule.sigma_ve(native), dtype=np.float64)
            return native.astype(np.int64) if schedule.discrete else native.astype(np.float64)
        if not callable(time_input):
            raise TypeError(f"time_input must be one of {TIME_INPUTS} or a callable, got "
                            f"{type(time_input).__name__}")
        mapped = np.asarray(time_input(native.astype(np.float64)))
        if mapped.shape != native.shape or not np.all(np.isfinite(mapped)):
            raise ValueError(f"time_input must map the {native.size} native times to as many "
                             f"finite values, got shape {mapped.shape}")
        return mapped

    def _make_call(self):
        host = self._host

        def raw(x, step):
            out = jax.ShapeDtypeStruct(x.shape, x.dtype)
            return jax.pure_callback(lambda a, s: host.forward(a, s, np.dtype(a.dtype)), out,
                                     x, step, vmap_method="broadcast_all")

        differentiable = self.differentiable

        @jax.custom_vjp
        def call(x, step):
            return raw(x, step)

        def fwd(x, step):
            return raw(x, step), (x, step)

        def bwd(residuals, cotangent):
            x, step = residuals
            if not differentiable:
                raise ValueError("this TorchDenoiser was built without gradients; construct it "
                                 "with differentiable=True to differentiate through denoise")
            grad = jax.pure_callback(host.vjp, jax.ShapeDtypeStruct(x.shape, x.dtype), x, step,
                                     cotangent, vmap_method="broadcast_all")
            return grad, np.zeros(jnp.shape(step), dtype=jax.dtypes.float0)

        call.defvjp(fwd, bwd)
        return call

    def network_output(self, x, step):
        """The module's raw prediction at ``step`` for particles ``(n, *event_shape)``."""
        self.check_particles(x)
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"particles must be floating point, got dtype {x.dtype}")
        steps = jnp.broadcast_to(jnp.asarray(step, jnp.int32), x.shape[:1])
        return self._call(x, steps)

    def denoise(self, x, step):
        """``E[x_0 | x_step]`` from the network's prediction, ``(n, *event_shape)``; the
        identity at ``step = num_steps``."""
        self.check_particles(x)
        return self._denoise_jit(jnp.asarray(x), step)

    def _denoise(self, x, step):
        raw = self.network_output(x, step)
        alpha, sigma = self.alpha_sigma(step)
        if self.prediction == "eps":
            x0 = x0_from_eps(x, raw, alpha, sigma)
        elif self.prediction == "v":
            x0 = x0_from_v(x, raw, alpha, sigma)
        else:
            x0 = raw
        return jnp.where(sigma > 0, x0, x).astype(x.dtype)

    def _probe(self, check_prediction):
        rng = np.random.default_rng(0)
        num = 8
        z = rng.standard_normal((num,) + self.event_shape)
        sigma0, alpha0 = float(self.sigmas[0]), float(self.alphas[0])
        x = jnp.asarray(sigma0 * z, dtype=self.dtype)
        try:
            raw = np.asarray(self._host.forward(x, jnp.zeros(num, jnp.int32), np.float64))
        except ValueError as err:
            raise ValueError(f"module: probe call failed: {err}") from None
        if not np.all(np.isfinite(raw)):
            raise ValueError("module returned non-finite values on a probe batch of noise")
        if not check_prediction or alpha0 / sigma0 >= 0.1:
            return
        # At the noisiest level x ≈ sigma eps: E[eps|x] ≈ x / sigma = z, while x0 and
        # v = alpha eps - sigma x0 ≈ -x0 are on the data's scale and not the noise.
        rel = float(np.linalg.norm(raw - z) / np.linalg.norm(z))
        if self.prediction == "eps" and rel > 0.5:
            raise ValueError(
                "module does not look like an 'eps' prediction: on pure noise at the noisiest "
                f"step its output differs from the noise by {rel:.2f} (relative); is it an "
                "'x0' or 'v' network, or untrained? (check_prediction=False skips this check)")
        if self.prediction != "eps" and rel < 0.1:
            raise ValueError(
                f"module does not look like a {self.prediction!r} prediction: on pure noise at "
                f"the noisiest step it returns the noise itself (relative difference "
                f"{rel:.2f}); is it an 'eps' network? (check_prediction=False skips this check)")

    def __repr__(self):
        return (f"TorchDenoiser({type(self.module).__name__}, {self.schedule!r}, "
                f"prediction={self.prediction!r}, num_steps={self.num_steps}, "
                f"sampler={self.sampler.name!r})")


class TorchMaskedDenoiser(MaskedDiffusionPrior):
    """A PyTorch masked-diffusion network as a :class:`MaskedDiffusionPrior`.

    ``module(tokens, t)`` takes ``tokens`` int64 ``(B, length)`` with the mask as token
    ``vocab_size`` and returns logits ``(B, length, vocab_size)`` or
    ``(B, length, vocab_size + 1)`` (a mask-token column is dropped: the mask is never
    predicted). :meth:`denoise` returns the softmax over real tokens at masked positions
    and one-hot rows at unmasked ones (an unmasked token is known).

    Parameters
    ----------
    module : ``torch.nn.Module``.
    vocab_size, length, num_steps, schedule, sampler : see :class:`MaskedDiffusionPrior`.
    max_batch_size : largest batch per module call.
    time_input : ``"native"`` (default): the masking time ``t_i = 1 - i / num_steps`` in
        ``[0, 1]`` (1 = all masked) in the module's float dtype; ``None``: a time-agnostic
        network called as ``module(tokens)``; or a callable of the float64 times.

    Example
    -------
    >>> import jax, torch, probinfer as pi
    >>> class Uniform(torch.nn.Module):
    ...     def forward(self, tokens, t):
    ...         return torch.zeros(tokens.shape + (4,))
    >>> prior = pi.diffusion.TorchMaskedDenoiser(Uniform(), vocab_size=4, length=6)
    >>> prior.sample(jax.random.key(0), 3).shape
    (3, 6)
    """

    def __init__(self, module, vocab_size: int, length: int, num_steps: int | None = None,
                 schedule: str = "linear", sampler: str = "ancestral",
                 max_batch_size: int | None = None, time_input="native"):
        torch = _import_torch()
        _check_module(torch, module)
        super().__init__(vocab_size, length, num_steps, schedule, sampler)
        if max_batch_size is not None:
            max_batch_size = check_positive_int(max_batch_size, "max_batch_size")
        self.module = module
        self.max_batch_size = max_batch_size
        times = np.linspace(1.0, 0.0, self.num_steps + 1)
        device, module_dtype = _module_device_dtype(torch, module)
        if time_input is None:
            table = None
        elif isinstance(time_input, str) and time_input == "native":
            table = torch.as_tensor(times).to(device, module_dtype)
        elif callable(time_input):
            mapped = np.asarray(time_input(times))
            if mapped.shape != times.shape or not np.all(np.isfinite(mapped)):
                raise ValueError(f"time_input must map the {times.size} masking times to as "
                                 f"many finite values, got shape {mapped.shape}")
            table = torch.as_tensor(mapped)
            table = table.to(device, module_dtype if table.is_floating_point() else torch.int64)
        else:
            raise ValueError(f"time_input must be 'native', None or a callable, got "
                             f"{time_input!r}")
        self.time_input = time_input
        probe = torch.full((2, self.length), self.mask_id, dtype=torch.int64, device=device)
        with torch.inference_mode():
            out = module(probe) if table is None else module(probe, table[:1].expand(2))
        shape = tuple(getattr(out, "shape", ()))
        if shape not in ((2, self.length, self.vocab_size), (2, self.length, self.vocab_size + 1)):
            raise ValueError(f"module returned logits of shape {shape} for 2 sequences; expected "
                             f"(2, {self.length}, {self.vocab_size}) or "
                             f"(2, {self.length}, {self.vocab_size + 1})")
        if not torch.is_floating_point(out):
            raise ValueError(f"module must return float logits, got dtype {out.dtype}")
        self._host = _TorchCall(torch, module, 1, table, max_batch_size, shape[1:])
        self._denoise_jit = jax.jit(self._denoise)

    def denoise(self, x, step):
        """``p(x_0^l | x_step)`` per position, ``(n, length, vocab_size)``."""
        self.check_particles(x)
        return self._denoise_jit(jnp.asarray(x, jnp.int32), step)

    def _denoise(self, x, step):
        steps = jnp.broadcast_to(jnp.asarray(step, jnp.int32), x.shape[:1])
        dtype = best_float()
        logits = jax.pure_callback(
            lambda a, s: self._host.forward(a, s, np.dtype(dtype)),
            jax.ShapeDtypeStruct(x.shape + self._host.output_shape[-1:], dtype), x, steps,
            vmap_method="broadcast_all")
        probs = jax.nn.softmax(logits[..., :self.vocab_size], axis=-1)
        known = jax.nn.one_hot(jnp.clip(x, 0, self.vocab_size - 1), self.vocab_size,
                               dtype=dtype)
        return jnp.where((x == self.mask_id)[..., None], probs, known)

    def __repr__(self):
        return (f"TorchMaskedDenoiser({type(self.module).__name__}, vocab_size="
                f"{self.vocab_size}, length={self.length}, num_steps={self.num_steps})")


def _diffusers_schedule(config):
    num_train = int(config.get("num_train_timesteps", 1000))
    if config.get("trained_betas") is not None:
        return DiscreteVPSchedule(np.asarray(config["trained_betas"], np.float64))
    kind = config.get("beta_schedule", "linear")
    start, end = float(config.get("beta_start", 1e-4)), float(config.get("beta_end", 0.02))
    if kind == "linear":
        return DiscreteVPSchedule(np.linspace(start, end, num_train))
    if kind == "scaled_linear":
        return DiscreteVPSchedule(np.linspace(math.sqrt(start), math.sqrt(end), num_train) ** 2)
    if kind == "squaredcos_cap_v2":
        return DiscreteVPSchedule.cosine(num_train)
    raise ValueError(f"scheduler_config: beta_schedule {kind!r} is not supported (linear, "
                     "scaled_linear, squaredcos_cap_v2 or trained_betas)")


_DIFFUSERS_PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}


def from_diffusers(unet, scheduler_config: dict, num_steps: int = 50, sampler="ddim",
                   timestep_spacing: str | None = None, **kwargs) -> TorchDenoiser:
    """A :class:`TorchDenoiser` from a ``diffusers`` ``UNet2DModel`` and its scheduler config.

    Nothing is downloaded: pass a model you built or loaded locally and the scheduler's
    configuration as a dict (e.g. ``DDIMScheduler(...).config`` or the parsed
    ``scheduler_config.json``). Read from it: ``num_train_timesteps``, ``beta_schedule``
    (``linear``, ``scaled_linear``, ``squaredcos_cap_v2``) with ``beta_start``/``beta_end``
    or ``trained_betas``, ``prediction_type`` (``epsilon``, ``sample``, ``v_prediction``),
    ``timestep_spacing`` (``leading`` default, ``trailing``, ``linspace``) and
    ``steps_offset``. The last step always lands on the data (diffusers'
    ``set_alpha_to_one=True``); ``clip_sample`` and thresholding are not applied.

    Parameters
    ----------
    unet : a ``diffusers.UNet2DModel`` (or any module with the same call and a ``config``
        holding ``in_channels`` and ``sample_size``).
    scheduler_config : dict, as above.
    num_steps, sampler : see :class:`TorchDenoiser`.
    timestep_spacing : overrides the config's ``timestep_spacing``.
    **kwargs : passed on to :class:`TorchDenoiser` (``max_batch_size``, ``differentiable``...).

    Example
    -------
    With ``diffusers`` installed:

    >>> import jax, probinfer as pi
    >>> from diffusers import UNet2DModel                          # doctest: +SKIP
    >>> unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1,
    ...                    block_out_channels=(8, 16), norm_num_groups=4,
    ...                    down_block_types=("DownBlock2D",) * 2,
    ...                    up_block_types=("UpBlock2D",) * 2).eval()  # doctest: +SKIP
    >>> prior = pi.diffusion.from_diffusers(
    ...     unet, {"beta_schedule": "linear", "timestep_spacing": "trailing"},
    ...     num_steps=10, check_prediction=False)                   # doctest: +SKIP
    >>> prior.sample(jax.random.key(0), 2).shape                     # doctest: +SKIP
    (2, 1, 8, 8)
    """
    torch = _import_torch()
    _check_module(torch, unet, "unet")
    if not isinstance(scheduler_config, Mapping):
        raise TypeError(f"scheduler_config must be a dict, got {type(scheduler_config).__name__}")
    config = getattr(unet, "config", None)
    try:
        size = config["sample_size"] if isinstance(config, dict) else config.sample_size
        channels = config["in_channels"] if isinstance(config, dict) else config.in_channels
    except (AttributeError, KeyError, TypeError) as err:
        raise TypeError("unet must be a diffusers UNet2DModel (a config with sample_size and "
                        "in_channels)") from err
    size = (size, size) if isinstance(size, int) else tuple(size)
    prediction_type = scheduler_config.get("prediction_type", "epsilon")
    if prediction_type not in _DIFFUSERS_PREDICTIONS:
        raise ValueError(f"scheduler_config: prediction_type must be one of "
                         f"{sorted(_DIFFUSERS_PREDICTIONS)}, got {prediction_type!r}")
    schedule = _diffusers_schedule(scheduler_config)
    spacing = timestep_spacing or scheduler_config.get("timestep_spacing", "leading")
    times = discrete_timesteps(schedule.num_train_steps, num_steps, spacing,
                               int(scheduler_config.get("steps_offset", 0)))
    return TorchDenoiser(_unet_wrapper(torch)(unet), schedule,
                         prediction=_DIFFUSERS_PREDICTIONS[prediction_type], num_steps=None,
                         event_shape=(int(channels),) + size, sampler=sampler,
                         timesteps=times, **kwargs)


def _unet_wrapper(torch):
    class DiffusersUNet(torch.nn.Module):
        """``unet(x, t).sample`` as a plain ``module(x, t) -> tensor``."""

        def __init__(self, unet):
            super().__init__()
            self.unet = unet
            self.train(unet.training)

        def forward(self, x, t):
            return self.unet(x, t, return_dict=False)[0]

    return DiffusersUNet
