"""The model zoo: trained priors and oracles shipped in ``models/``.

Each model lives in ``models/<dir>/`` as ``model.safetensors`` (the weights),
``config.json`` (architecture, diffusion schedule, data scaling, expected tensor names and
shapes, SHA-256 of the weights) and ``MODEL_CARD.md``, next to the script that trained it.
:func:`load` finds that folder in a source checkout, or where an installed wheel put it
(``<prefix>/share/probinfer/models``), rebuilds the torch network from the config and
loads the weights with safetensors (never pickle), checking them against the config.

Shipped models:

``digits-ddpm``
    An eps-prediction DDPM on scikit-learn's 8×8 digits, linear VP schedule with 1000
    training steps. ``module(x_t, t)``: ``x_t`` float32 ``(B, 1, 8, 8)``, ``t`` timesteps
    in ``0 .. 999`` (int or float, ``(B,)`` or scalar); returns the predicted noise.
``digits-classifier``
    A CNN on the same split; ``module(x)`` returns class logits ``(B, 10)`` for images
    ``(B, 1, 8, 8)`` in ``[-1, 1]``, ``module.features(x)`` the penultimate features.
``lac-promoter-mdm``
    A masked-diffusion transformer over 75-bp E. coli lac promoters (the sort-seq library
    shipped in MAVE-NN's wheel); ``module(tokens)`` with tokens ``(B, 75)`` (A, C, G, T =
    0..3, mask 4) returns logits ``(B, 75, 4)``. Time-agnostic.
``moses-selfies-mdm``
    The same network over 48 SELFIES tokens of MOSES molecules (padding ``[nop]``).
``lac-expression``, ``lac-expression-heldout``
    Expression regressors of lac promoters (mean sort bin): ridge on one-hot sequences
    (training split; the steering oracle) and a small CNN (validation split; evaluation
    only). Use them through :func:`load_oracle`.

:func:`load_prior` returns a shipped diffusion model as a ready
:class:`~probinfer.diffusion.TorchDenoiser` prior (schedule, prediction type and sample
shape read from its config), with the stochastic DDPM sampler by default so that it can be
steered; :func:`load_reward` returns the shipped classifier as a differentiable steering
reward ``log p(target | x)``. For the sequence priors :func:`load_prior` returns a
:class:`~probinfer._zoo_design.SequencePrior` (a masked torch prior with ``decode`` /
``encode``), and :func:`load_oracle` the design rewards (``docs/dna.md``,
``docs/molecules.md``).

torch is imported lazily: ``import probinfer`` works without it; :func:`load` and
:func:`load_prior` need the ``probinfer[torch]`` extra. :func:`digits` needs only scikit-learn.
"""

# Standard-library and NumPy names are imported under private aliases so that the public
# namespace ``pi.zoo`` holds only what ``__all__`` lists.
import hashlib as _hashlib
import json as _json
import os as _os
import sys as _sys
import sysconfig as _sysconfig
from pathlib import Path as _Path
from typing import Any as _Any
from typing import NamedTuple as _NamedTuple

import numpy as _np

from probinfer._optional import require as _require

__all__ = ["MODELS", "ZooModel", "available", "model_dir", "load", "load_weights", "read_config",
           "weights_manifest", "digits", "load_prior", "load_reward", "load_oracle", "ORACLES",
           "combine_oracles",
           "WEIGHTS_FILE",
           "CONFIG_FILE", "CARD_FILE", "DIGITS_TEST_FRACTION", "DIGITS_SPLIT_SEED"]

MODELS = {"digits-ddpm": "digits_ddpm", "digits-classifier": "digits_classifier",
          "lac-promoter-mdm": "lac_promoter_mdm", "moses-selfies-mdm": "moses_selfies_mdm",
          "lac-expression": "lac_expression", "lac-expression-heldout": "lac_expression_heldout"}

