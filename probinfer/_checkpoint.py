"""Checkpoints of long runs: the state of a run saved every k steps, in ``.npz``.

A checkpoint is the run's pytree of arrays (its state and the per-step traces so far),
flattened to numbered arrays in one ``.npz`` file (NumPy's own format; loaded with
``allow_pickle=False``, so opening a checkpoint never runs code), plus a JSON header that
names the run it belongs to (the key, the sizes, the tree structure) so that resuming a
different run is refused rather than silently wrong. Files are written to a temporary
name and renamed, so a run killed mid-write (Ctrl-C, a preempted job) keeps the previous
complete checkpoint. We wrote this rather than use Orbax: one file per run with a plain
format is all a particle run needs, and Orbax is a heavy dependency for that.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import jax

from probinfer._validation import check_positive_int

_FORMAT = "probinfer-checkpoint-1"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Save a run's state to ``path`` every ``every`` steps (``.npz``, never pickle).

    Pass it as ``checkpoint=`` to :func:`probinfer.smc.run`; after an interruption, the same
    call with ``resume_from=path`` (and the same key and model) continues from the last
    saved step and returns exactly the result of an uninterrupted run.

    Example
    -------
    >>> import jax, probinfer as pi, tempfile, os
    >>> ssm = pi.ssm.LinearGaussian.scalar()
    >>> _, ys = ssm.simulate(jax.random.key(0), 30)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> res = pi.smc.run(1, pi.ssm.bootstrap(ssm, ys), 500,
    ...                  checkpoint=pi.Checkpoint(path, every=10))
    >>> again = pi.smc.run(1, pi.ssm.bootstrap(ssm, ys), 500, resume_from=path)
    >>> bool(again.log_evidence == res.log_evidence)
    True
    """

    path: str | os.PathLike
    every: int = 10

    def __post_init__(self):
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(f"Checkpoint path must be a str or os.PathLike, got "
                            f"{type(self.path).__name__}")
        if not str(self.path).endswith(".npz"):
            raise ValueError(f"Checkpoint path must end in .npz, got {str(self.path)!r}")
        object.__setattr__(self, "every", check_positive_int(self.every, "every"))


def check_options(checkpoint, resume_from) -> None:
    """Validate ``checkpoint=`` and ``resume_from=`` of a runner."""
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"checkpoint must be a probinfer.Checkpoint, got "
                        f"{type(checkpoint).__name__}")
    if resume_from is not None and not isinstance(resume_from, (str, os.PathLike)):
        raise TypeError(f"resume_from must be a path, got {type(resume_from).__name__}")


def save(path, tree, header: dict) -> None:
    """Write ``tree`` (a pytree of arrays) and ``header`` to ``path`` atomically."""
    path = Path(path)
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    arrays = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    header = dict(header, format=_FORMAT, treedef=str(treedef), num_leaves=len(leaves))
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load(path, like, header: dict):
    """Read a checkpoint written by :func:`save` for a run described by ``header``.

    ``like``: a pytree with the checkpoint's structure (its leaves may be shape structs;
    leading axes of the saved leaves may differ, e.g. a number of steps). Raises
    ``ValueError`` naming the first field of ``header`` that differs from the file's.
    Returns ``(tree, saved_header)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume_from: no checkpoint at {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            saved = json.loads(bytes(data["header"]).decode())
            if saved.get("format") != _FORMAT:
                raise ValueError
            leaves = [data[f"leaf_{i}"] for i in range(saved["num_leaves"])]
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"resume_from: {str(path)!r} is not a probinfer checkpoint") from error
    treedef = jax.tree_util.tree_structure(like)
    expected = dict(header, treedef=str(treedef))
    for name, value in expected.items():
        if saved.get(name) != value:
            raise ValueError(f"resume_from: the checkpoint {str(path)!r} belongs to another "
                             f"run ({name}: saved {saved.get(name)!r}, this run {value!r}); "
                             "resume with the same key, model and settings")
    return jax.tree_util.tree_unflatten(treedef, leaves), saved
