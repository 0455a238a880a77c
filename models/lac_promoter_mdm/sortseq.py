"""The E. coli lac-promoter sort-seq library (Kinney et al. 2010) as shipped in MAVE-NN's wheel.

``mavenn/examples/datasets/sortseq_data.csv.gz`` holds 50 518 mutagenised 75-bp lac
promoter sequences (column ``x``), each with read counts ``ct_0 .. ct_9`` in ten
fluorescence-sorted bins and a split label ``set`` (training 30 516, validation 10 067,
test 9 935). We read the CSV straight from the wheel: importing ``mavenn`` would pull in
TensorFlow. Shared by the training scripts of ``lac-promoter-mdm``, ``lac-expression`` and
``lac-expression-heldout``; the splits are MAVE-NN's own.

Expression label: the read-weighted mean bin ``sum_b b ct_b / sum_b ct_b`` (0 = dimmest bin,
9 = brightest); most sequences have a single read, so labels are noisy.
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

MAVENN_VERSION = "1.1.4"
MEMBER = "mavenn/examples/datasets/sortseq_data.csv.gz"
ALPHABET = "ACGT"
LENGTH = 75
SPLITS = ("training", "validation", "test")


def find_wheel(wheel: str | None = None) -> Path:
    """The mavenn wheel: ``wheel`` if given, else ``pip download --no-deps`` into a temp dir."""
    if wheel is not None:
        return Path(wheel)
    out = tempfile.mkdtemp(prefix="mavenn-")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                    f"mavenn=={MAVENN_VERSION}", "-d", out], check=True)
    return Path(glob.glob(f"{out}/mavenn-*.whl")[0])


def load(wheel: str | None = None) -> dict:
    """``{split: (tokens int64 (n, 75) with A,C,G,T = 0..3, mean-bin labels float64 (n,))}``."""
    import pandas as pd

    with zipfile.ZipFile(find_wheel(wheel)) as archive:
        frame = pd.read_csv(io.BytesIO(archive.read(MEMBER)), compression="gzip")
    counts = frame[[f"ct_{b}" for b in range(10)]].to_numpy(np.float64)
    labels = counts @ np.arange(10) / counts.sum(1)
    lookup = np.full(256, -1, np.int64)
    lookup[np.frombuffer(ALPHABET.encode(), np.uint8)] = np.arange(4)
    seqs = np.stack([lookup[np.frombuffer(s.encode(), np.uint8)] for s in frame["x"]])
    if seqs.shape[1] != LENGTH or (seqs < 0).any():
        raise ValueError("unexpected sequences in the sort-seq file")
    return {name: (seqs[(frame["set"] == name).to_numpy()],
                   labels[(frame["set"] == name).to_numpy()]) for name in SPLITS}