# Oracles of :func:`load_oracle`: RDKit properties of molecules, and zoo regressors of DNA;
# besides these, "jaspar:<matrix id>" names any JASPAR matrix (a motif reward of DNA).
ORACLES = ("qed", "sa", "logp", "mw", "lac-expression", "lac-expression-heldout")
_JASPAR_PREFIX = "jaspar:"

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"

# The one held-out split every digits model is trained and evaluated on.
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


class ZooModel(_NamedTuple):
    """A loaded zoo model.

    Attributes
    ----------
    module : the ``torch.nn.Module`` in eval mode, with gradients disabled on its parameters.
    config : the parsed ``config.json``.
    weights_path, card_path : where the weights and the model card were found.
    """

    module: _Any
    config: dict
    weights_path: _Path
    card_path: _Path


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(MODELS)


def _search_roots() -> list[_Path]:
    """Folders that may hold ``<model dir>/``: the checkout first, then installed data."""
    roots = [_Path(__file__).resolve().parents[1] / "models"]
    schemes = [None, f"{_os.name}_user"]
    for scheme in schemes:
        try:
            data = _sysconfig.get_path("data", scheme) if scheme else _sysconfig.get_path("data")
        except KeyError:
            continue
        roots.append(_Path(data) / "share" / "probinfer" / "models")
    roots.append(_Path(_sys.prefix) / "share" / "probinfer" / "models")
    unique = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def model_dir(name: str, models_dir=None) -> _Path:
    """The folder holding the files of zoo model ``name``.

    ``models_dir``, when given, is the only place searched (a folder laid out like the
    repository's ``models/``); otherwise the checkout's ``models/`` and then the installed
    ``<prefix>/share/probinfer/models``.

    Raises
    ------
    ValueError : ``name`` is not a zoo model.
    FileNotFoundError : no searched folder holds its weights and config.
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"name must be one of {available()}, got {name!r}")
    searched = []
    roots = [_Path(models_dir)] if models_dir is not None else _search_roots()
    for root in roots:
        folder = root / MODELS[name]
        searched.append(str(folder))
        if (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"zoo model {name!r}: no folder with {WEIGHTS_FILE} and {CONFIG_FILE} found; "
        f"searched {searched}")


def _import_torch():
    _require("safetensors.torch", "torch", "probinfer.zoo.load")
    return _require("torch", "torch", "probinfer.zoo.load")


def _sha256(path: _Path) -> str:
    digest = _hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_manifest(path: _Path, state: dict) -> dict:
    """The ``weights`` block of a model's ``config.json``: file, dtype, SHA-256, parameter
    count and tensor shapes — what :func:`load_weights` validates against. Written by the
    training scripts in ``models/``."""
    path = _Path(path)
    return {
        "file": WEIGHTS_FILE, "dtype": "float32", "sha256": _sha256(path),
        "num_parameters": int(sum(v.numel() for v in state.values())),
        "tensors": {k: list(v.shape) for k, v in state.items()},
    }


def read_config(path) -> dict:
    """Parse a zoo ``config.json`` and check it has the sections :func:`load` needs."""
    path = _Path(path)
    try:
        config = _json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, _json.JSONDecodeError) as err:
        raise ValueError(f"cannot read zoo config {path}: {err}") from err
    missing = [k for k in ("name", "network", "architecture", "weights") if k not in config]
    if missing or not isinstance(config.get("weights"), dict) \
            or "tensors" not in config["weights"]:
        raise ValueError(f"zoo config {path} lacks the sections {missing or ['weights.tensors']}")
    return config


def load_weights(path, config: dict, module) -> None:
    """Load a safetensors file into ``module`` after checking it against ``config``.

    Checks, each failing with a ``ValueError`` that names ``path``: the SHA-256 recorded
    in the config (when present), that the file parses as safetensors, that its tensor
    names and shapes equal both the config's ``weights.tensors`` and the module's
    parameters, and that every value is finite.
    """
    torch = _import_torch()
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = _Path(path)
    expected_hash = config["weights"].get("sha256")
    if expected_hash is not None and _sha256(path) != expected_hash:
        raise ValueError(
            f"weights file {path} is corrupted or was replaced: its SHA-256 differs from the "
            f"one in the model's config ({expected_hash[:12]}...)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"weights file {path} is not a readable safetensors file: {err}") \
            from err

    expected = {k: tuple(v) for k, v in config["weights"]["tensors"].items()}
    module_shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    if expected != module_shapes:
        raise ValueError(
            f"config for {path} does not describe the {type(module).__name__} its architecture "
            f"builds: {_shape_diff(expected, module_shapes, 'config', 'network')}")
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        raise ValueError(f"weights file {path} does not match its config: "
                         f"{_shape_diff(expected, found, 'config', 'file')}")
    for tensor_name, value in state.items():
        if not torch.isfinite(value).all():
            raise ValueError(f"weights file {path}: tensor {tensor_name!r} has non-finite values")
    module.load_state_dict(state, strict=True)


def _shape_diff(expected: dict, found: dict, expected_label: str, found_label: str) -> str:
    only_expected = sorted(set(expected) - set(found))
    only_found = sorted(set(found) - set(expected))
    shapes = [f"{k}: {expected_label} {expected[k]} vs {found_label} {found[k]}"
              for k in sorted(set(expected) & set(found)) if expected[k] != found[k]]
    parts = []
    if only_expected:
        parts.append(f"missing in {found_label}: {only_expected[:5]}")
    if only_found:
        parts.append(f"unexpected in {found_label}: {only_found[:5]}")
    if shapes:
        parts.append("shape mismatch: " + "; ".join(shapes[:5]))
    return ", ".join(parts)


def load(name: str, device: str = "cpu", models_dir=None) -> ZooModel:
    """Load a shipped zoo model as a torch module in eval mode.

    Parameters
    ----------
    name : one of :func:`available`: ``"digits-ddpm"`` or ``"digits-classifier"``.
    device : torch device to put the module on.
    models_dir : optional folder laid out like ``models/`` to load from instead of the
        shipped files (see :func:`model_dir`).

    Returns
    -------
    ZooModel
        ``(module, config, weights_path, card_path)``. The module's parameters have
        ``requires_grad=False``; gradients with respect to inputs still flow.

    Raises
    ------
    ImportError : torch or safetensors is missing (install ``probinfer[torch]``).
    ValueError : unknown ``name``, or a weights file that is corrupted or does not match
        its config (the message names the file).

    Examples
    --------
    >>> import torch
    >>> import probinfer as pi
    >>> ddpm = pi.zoo.load("digits-ddpm")
    >>> eps = ddpm.module(torch.zeros(4, 1, 8, 8), torch.full((4,), 999))
    >>> tuple(eps.shape)
    (4, 1, 8, 8)
    """
    folder = model_dir(name, models_dir)
    _import_torch()
    from probinfer import _zoo_networks

    config = read_config(folder / CONFIG_FILE)
    module = _zoo_networks.build(config["network"], config["architecture"])
    load_weights(folder / WEIGHTS_FILE, config, module)
    module.eval()
    module.requires_grad_(False)
    module.to(device)
    return ZooModel(module=module, config=config, weights_path=folder / WEIGHTS_FILE,
                    card_path=folder / CARD_FILE)


def digits(split: str = "test") -> tuple[_np.ndarray, _np.ndarray]:
    """scikit-learn's 8×8 digits in the zoo's data scaling and fixed split.

    Parameters
    ----------
    split : ``"train"`` (1437 images), ``"test"`` (the held-out 360) or ``"all"`` (1797).
        The split is stratified by class, 20 % held out, seed 0; the zoo models were
        trained on ``"train"`` only.

    Returns
    -------
    images : float32 array ``(n, 1, 8, 8)`` with values ``pixel / 8 - 1`` in ``[-1, 1]``.
    labels : int64 array ``(n,)``.

    Examples
    --------
    >>> import probinfer as pi
    >>> images, labels = pi.zoo.digits("test")
    >>> images.shape, labels.shape
    ((360, 1, 8, 8), (360,))
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    data = load_digits()
    images = (data.images.astype(_np.float32) / 8.0 - 1.0)[:, None, :, :]
    labels = data.target.astype(_np.int64)
    if split == "all":
        return images, labels
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, stratify=labels,
        random_state=DIGITS_SPLIT_SEED)
    return (train_x, train_y) if split == "train" else (test_x, test_y)


