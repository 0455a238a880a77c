"""MOSES molecules (Polykovskiy et al. 2020) from the ``molsets`` wheel, as SELFIES tokens.

``moses/dataset/data/train.csv.gz`` (1 584 663 SMILES) and ``test.csv.gz`` ship inside the
PyPI wheel of ``molsets``; its dependencies do not install on Python 3.11, so we read the
files from the wheel without importing ``moses``. Shared by ``train.py`` and ``evaluate.py``.
"""

from __future__ import annotations

import glob
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MOLSETS_VERSION = "0.3.1"
PAD = "[nop]"     # SELFIES' no-operation symbol: the decoder skips it, so padding is free


def find_wheel(wheel: str | None = None) -> Path:
    """The molsets wheel: ``wheel`` if given, else ``pip download --no-deps`` into a temp dir."""
    if wheel is not None:
        return Path(wheel)
    out = tempfile.mkdtemp(prefix="molsets-")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                    f"molsets=={MOLSETS_VERSION}", "-d", out], check=True)
    return Path(glob.glob(f"{out}/molsets-*.whl")[0])


def smiles(split: str, wheel: str | None = None) -> list[str]:
    """The SMILES of MOSES split ``"train"`` or ``"test"``."""
    import pandas as pd

    with zipfile.ZipFile(find_wheel(wheel)) as archive:
        frame = pd.read_csv(io.BytesIO(archive.read(f"moses/dataset/data/{split}.csv.gz")),
                            compression="gzip")
    return frame["SMILES"].tolist()


def subset(items: list[str], size: int, seed: int) -> list[str]:
    """``size`` items drawn without replacement (NumPy seed ``seed``), in drawn order."""
    index = np.random.default_rng(seed).choice(len(items), size=size, replace=False)
    return [items[i] for i in index]
