"""The main job runs and reports against the exact answer."""

from probinfer.cli import main


def test_demo_runs_and_prints_report(capsys):
    assert main(["demo", "--particles", "500", "--steps", "20", "--replicates", "3"]) == 0
    out = capsys.readouterr().out
    assert "exact log-likelihood (Kalman)" in out and "SMC log-evidence" in out