def load_prior(name: str = "digits-ddpm", num_steps: int | None = None, sampler="ddpm",
               spacing: str = "trailing", device: str = "cpu", models_dir=None, **kwargs):
    """A shipped diffusion model as a ready :class:`~probinfer.diffusion.TorchDenoiser`.

    The schedule, prediction type and sample shape are rebuilt from the model's
    ``config.json`` (for ``digits-ddpm``: eps-prediction, ``betas = linspace(1e-4, 0.02,
    1000)``, the network called with integer training timesteps ``0 .. 999``, samples
    ``(1, 8, 8)`` in ``[-1, 1]``). The default ``"trailing"`` grid (999, 979, ... for 50
    steps) is the one the model card's quality numbers were measured on.

    The default sampler is ``"ddpm"`` (ancestral, stochastic): steering (``pi.steer.fk``,
    SVDD) resamples particles and needs the copies of a resampled particle to move apart,
    which a deterministic sampler never does. Pass ``sampler="ddim"`` for deterministic
    unguided sampling (the model card's quality table uses it).

    Parameters
    ----------
    name : a zoo diffusion model: ``"digits-ddpm"``, or the masked sequence priors
        ``"lac-promoter-mdm"`` and ``"moses-selfies-mdm"`` (returned as a
        :class:`~probinfer._zoo_design.SequencePrior` with ``decode``/``encode``; there
        ``num_steps=None`` means one step per position with the exact first-hitting
        sampler, and ``sampler`` is ``"first_hitting"`` or ``"ancestral"``, default
        first-hitting when ``num_steps`` is the length and ancestral otherwise).
    num_steps : number of reverse transitions (default 50 for ``digits-ddpm``, the
        sequence length for the masked priors).
    sampler : ``"ddpm"`` (default, stochastic), ``"ddim"`` (eta 0, deterministic),
        ``pi.diffusion.DDIM(eta=...)``, ... .
    spacing : ``"trailing"``, ``"leading"``, ``"linspace"``, ``"uniform"``, ``"quadratic"``
        or ``"karras"`` (see :class:`~probinfer.diffusion.TorchDenoiser`).
    device : torch device of the network.
    models_dir : see :func:`load`.
    **kwargs : passed to :class:`~probinfer.diffusion.TorchDenoiser` (``max_batch_size``,
        ``differentiable``, ``timesteps``...).

    Examples
    --------
    >>> import jax, probinfer as pi
    >>> prior = pi.zoo.load_prior("digits-ddpm", num_steps=10)
    >>> prior.sample(jax.random.key(0), 4).shape
    (4, 1, 8, 8)
    """
    model = load(name, device=device, models_dir=models_dir)
    config = model.config
    if config.get("kind") == "masked":
        return _masked_prior(name, model, num_steps, sampler, kwargs)
    if num_steps is None:
        num_steps = 50
    if "schedule" not in config or "prediction" not in config:
        raise ValueError(f"zoo model {name!r} is not a diffusion model (its config has no "
                         "schedule/prediction)")
    from probinfer.diffusion import DiscreteVPSchedule, TorchDenoiser

    sched = config["schedule"]
    if sched.get("type") != "linear":
        raise ValueError(f"zoo model {name!r}: unsupported schedule type {sched.get('type')!r}")
    schedule = DiscreteVPSchedule.linear(int(sched["num_train_timesteps"]),
                                         float(sched["beta_start"]), float(sched["beta_end"]))
    return TorchDenoiser(model.module, schedule, prediction=config["prediction"],
                         num_steps=num_steps, event_shape=tuple(config["sample_shape"]),
                         sampler=sampler, spacing=spacing, **kwargs)


