"""The regression check on crafted experiments: it passes and fails exactly where it should.

Values are binary fractions so that the means are exact and a bound equal to a mean is a real tie.
"""
from __future__ import annotations

import pandas as pd
import pytest

import cli
from aebench.errors import UserError
from aebench.report.check import Bound, load_thresholds

# (model, seed) -> {metric or metric@backbone: value}
VALUES = {
    ("vae", 0): {"knn5_acc": 0.75, "recon_sse": 2.0, "fid@classifier-digits-v1": 10.0},
    ("vae", 1): {"knn5_acc": 0.875, "recon_sse": 3.0, "fid@classifier-digits-v1": 12.0},
    ("swae", 0): {"knn5_acc": 0.875, "recon_sse": 1.5},
    ("swae", 1): {"knn5_acc": 0.875, "recon_sse": 2.5},
}
# means: vae knn5_acc 0.8125, recon_sse 2.5, fid [classifier-digits-v1] 11; swae knn5_acc 0.875, recon_sse 2.0


def write_experiment(folder, values=VALUES, failed=frozenset()):
    folder.mkdir(parents=True)
    metrics, runs = [], []
    for (model, seed), row in values.items():
        run_id = f"{model}_digits_s{seed}_0000"
        status = "failed" if (model, seed) in failed else "ok"
        runs.append({"run_id": run_id, "model": model, "dataset": "digits", "seed": seed, "status": status,
                     "reason": "loss became nan" if status == "failed" else ""})
        for key, value in row.items():
            metric, _, backbone = key.partition("@")
            metrics.append({"run_id": run_id, "model": model, "dataset": "digits", "seed": seed, "metric": metric,
                            "value": value, "split": "test", "n": 360, "backbone": backbone})
    pd.DataFrame(metrics).to_csv(folder / "metrics.csv", index=False)
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    return folder


@pytest.fixture
def experiment(tmp_path):
    return write_experiment(tmp_path / "results" / "smoke")


def run_check(tmp_path, capsys, experiment, toml: str):
    path = tmp_path / "thresholds.toml"
    path.write_text(toml)
    code = cli.main(["check", "--thresholds", str(path), str(experiment)])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    # "PASS  digits.vae.knn5_acc: value ..." -> {"digits.vae.knn5_acc": "PASS"}
    verdicts = {line[6:].partition(": ")[0]: line[:4] for line in lines if line.startswith(("PASS  ", "FAIL  "))}
    return code, verdicts, captured


def test_all_bounds_hold_including_ties_with_the_mean(tmp_path, capsys, experiment):
    code, verdicts, captured = run_check(tmp_path, capsys, experiment, """
        [digits.vae]
        knn5_acc = { min = 0.8125 }         # exactly the mean: bounds are inclusive
        recon_sse = { max = 2.5 }
        "fid [classifier-digits-v1]" = { max = 11 }
        [digits.swae]
        recon_sse = { min = 1, max = 2 }
        knn5_acc = { min = 0.8 }
    """)
    assert code == 0, captured
    assert verdicts == {"digits.vae.knn5_acc": "PASS", "digits.vae.recon_sse": "PASS", "digits.swae.knn5_acc": "PASS",
                        "digits.vae.fid [classifier-digits-v1]": "PASS", "digits.swae.recon_sse": "PASS"}
    assert "0.8125 (mean of 2 seeds), bound >= 0.8125" in captured.out
    assert "2 (mean of 2 seeds), bound in [1, 2]" in captured.out
    assert "FAIL" not in captured.out and "5 of 5 checks hold" in captured.out


def test_the_mean_over_seeds_is_compared_not_each_seed(tmp_path, capsys, experiment):
    # vae seed 0 has knn5_acc 0.75 < 0.8, but the mean 0.8125 holds
    code, verdicts, _ = run_check(tmp_path, capsys, experiment, "[digits.vae]\nknn5_acc = { min = 0.8 }\n")
    assert code == 0 and verdicts == {"digits.vae.knn5_acc": "PASS"}


def test_fails_exactly_on_the_broken_bounds(tmp_path, capsys, experiment):
    code, verdicts, captured = run_check(tmp_path, capsys, experiment, """
        [digits.vae]
        knn5_acc = { min = 0.8126 }
        recon_sse = { max = 2.4999 }
        [digits.swae]
        knn5_acc = { min = 0.875 }
        recon_sse = { min = 2.0001, max = 3 }
    """)
    assert code == 1
    assert verdicts == {"digits.vae.knn5_acc": "FAIL", "digits.vae.recon_sse": "FAIL",
                        "digits.swae.knn5_acc": "PASS", "digits.swae.recon_sse": "FAIL"}
    regressions = captured.out.split("regressions:")[1]
    assert "digits.vae.knn5_acc: 0.8125" in regressions and "bound >= 0.8126" in regressions
    assert "digits.swae.recon_sse: 2 (mean of 2 seeds), bound in [2.0001, 3]" in regressions
    assert "digits.swae.knn5_acc" not in regressions


def test_a_bound_without_a_value_is_missing_not_a_pass(tmp_path, capsys, experiment):
    code, verdicts, captured = run_check(tmp_path, capsys, experiment, """
        [digits.vae]
        fid = { max = 100 }        # the experiment's FID has a backbone: a bare "fid" matches nothing
        linear_acc = { min = 0 }
        [digits.vea]
        knn5_acc = { min = 0 }
        [mnist.vae]
        knn5_acc = { min = 0 }
    """)
    assert code == 1
    assert set(verdicts.values()) == {"FAIL"} and len(verdicts) == 4
    lines = [line for line in captured.out.splitlines() if line.startswith("FAIL")]
    assert any("digits.vae.fid:" in line and "missing" in line and "fid [classifier-digits-v1]" in line for line in lines)
    assert any("digits.vea.knn5_acc:" in line and "models there: vae, swae" in line for line in lines)
    assert any("mnist.vae.knn5_acc:" in line and "no results on dataset 'mnist'" in line for line in lines)


