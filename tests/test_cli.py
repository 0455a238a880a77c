"""The ``probinfer`` command: the main job (steering demo), the filter demo, the zoo list."""

import json

import pytest

from probinfer.cli import main


@pytest.mark.torch
def test_demo_writes_grid_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--digit", "7", "--out", str(out), "--samples", "2",
                 "--particles", "4", "--steps", "10"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["digit"] == 7 and 0 <= report["class_accuracy"] <= 1
    assert report["nfe"] == 2 * 4 * 10 and len(report["ess_trace_mean"]) == 11
    assert (out / "demo.png").stat().st_size > 0 and (out / "report.md").exists()
    assert "class accuracy" in capsys.readouterr().out


def test_filter_demo_reports_against_kalman(capsys):
    assert main(["filter", "--particles", "500", "--steps", "20", "--replicates", "3"]) == 0
    out = capsys.readouterr().out
    assert "exact log-likelihood (Kalman)" in out and "SMC log-evidence" in out


@pytest.mark.torch
def test_zoo_lists_the_shipped_models(capsys):
    assert main(["zoo"]) == 0
    assert "digits-ddpm" in capsys.readouterr().out


def test_bad_digit_is_a_clear_error():
    with pytest.raises(SystemExit, match="--digit must be 0..9"):
        main(["demo", "--digit", "12"])