def _masked_prior(name, model, num_steps, sampler, kwargs):
    from probinfer._zoo_design import SequencePrior, tokenizer_from_config

    if sampler == "ddpm":       # the continuous default; masked priors name their own
        sampler = "first_hitting" if num_steps in (None, model.config["architecture"]["length"]) \
            else "ancestral"
    return SequencePrior(model.module, tokenizer_from_config(model.config), name, model.config,
                         num_steps=num_steps, sampler=sampler, **kwargs)


def load_oracle(name: str, *, device: str = "cpu", models_dir=None):
    """A design oracle as a batched steering reward of token sequences.

    Parameters
    ----------
    name : one of :data:`ORACLES`:

        * ``"qed"`` (RDKit QED, 0..1), ``"sa"`` (MINUS the RDKit Contrib SA score, so -1 is
          easiest and -10 hardest to synthesise: higher is better), ``"logp"`` (Crippen
          logP), ``"mw"`` (molecular weight): properties of the molecules that
          ``moses-selfies-mdm`` tokens decode to (need the ``chem`` extra);
        * ``"lac-expression"``: the steering oracle of lac-promoter expression (ridge on
          one-hot, trained on MAVE-NN's training split), ``"lac-expression-heldout"``: a
          CNN trained on the disjoint validation split, for evaluation only;
        * ``"jaspar:<matrix id>"`` (e.g. ``"jaspar:MA0108.3"``, or ``"jaspar:MA0108"`` for
          the latest version): a motif reward of ``lac-promoter-mdm`` sequences, the best
          log2-odds match of that JASPAR 2024 matrix on either strand (needs the ``dna``
          extra). JASPAR holds no *E. coli* matrices (no CRP, no sigma70 boxes), so a
          motif here is a eukaryotic or generic one; see ``docs/dna.md``.

        Weighted sums of oracles: :func:`combine_oracles`.
    device, models_dir : see :func:`load`.

    Returns
    -------
    For ``"jaspar:..."`` a :class:`~probinfer._zoo_design.MotifReward`: a pure JAX reward of
    one token sequence (no host call), with ``score`` / ``score_tokens`` on the host.
    Otherwise a :class:`~probinfer._zoo_design.Oracle` (a :class:`~probinfer.steer.HostReward`): call
    it on ONE token sequence inside JAX code (one host call per batch under ``vmap``), or
    ``oracle.score(strings)`` / ``oracle.score_tokens(tokens)`` on the host. A molecule
    RDKit cannot score gets NaN and is counted in ``oracle.num_failures``; steer with
    ``invalid_reward="reject"`` so that such designs count as ``-inf`` (and are counted in
    ``info.num_invalid_rewards``) instead of stopping the run.

    Examples
    --------
    >>> import probinfer as pi
    >>> qed = pi.zoo.load_oracle("qed")
    >>> round(float(qed.score(["c1ccccc1"])[0]), 3)
    0.443
    """
    if not isinstance(name, str) or (name not in ORACLES and not (
            name.startswith(_JASPAR_PREFIX) and len(name) > len(_JASPAR_PREFIX))):
        raise ValueError(f"name must be one of {list(ORACLES)} or '{_JASPAR_PREFIX}<matrix id>' "
                         f"(e.g. '{_JASPAR_PREFIX}MA0108.3'), got {name!r}")
    from probinfer import _zoo_design

    if name.startswith(_JASPAR_PREFIX):
        config = read_config(model_dir("lac-promoter-mdm", models_dir) / CONFIG_FILE)
        return _zoo_design.jaspar_oracle(name[len(_JASPAR_PREFIX):],
                                         _zoo_design.tokenizer_from_config(config))
    if name in _zoo_design.CHEMISTRY_ORACLES:
        config = read_config(model_dir("moses-selfies-mdm", models_dir) / CONFIG_FILE)
        return _zoo_design.chemistry_oracle(name, _zoo_design.tokenizer_from_config(config))
    model = load(name, device=device, models_dir=models_dir)
    card = model.config
    description = (f"{name}: {card['network']} trained on the {card['data']['trained_on']} "
                   f"split, test R² {card['test_r2']}")
    return _zoo_design.torch_sequence_oracle(name, model.module,
                                             _zoo_design.tokenizer_from_config(card),
                                             description)


