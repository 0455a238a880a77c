"""Progress bars: one switch for every long-running entry point, and compiled scans with a bar.

Every bar in probinfer goes through :func:`tqdm` here, which applies one switch on top
of the caller's own ``disable``:

* :func:`set_progress` ``(True | False | None)`` forces bars on, off, or back to automatic;
* otherwise the environment variable ``PROBINFER_PROGRESS`` (``0``/``false``/``off`` or
  ``1``/``true``/``on``) decides;
* otherwise (automatic) bars are shown on a terminal or in a Jupyter kernel, and hidden when
  the ``CI`` environment variable is set or stderr is not a terminal (log files, pipes,
  captured test output), where a bar's carriage returns only add noise.

A ``lax.scan`` over all steps gives no feedback. Long runs are split into at most ~20
chunks, each a compiled scan (at most two chunk lengths compile), and the bar advances
between chunks (:func:`chunked_scan`). The per-step keys are split up front, so results do
not depend on the chunking, nor on whether a bar is shown.
"""

from __future__ import annotations

import math
import os
import sys

import jax
import jax.numpy as jnp

PROGRESS_THRESHOLD = 200
ENV_VARIABLE = "PROBINFER_PROGRESS"

_OFF = ("0", "false", "off", "no")
_ON = ("1", "true", "on", "yes")
_forced: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """Show (``True``), hide (``False``) every progress bar, or decide automatically (``None``).

    Overrides ``PROBINFER_PROGRESS`` and the automatic choice until called again.

    Examples
    --------
    >>> import probinfer as pi
    >>> pi.set_progress(False)   # silence every bar, e.g. in a batch job
    >>> pi.progress_enabled()
    False
    >>> pi.set_progress(None)    # back to automatic
    """
    global _forced
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True, False or None, got {enabled!r}")
    _forced = enabled


def progress_enabled() -> bool:
    """Whether progress bars may be shown now (see the module docstring for the rules)."""
    if _forced is not None:
        return _forced
    setting = os.environ.get(ENV_VARIABLE, "").strip().lower()
    if setting in _OFF:
        return False
    if setting in _ON:
        return True
    if setting:
        raise ValueError(f"{ENV_VARIABLE} must be one of {_OFF + _ON}, got {setting!r}")
    if os.environ.get("CI"):
        return False
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def tqdm(*args, disable: bool = False, **kwargs):
    """``tqdm.auto.tqdm`` with the library's switch applied on top of ``disable``."""
    from tqdm.auto import tqdm as _tqdm

    return _tqdm(*args, disable=bool(disable) or not progress_enabled(), **kwargs)


def chunked_scan(scan_fn, state, keys, progress_bar, desc: str, initial: int = 0):
    """Run ``scan_fn(keys_chunk, state) -> (state, stacked_outputs)`` over ``keys``.

    ``progress_bar``: True/False, or None to show it only for more than
    ``PROGRESS_THRESHOLD`` steps. ``initial`` steps are counted as already done (e.g. an
    init step). Returns the final state and the outputs concatenated along the step axis.
    """
    num = keys.shape[0]
    total = num + initial
    show = total > PROGRESS_THRESHOLD if progress_bar is None else bool(progress_bar)
    show = show and progress_enabled()
    size = max(1, math.ceil(num / 20)) if show else max(num, 1)
    outputs = []
    with tqdm(total=total, disable=not show, desc=desc, unit="step") as bar:
        bar.update(initial)
        for start in range(0, num, size):
            chunk = keys[start:start + size]
            state, out = scan_fn(chunk, state)
            outputs.append(out)
            bar.update(chunk.shape[0])
    if not outputs:
        return state, None
    return state, jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *outputs)
