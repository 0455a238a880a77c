"""The ``probinfer`` command: the main job (steering demo), the filter demo, the zoo list."""

import json

import pytest

import probinfer as pi
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


@pytest.mark.parametrize("command", [[], ["demo"], ["steer"], ["bench"], ["filter"], ["zoo"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: probinfer") and "--quiet" in out


def test_steer_exact_prior_reports_the_closed_form_answer(tmp_path, capsys):
    out = tmp_path / "fk"
    assert main(["steer", "--prior", "gmm-2d", "--reward", "first-coordinate", "--num-steps",
                 "10", "--num-particles", "64", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    # Tilting the mixture by exp(4 x_1) moves both components by 4 * 0.5 = 2 along x_1 and
    # puts almost all mass on the one at +2: the exact mean reward is 4.
    assert report["exact_mean_reward"] == pytest.approx(4.0, abs=1e-3)
    assert report["mean_reward"] > 2.0                   # the prior's mean of x_1 is -1.2
    assert report["nfe"] == 64 * 10 and report["log_evidence"] is not None
    loaded = pi.Result.load(out / "samples.npz")
    assert loaded.samples.shape == (64, 2) and (out / "samples.png").stat().st_size > 0
    assert "exact 4.000" in capsys.readouterr().out and (out / "report.md").exists()


def test_steer_svdd_and_best_of_n_on_the_exact_prior(tmp_path):
    assert main(["-q", "steer", "--prior", "gmm-2d", "--reward", "first-coordinate",
                 "--method", "svdd", "--num-steps", "5", "--num-particles", "8",
                 "--num-candidates", "4", "--temperature", "0", "--out",
                 str(tmp_path / "svdd")]) == 0
    svdd = json.loads((tmp_path / "svdd" / "report.json").read_text())
    assert svdd["method"] == "svdd" and "exact_mean_reward" not in svdd    # T = 0 is argmax
    assert main(["steer", "--prior", "gmm-2d", "--reward", "first-coordinate", "--method",
                 "best-of-n", "--num-steps", "5", "--num-particles", "6", "--samples", "3",
                 "--out", str(tmp_path / "bon"), "--quiet"]) == 0
    best = json.loads((tmp_path / "bon" / "report.json").read_text())
    assert best["num_samples"] == 3 and best["num_reward_evaluations"] == 18


@pytest.mark.torch
def test_steer_zoo_prior_with_zoo_reward(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["--quiet", "steer", "--prior", "digits-ddpm", "--reward", "digits-classifier",
                 "--method", "best-of-n", "--num-steps", "4", "--num-particles", "3",
                 "--samples", "2", "--target", "5", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""                 # --quiet
    report = json.loads((out / "report.json").read_text())
    assert report["target"] == 5 and report["nfe"] == 2 * 3 * 4
    assert pi.Result.load(out / "samples.npz").samples.shape == (2, 1, 8, 8)
    with pytest.raises(SystemExit, match="target must be a class index in 0..9"):
        main(["steer", "--target", "11", "--num-steps", "2", "--out", str(out)])


@pytest.mark.torch
def test_steer_sequence_prior_with_an_oracle(tmp_path):
    out = tmp_path / "lac"
    assert main(["-q", "steer", "--prior", "lac-promoter-mdm", "--reward", "lac-expression",
                 "--method", "best-of-n", "--num-steps", "3", "--num-particles", "4",
                 "--samples", "2", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    rows = (out / "samples.txt").read_text().splitlines()
    assert report["num_samples"] == 2 and len(rows) == 3 and "target" not in report
    assert set(rows[1].split("\t")[2]) <= set("ACGT")       # decoded DNA
    with pytest.raises(SystemExit, match="rewards that fit it: lac-expression"):
        main(["steer", "--prior", "lac-promoter-mdm", "--reward", "digits-classifier"])


@pytest.mark.parametrize("argv, message", [
    (["stear"], "did you mean 'steer'"),
    (["steer", "--method", "svd"], "did you mean 'svdd'"),
    (["steer", "--prior", "gmm2d"], "unknown prior 'gmm2d'; did you mean 'gmm-2d'"),
    (["steer", "--prior", "gmm-2d", "--reward", "first-coordinat"],
     "unknown reward 'first-coordinat'; did you mean 'first-coordinate'"),
    (["steer", "--prior", "gmm-2d", "--reward", "digits-classifier"],
     "does not fit the prior 'gmm-2d' (rewards that fit it: first-coordinate)"),
    (["steer", "--prior", "gmm-2d", "--reward", "first-coordinate", "--num-particles", "0"],
     "--num-particles must be >= 1"),
    (["steer", "--prior", "gmm-2d", "--reward", "first-coordinate", "--temperature", "0"],
     "--temperature must be > 0"),
    (["bench", "steering_gm"], "unknown study 'steering_gm'; did you mean 'steering_gmm'"),
])
def test_unknown_names_suggest_the_closest(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    text = str(exit_info.value.code) + capsys.readouterr().err
    assert message in text


def test_bench_lists_and_runs_a_study(capsys):
    assert main(["bench", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "steering_gmm" in listing and "exact Gaussian-mixture" in listing
    assert "_particles_worker" not in listing
    assert main(["bench", "steering_gmm", "--", "--help"]) == 0      # arguments pass through