def combine_oracles(weights: dict, *, name: str | None = None, device: str = "cpu",
                    models_dir=None):
    """A weighted sum of design oracles, as one oracle: ``sum_i weights[o_i] * o_i(x)``.

    Parameters
    ----------
    weights : ``{oracle: weight}``; an oracle is a name of :func:`load_oracle` or a loaded
        oracle. All must score the same sequences (molecules, or lac promoters).
    name : the combined oracle's name (default: the weighted sum written out).
    device, models_dir : see :func:`load`, for oracles given by name.

    Returns
    -------
    A :class:`~probinfer._zoo_design.Oracle` (a host reward). A design that any component
    fails to score scores NaN, counted in ``num_failures`` like a single oracle's failures.

    Examples
    --------
    Drug-likeness traded against ease of synthesis (``"sa"`` is MINUS the SA score, so both
    terms are higher-is-better):

    >>> import probinfer as pi
    >>> qed_sa = pi.zoo.combine_oracles({"qed": 1.0, "sa": 0.1})
    >>> round(float(qed_sa.score(["c1ccccc1"])[0]), 3)
    0.343
    """
    from probinfer import _zoo_design

    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"weights must be a non-empty dict {{oracle: weight}}, got {weights!r}")
    loaded = {}
    for oracle, weight in weights.items():
        if isinstance(oracle, str):
            oracle = load_oracle(oracle, device=device, models_dir=models_dir)
        elif not isinstance(oracle, (_zoo_design.Oracle, _zoo_design.MotifReward)):
            raise TypeError("weights keys must be oracle names or oracles of load_oracle, got "
                            f"{type(oracle).__name__}")
        loaded[oracle] = weight
    return _zoo_design.combine_oracles(loaded, name)


