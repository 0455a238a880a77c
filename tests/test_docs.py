"""The documentation site builds with warnings as errors (broken links, docstrings that
mkdocstrings cannot parse, pages missing from disk)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    command = [mkdocs] if mkdocs else [sys.executable, "-m", "mkdocs"]
    proc = subprocess.run([*command, "build", "--strict", "--site-dir", str(tmp_path / "site"),
                           "--config-file", str(ROOT / "mkdocs.yml")], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ,
                                                               "NO_MKDOCS_2_WARNING": "1"})
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert proc.returncode == 0, "\n".join(warnings) or proc.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "api/steer/index.html", "concepts/index.html",
                 "tutorials/steering/index.html", "zoo/digits_ddpm/index.html"):
        assert (site / page).is_file(), page
    assert "probinfer.steer.fk" in (site / "api/steer/index.html").read_text()
