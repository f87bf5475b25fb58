"""End-to-end tests of the command line: errors, reruns, interruption."""
import os
import signal
import subprocess

import pandas as pd
import pytest
from interrupt import ROOT, cli_command, interrupt_after_first_run

import cli


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv,message", [
    (["run", "--models", "vea", "--profile", "smoke"], "unknown model 'vea'; choices: "),
    (["run", "--models", "vae", "--dataset", "mnsit"], "unknown dataset 'mnsit'; choices: digits, fashion-mnist"),
    (["run", "--models", "vae", "--profile", "fast"], "unknown profile 'fast'; choices: paper, quick, smoke"),
    (["run", "--models", "vae", "--profile", "smoke", "--epochs", "ten"], "--epochs 'ten': expected an integer"),
    (["run", "--models", "vae", "--profile", "smoke", "--seeds", "0,x"], "--seeds '0,x': expected comma-separated"),
    (["run", "--models", "vae", "--profile", "smoke", "--set", "vae.latent_dim=-1"], "latent_dim = -1: must be >= 1"),
    (["run", "--models", "vae", "--profile", "smoke", "--set", "latent_dim=3"], "expected MODEL.FIELD=VALUE"),
    (["run", "--models", "vae", "--profile", "smoke", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--models", "vae", "--profile", "smoke", "--frobnicate"], "No such option"),
    (["frobnicate"], "No such command"),
    (["fetch", "cifar"], "cannot fetch 'cifar'; choices: fashion-mnist, inception, mnist"),
    (["run", "--models", "vae,swae", "--profile", "smoke", "--set", "swae.K=5000"],
     "SWAEConfig.K = 5000: must be <= the number of training images (1257)"),
])
def test_user_mistakes_are_one_line_and_exit_2(capsys, tmp_path, argv, message):
    code, out, err = run_cli(capsys, *argv, *(["--out", str(tmp_path)] if argv[0] == "run" and "--frobnicate" not in argv else []))
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "smoke").exists()  # nothing was started


def test_missing_dataset_files_are_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--models", "vae", "--dataset", "mnist", "--profile", "smoke", "--no-fetch",
                           "--data-root", str(tmp_path / "nodata"), "--out", str(tmp_path))
    assert code == 2 and "MNIST not found" in err and str(tmp_path / "nodata") in err and err.count("\n") == 1
    assert "`python cli.py fetch mnist`" in err


def test_unwritable_output_folder_is_a_clear_error(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "run", "--models", "vae", "--profile", "smoke", "--out", str(tmp_path / "file"))
    assert code == 2 and "not writable" in err and (tmp_path / "file").read_text() == "x"


def test_corrupt_results_file_is_reported_and_left_alone(capsys, tmp_path):
    folder = tmp_path / "smoke"
    folder.mkdir()
    (folder / "runs.csv").write_text("garbage\x00\x01,\n\"unclosed")
    before = (folder / "runs.csv").read_bytes()
    code, _, err = run_cli(capsys, "run", "--models", "vae", "--profile", "smoke", "--out", str(tmp_path))
    assert code == 2 and "runs.csv" in err and (folder / "runs.csv").read_bytes() == before


def test_list_shows_models_datasets_with_availability_and_profiles(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "list", "--data-root", str(tmp_path))
    assert code == 0
    assert "vae" in out and "latent_dim=16" in out
    assert "digits" in out and "available" in out and "mnist" in out
    assert f"NOT available: IDX files not found in {tmp_path}" in out
    assert "smoke" in out and "paper" in out


def test_run_then_rerun_is_a_no_op(capsys, tmp_path):
    argv = ["run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--epochs", "2", "--out", str(tmp_path), "--quiet"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "1 runs done" in out
    folder = tmp_path / "smoke"
    assert {p.name for p in folder.iterdir()} >= {"metrics.csv", "runs.csv", "history", "checkpoints", "samples"}
    run_id = pd.read_csv(folder / "runs.csv")["run_id"][0]
    for path in (f"history/{run_id}.csv", f"checkpoints/{run_id}.pt", f"samples/{run_id}.png"):
        assert (folder / path).stat().st_size > 0
    assert (folder / f"samples/{run_id}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics_before = (folder / "metrics.csv").read_bytes()
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "Nothing to do" in out
    assert (folder / "metrics.csv").read_bytes() == metrics_before


def test_each_finished_run_reaches_a_redirected_output_at_once(tmp_path):
    # stdout is a pipe here, as it is a file under `nohup ... > log`: not a terminal, so block-buffered
    argv = cli_command("run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--seeds", "0,1",
                       "--epochs", "40", "--out", str(tmp_path), "--quiet")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as on a researcher's machine
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("  vae_digits_"):  # e.g. the FID classifier being trained first
            line = proc.stdout.readline()
        recorded = len(pd.read_csv(tmp_path / "smoke" / "runs.csv"))
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert line.startswith("  vae_digits_s0_") and ": ok (" in line
    assert recorded == 1  # the line came while the second run was still training


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_grid_leaves_valid_csv_and_rerun_completes(tmp_path, sig):
    argv = cli_command("run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--seeds", "0,1,2",
                       "--epochs", "40", "--out", str(tmp_path), "--quiet")
    runs_csv = tmp_path / "smoke" / "runs.csv"
    err = interrupt_after_first_run(argv, runs_csv, sig)  # the second run is training now
    assert "interrupted" in err and "Traceback" not in err
    runs = pd.read_csv(runs_csv)
    assert 1 <= len(runs) < 3 and (runs["status"] == "ok").all()
    assert set(pd.read_csv(tmp_path / "smoke" / "metrics.csv")["run_id"]) == set(runs["run_id"])

    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(runs_csv)
    metrics = pd.read_csv(tmp_path / "smoke" / "metrics.csv")
    assert sorted(runs["seed"]) == [0, 1, 2] and runs["run_id"].is_unique
    assert len(metrics) == 3 * metrics.groupby("run_id").size().iloc[0]
    assert not metrics.duplicated(["run_id", "metric"]).any()


def test_claims_help_names_the_objectives_swae_declares(capsys, monkeypatch):
    import importlib

    from models import swae

    def ablation_help() -> str:
        assert cli.main(["claims", "--help"]) == 0
        return " ".join(capsys.readouterr().out.split())  # unwrapped

    assert "differing in objective (xzrec, xz, zrec)." in ablation_help()
    try:  # an objective added to SWAE's declaration reaches the help, with no edit of cli.py
        monkeypatch.setitem(swae.OBJECTIVES, "x", lambda c: {"x": 1.0})
        importlib.reload(cli)
        assert "differing in objective (xzrec, xz, zrec, x)." in ablation_help()
    finally:
        monkeypatch.undo()
        importlib.reload(cli)