def load_reward(name: str = "digits-classifier", target: int = 7, *,
                differentiable: bool = True, device: str = "cpu", models_dir=None,
                max_batch_size: int | None = None):
    """A shipped classifier as a steering reward ``r(x) = log p(target | x)``.

    Parameters
    ----------
    name : a zoo classifier (``"digits-classifier"``).
    target : the class to steer towards (``0 .. 9`` for the digits).
    differentiable : gradients through torch autograd (for
        ``pi.steer.fk(..., proposal="gradient")``); see :func:`probinfer.steer.torch_reward`.
    device, models_dir : see :func:`load`.
    max_batch_size : split host calls into chunks of at most this many images.

    Returns
    -------
    A :class:`~probinfer.steer.TorchReward`: a function of ONE image ``(1, 8, 8)`` in
    ``[-1, 1]`` returning the log-probability of ``target`` (one batched host call per
    step under ``vmap``).

    Examples
    --------
    >>> import jax, probinfer as pi
    >>> prior = pi.zoo.load_prior("digits-ddpm", num_steps=10, differentiable=True)
    >>> reward = pi.zoo.load_reward("digits-classifier", target=7)
    >>> res = pi.steer.fk(jax.random.key(0), prior, reward, 8, proposal="gradient")
    >>> res.samples.shape
    (8, 1, 8, 8)
    """
    model = load(name, device=device, models_dir=models_dir)
    classes = model.config.get("classes")
    if classes is None:
        raise ValueError(f"zoo model {name!r} is not a classifier (its config has no classes)")
    if isinstance(target, bool) or not isinstance(target, (int, _np.integer)) \
            or not 0 <= target < len(classes):
        raise ValueError(f"target must be a class index in 0..{len(classes) - 1}, got "
                         f"{target!r}")
    from probinfer import _zoo_networks
    from probinfer.steering._torch_reward import torch_reward

    return torch_reward(_zoo_networks.ClassLogProbability(model.module, int(target)),
                        differentiable, max_batch_size=max_batch_size)