def test_a_failed_run_of_a_bounded_model_is_a_regression(tmp_path, capsys):
    values = VALUES | {("vae", 2): {}}
    folder = write_experiment(tmp_path / "e", values, failed={("vae", 2)})
    code, verdicts, captured = run_check(tmp_path, capsys, folder, "[digits.vae]\nknn5_acc = { min = 0.5 }\n"
                                                                    "[digits.swae]\nknn5_acc = { min = 0.5 }\n")
    assert code == 1
    assert verdicts == {"digits.vae": "FAIL", "digits.vae.knn5_acc": "PASS", "digits.swae.knn5_acc": "PASS"}
    assert "1 of 3 runs failed" in captured.out and "loss became nan" in captured.out


@pytest.mark.parametrize("toml, message", [
    ("[digits.vae\nknn5_acc = 1", "is not valid TOML"),
    ("[digits.vae]\nknn5_acc = { mni = 0.85 }", "unknown key 'mni'; allowed: min, max"),
    ("[digits.vae]\nknn5_acc = { min = \"high\" }", "knn5_acc.min = 'high' is not a finite number"),
    ("[digits.vae]\nknn5_acc = { min = true }", "is not a finite number"),
    ("[digits.vae]\nknn5_acc = { max = nan }", "is not a finite number"),
    ("[digits.vae]\nknn5_acc = { min = 0.9, max = 0.1 }", "min 0.9 > max 0.1"),
    ("[digits.vae]\nknn5_acc = 0.85", "is not a bound"),
    ("[digits.vae]\nknn5_acc = {}", "has neither min nor max"),
    ("[digits]\nvae = 3", "must be a table"),
    ("digits = 1", "must be a table"),
    ("[digits.vae]", "has no bounds"),
    ("", "holds no bounds"),
])
def test_a_malformed_file_is_one_line_and_exit_code_2(tmp_path, capsys, experiment, toml, message):
    code, verdicts, captured = run_check(tmp_path, capsys, experiment, toml)
    assert code == 2 and not verdicts
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert message in captured.err, captured.err


def test_missing_thresholds_file_or_experiment_is_exit_code_2(tmp_path, capsys, experiment):
    assert cli.main(["check", "--thresholds", str(tmp_path / "none.toml"), str(experiment)]) == 2
    assert "none.toml does not exist" in capsys.readouterr().err
    good = tmp_path / "ok.toml"
    good.write_text("[digits.vae]\nknn5_acc = { min = 0 }\n")
    assert cli.main(["check", "--thresholds", str(good), "--out", str(experiment.parent), "nothing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "experiment 'nothing' not found" in err and "smoke" in err


def test_default_experiment_is_the_latest_under_out(tmp_path, capsys, experiment):
    good = tmp_path / "ok.toml"
    good.write_text("[digits.vae]\nknn5_acc = { min = 0.8 }\n")
    assert cli.main(["check", "--thresholds", str(good), "--out", str(experiment.parent)]) == 0
    assert str(experiment) in capsys.readouterr().out


def test_bounds_read_from_the_file():
    assert Bound("d", "m", "x", min=1.0).describe() == ">= 1"
    assert Bound("d", "m", "x", max=2.5).holds(2.5) and not Bound("d", "m", "x", max=2.5).holds(float("nan"))


def test_load_thresholds_accepts_tables_and_integers(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[digits.vae.knn5_acc]\nmin = 1\n[digits.vae]\n"fid [x]" = { max = 2.5 }\n')
    assert load_thresholds(path) == [Bound("digits", "vae", "knn5_acc", min=1.0),
                                     Bound("digits", "vae", "fid [x]", max=2.5)]
    with pytest.raises(UserError):
        load_thresholds(tmp_path / "absent.toml")


def test_the_share_of_runs_stopped_by_the_cap_can_be_bounded(tmp_path, capsys, experiment):
    runs = pd.read_csv(experiment / "runs.csv")
    runs["stopped"] = ["cap", "patience", "patience", "patience"]  # vae: 1 of 2 runs under-trained
    runs.to_csv(experiment / "runs.csv", index=False)
    code, verdicts, captured = run_check(tmp_path, capsys, experiment, """
        [digits.vae]
        stopped_by_cap = { max = 0.25 }
        [digits.swae]
        stopped_by_cap = { max = 0 }
    """)
    assert code == 1 and verdicts == {"digits.vae.stopped_by_cap": "FAIL", "digits.swae.stopped_by_cap": "PASS"}
    assert "0.5 of 2 runs stopped by the epoch cap" in captured.out
    code, verdicts, _ = run_check(tmp_path, capsys, experiment, "[digits.vae]\nstopped_by_cap = { max = 0.5 }\n")
    assert code == 0


def test_results_that_do_not_say_why_runs_stopped_fail_a_cap_bound(tmp_path, capsys, experiment):
    code, verdicts, captured = run_check(tmp_path, capsys, experiment, "[digits.vae]\nstopped_by_cap = { max = 1 }\n")
    assert code == 1 and "unknown" in captured.out
