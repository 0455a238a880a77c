"""Optional dependencies: one import helper with an error that names the extra to install."""

from __future__ import annotations

import importlib


def require(module: str, extra: str, purpose: str):
    """Import ``module`` or raise ``ImportError`` saying what needs it and which extra of
    probinfer installs it (e.g. ``require("torch", "torch", "the torch bridge")``)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{purpose} needs {module}; install the extra with "
                          f"`pip install 'probinfer[{extra}]'`") from err
