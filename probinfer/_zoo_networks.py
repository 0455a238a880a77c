"""The torch networks of the model zoo (``models/``), rebuilt from their ``config.json``.

Only :mod:`probinfer.zoo` (lazily) and the training scripts in ``models/`` import this
module, so importing torch at module level here keeps ``import probinfer`` torch-free.
Weights are loaded into these definitions from safetensors files; nothing is unpickled.

The digits networks take images in the diffusion model's data scaling: float32 tensors of
shape ``(B, 1, 8, 8)`` (NCHW) with pixel values in ``[-1, 1]`` (``pixel / 8 - 1`` for the
0..16 intensities of scikit-learn's digits). The sequence networks (masked-diffusion
transformer, expression regressors) take int64 token sequences ``(B, length)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps ``t`` of shape ``(B,)``.

    Timesteps are in training-step units (``0 .. num_train_timesteps - 1``), so a
    continuous-time caller can pass ``t = s * (num_train_timesteps - 1)`` for ``s`` in [0, 1].
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class _ResidualBlock(nn.Module):
    """Pre-norm residual MLP block, modulated by the time embedding (scale and shift)."""

    def __init__(self, width: int, embed_dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear1 = nn.Linear(width, width)
        self.film = nn.Linear(embed_dim, 2 * width)
        self.linear2 = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).chunk(2, dim=-1)
        z = self.norm(h) * (1 + scale) + shift
        z = self.linear1(F.silu(z))
        z = self.linear2(self.dropout(F.silu(z)))
        return h + z


class DigitsDenoiser(nn.Module):
    """Noise-prediction network ``eps_theta(x_t, t)`` for 8×8 digits.

    A residual MLP over the 64 flattened pixels with a sinusoidal time embedding that
    modulates every block (FiLM). On 8×8 images an MLP sees the whole image at once,
    and it is cheap enough to train on a CPU in minutes.

    Parameters
    ----------
    width, num_blocks, time_embed_dim, embed_dim, dropout
        Architecture hyperparameters, stored in the model's ``config.json``: hidden width,
        number of residual blocks, size of the sinusoidal embedding and of the time MLP.
    image_shape
        ``(channels, height, width)`` of one image.

    Call ``module(x_t, t)`` with ``x_t`` of shape ``(B, *image_shape)`` (float32, data
    scaling ``[-1, 1]`` at ``t = 0``) and ``t`` of shape ``(B,)`` or a scalar: timesteps in
    training-step units ``0 .. 999``, integer or float. Returns the predicted noise, the
    same shape as ``x_t``.
    """

    def __init__(self, width: int = 256, num_blocks: int = 4, time_embed_dim: int = 64,
                 embed_dim: int = 128, dropout: float = 0.0,
                 image_shape: tuple[int, int, int] = (1, 8, 8)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.time_embed_dim = time_embed_dim
        num_pixels = math.prod(self.image_shape)
        self.time_mlp = nn.Sequential(nn.Linear(time_embed_dim, embed_dim), nn.SiLU(),
                                      nn.Linear(embed_dim, embed_dim))
        self.input = nn.Linear(num_pixels, width)
        self.blocks = nn.ModuleList([_ResidualBlock(width, embed_dim, dropout)
                                     for _ in range(num_blocks)])
        self.output_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, num_pixels)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batch = x_t.shape[0]
        t = torch.as_tensor(t, device=x_t.device)
        if t.ndim == 0:
            t = t.expand(batch)
        emb = self.time_mlp(timestep_embedding(t, self.time_embed_dim))
        h = self.input(x_t.reshape(batch, -1))
        for block in self.blocks:
            h = block(h, emb)
        eps = self.output(F.silu(self.output_norm(h)))
        return eps.reshape(x_t.shape)


class DigitsClassifier(nn.Module):
    """Small CNN classifier of 8×8 digits, smooth in its input (SiLU, average pooling).

    ``module(x)`` with ``x`` of shape ``(B, 1, 8, 8)`` in ``[-1, 1]`` returns class logits
    ``(B, num_classes)``; ``module.features(x)`` returns the penultimate-layer features
    ``(B, feature_dim)`` used by the classifier-Fréchet distance.
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), feature_dim: int = 64,
                 num_classes: int = 10, dropout: float = 0.2,
                 image_shape: tuple[int, int, int] = (1, 8, 8)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c1, c2 = channels
        in_channels, height, width = self.image_shape
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c1, 3, padding=1)
        self.conv3 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv4 = nn.Conv2d(c2, c2, 3, padding=1)
        self.fc = nn.Linear(c2 * (height // 2) * (width // 2), feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.conv1(x))
        h = F.silu(self.conv2(h))
        h = F.avg_pool2d(h, 2)
        h = F.silu(self.conv3(h))
        h = F.silu(self.conv4(h))
        return F.silu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class ClassLogProbability(nn.Module):
    """``log p(target | x)`` of a classifier returning logits ``(B, num_classes)``: a
    reward ``(B, 1, 8, 8) -> (B,)`` for steering towards one class."""

    def __init__(self, classifier: nn.Module, target: int):
        super().__init__()
        self.classifier = classifier
        self.target = int(target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.classifier(x), dim=-1)[:, self.target]


class MaskedSequenceTransformer(nn.Module):
    """Time-agnostic masked-diffusion denoiser over token sequences (MDLM-style).

    ``module(tokens)`` with ``tokens`` int64 ``(B, length)`` in ``0 .. vocab_size`` (the
    value ``vocab_size`` is the mask) returns logits ``(B, length, vocab_size)`` of the
    clean token at every position. It has no time input: under a masking schedule the
    number of masked positions already tells the noise level, and a time-agnostic
    denoiser makes the first-hitting sampler exact for the model (Zheng et al. 2024).
    A pre-norm transformer encoder with learned position embeddings, no dropout.
    """

    def __init__(self, vocab_size: int = 4, length: int = 75, width: int = 64,
                 depth: int = 3, heads: int = 4, ff_mult: int = 4):
        super().__init__()
        self.vocab_size, self.length = int(vocab_size), int(length)
        self.token_embedding = nn.Embedding(self.vocab_size + 1, width)
        self.position_embedding = nn.Parameter(torch.zeros(self.length, width))
        layer = nn.TransformerEncoderLayer(width, heads, ff_mult * width, dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.output_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, self.vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.token_embedding(tokens) + self.position_embedding
        return self.output(self.output_norm(self.encoder(h)))


class LinearSequenceRegressor(nn.Module):
    """Additive (position-weight-matrix) model ``f(x) = bias + sum_l W[l, x_l]`` of token
    sequences ``(B, length)`` -> ``(B,)``; fitted in closed form (ridge) by its script."""

    def __init__(self, vocab_size: int = 4, length: int = 75):
        super().__init__()
        self.vocab_size, self.length = int(vocab_size), int(length)
        self.weight = nn.Parameter(torch.zeros(self.length, self.vocab_size))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        picked = torch.gather(self.weight.expand(tokens.shape[0], -1, -1), 2,
                              tokens.unsqueeze(-1)).squeeze(-1)
        return picked.sum(1) + self.bias


class SequenceCNNRegressor(nn.Module):
    """Small 1-D CNN regressor of token sequences ``(B, length)`` -> ``(B,)``: one-hot
    input, two convolutions, global max and mean pooling, a linear head."""

    def __init__(self, vocab_size: int = 4, length: int = 75, channels: int = 32,
                 kernel_size: int = 9):
        super().__init__()
        self.vocab_size, self.length = int(vocab_size), int(length)
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(self.vocab_size, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.head = nn.Linear(2 * channels, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(tokens, self.vocab_size).to(self.conv1.weight.dtype).transpose(1, 2)
        h = F.silu(self.conv2(F.silu(self.conv1(x))))
        pooled = torch.cat([h.amax(-1), h.mean(-1)], dim=-1)
        return self.head(pooled).squeeze(-1)


def any_order_loss(module: nn.Module, x: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """Training loss of a time-agnostic masked-diffusion model: an unbiased estimate of its
    ELBO (:func:`masked_elbo`) divided by the length, one ``(k, mask)`` draw per row."""
    b, length = x.shape
    k = torch.randint(1, length + 1, (b,), generator=generator)
    ranks = torch.rand((b, length), generator=generator).argsort(1).argsort(1)
    masked = ranks < k[:, None]
    logits = module(torch.where(masked, module.vocab_size, x))
    nll = F.cross_entropy(logits.transpose(1, 2), x, reduction="none")
    return ((nll * masked).sum(1) / k).mean()


@torch.no_grad()
def masked_elbo(module: nn.Module, tokens: torch.Tensor, num_orders: int,
                generator: torch.Generator, batch_size: int = 512) -> torch.Tensor:
    """Monte-Carlo upper bound on ``-log p(x)`` (nats per sequence) of a time-agnostic
    masked-diffusion model, ``(n,)``.

    The any-order form of the masked-diffusion ELBO (Ou et al. 2024; Shi et al. 2024, for
    the linear schedule): with ``k`` uniform on ``1 .. L`` and ``k`` positions masked
    uniformly at random, ``-log p(x) <= E[(L / k) sum_{masked l} -log p(x_l | x_unmasked)]``.
    Averaged over ``num_orders`` draws of ``(k, mask)`` per sequence; the bound holds for
    the first-hitting sampler's model (an average over orders of autoregressive models).
    """
    vocab, length = module.vocab_size, module.length
    totals = torch.zeros(tokens.shape[0], dtype=torch.float64)
    for _ in range(num_orders):
        for lo in range(0, tokens.shape[0], batch_size):
            x = tokens[lo:lo + batch_size]
            b = x.shape[0]
            k = torch.randint(1, length + 1, (b,), generator=generator)
            ranks = torch.rand((b, length), generator=generator).argsort(1).argsort(1)
            masked = ranks < k[:, None]
            logp = F.log_softmax(module(torch.where(masked, vocab, x)).double(), -1)
            nll = -torch.gather(logp, 2, x.unsqueeze(-1)).squeeze(-1)
            totals[lo:lo + b] += (nll * masked).sum(1) * length / k.double()
    return totals / num_orders


def build(kind: str, architecture: dict) -> nn.Module:
    """Instantiate the network named ``kind`` from the ``architecture`` section of a config."""
    networks = {"DigitsDenoiser": DigitsDenoiser, "DigitsClassifier": DigitsClassifier,
                "MaskedSequenceTransformer": MaskedSequenceTransformer,
                "LinearSequenceRegressor": LinearSequenceRegressor,
                "SequenceCNNRegressor": SequenceCNNRegressor}
    if kind not in networks:
        raise ValueError(f"unknown network class {kind!r}; expected one of {sorted(networks)}")
    kwargs = dict(architecture)
    for name in ("image_shape", "channels"):
        if isinstance(kwargs.get(name), list):
            kwargs[name] = tuple(kwargs[name])
    return networks[kind](**kwargs)


def linear_alphas_cumprod(beta_start: float, beta_end: float,
                          num_train_timesteps: int) -> torch.Tensor:
    """``alpha_bar_t = prod_{s <= t} (1 - beta_s)`` for the linear VP schedule, in float64.

    ``beta_t = linspace(beta_start, beta_end, num_train_timesteps)[t]`` for
    ``t = 0 .. num_train_timesteps - 1`` (Ho et al., 2020), and
    ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``.
    """
    betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def trailing_timesteps(num_steps: int, num_train_timesteps: int) -> list[int]:
    """``num_steps`` decreasing training timesteps ending the grid at ``T - 1``.

    ``round(arange(T, 0, -T / num_steps)) - 1`` ("trailing" spacing, Lin et al., 2024,
    "Common Diffusion Noise Schedules and Sample Steps are Flawed"): the first step starts
    from ``t = T - 1``, the noise level at which ``x_T ~ N(0, I)`` is (nearly) exact; e.g.
    10 of 1000 steps gives ``999, 899, ..., 99``.
    """
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"num_steps must be in [1, {num_train_timesteps}], got {num_steps}")
    grid = torch.arange(num_train_timesteps, 0, -num_train_timesteps / num_steps,
                        dtype=torch.float64)
    return [int(v) for v in torch.round(grid).to(torch.int64) - 1]


@torch.no_grad()
def reference_sample(module: nn.Module, alphas_cumprod: torch.Tensor, num_samples: int,
                     num_steps: int, eta: float, generator: torch.Generator,
                     batch_size: int | None = None) -> torch.Tensor:
    """Plain-PyTorch DDIM(eta) sampling from an eps-prediction network, the reference loop.

    On the trailing timestep grid ``t_1 > ... > t_S`` (:func:`trailing_timesteps`), with
    ``a = alpha_bar[t_i]`` and ``a' = alpha_bar[t_{i+1}]`` (``a' = 1`` after the last step):
    ``x0 = (x - sqrt(1 - a) eps) / sqrt(a)``,
    ``sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a')``,
    ``x <- sqrt(a') x0 + sqrt(1 - a' - sigma^2) eps + sigma z`` (Song et al., 2021,
    "Denoising Diffusion Implicit Models", eq. 12). ``eta = 0`` is deterministic DDIM;
    ``eta = 1`` is DDPM ancestral sampling on the subset (the Gaussian posterior
    ``q(x_{t'} | x_t, x0)`` with variance ``(1 - a') / (1 - a) (1 - a / a')``; Ho et al.,
    2020). No clipping of ``x0``. Coefficients are computed in float64 and applied in the
    module's dtype; ``x_T`` and ``z`` come from ``generator`` in that order, step by step.
    """
    parameter = next(module.parameters())
    device, dtype = parameter.device, parameter.dtype
    shape = (num_samples,) + tuple(module.image_shape)
    steps = trailing_timesteps(num_steps, alphas_cumprod.shape[0])
    x = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
    chunk = batch_size or num_samples
    for i, t in enumerate(steps):
        a = float(alphas_cumprod[t])
        a_prev = float(alphas_cumprod[steps[i + 1]]) if i + 1 < len(steps) else 1.0
        t_batch = torch.full((min(chunk, num_samples),), t, device=device, dtype=torch.int64)
        eps = torch.cat([module(x[k:k + chunk], t_batch[:x[k:k + chunk].shape[0]])
                         for k in range(0, num_samples, chunk)])
        x0 = (x - math.sqrt(1.0 - a) * eps) / math.sqrt(a)
        sigma = eta * math.sqrt((1.0 - a_prev) / (1.0 - a)) * math.sqrt(1.0 - a / a_prev)
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1.0 - a_prev - sigma ** 2, 0.0)) * eps
        if sigma > 0:
            noise = torch.randn(shape, generator=generator, dtype=torch.float32)
            x = x + sigma * noise.to(device, dtype)
    return x
