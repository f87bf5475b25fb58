"""Scale-out: local worker processes and Ray give the same rows as a serial run; failures and
killed workers neither lose nor duplicate rows."""
import json
import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from interrupt import ROOT, cli_command, interrupt_after_first_run
from reproducibility import assert_reproduced, metric_values

import cli
from aebench.errors import UserError
from aebench.plumbing.progress import GridProgress
from aebench.run.executors import ProcessExecutor, make_executor

GRID = ["run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--seeds", "0,1", "--epochs", "3", "--quiet"]


def metric_table(folder: Path) -> dict[str, float]:
    return metric_values(pd.read_csv(folder / "smoke" / "metrics.csv"))


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    assert cli.main(GRID + ["--out", str(out)]) == 0
    return metric_table(out)


def test_the_same_command_again_gives_bit_identical_numbers(tmp_path, serial_results):
    # the promise's first half: same command, machine and thread count (the cache now filled)
    assert cli.main(GRID + ["--out", str(tmp_path)]) == 0
    assert metric_table(tmp_path) == serial_results
    assert len({key.split("|")[0] for key in serial_results}) == 2 and len(serial_results) >= 2 * 7


def test_two_local_jobs_give_the_serial_metrics(tmp_path, serial_results):
    # each worker has its own thread count and process: equal within the stated tolerance
    assert cli.main(GRID + ["--out", str(tmp_path), "--jobs", "2"]) == 0
    assert_reproduced(metric_table(tmp_path), serial_results)


def test_a_local_ray_instance_gives_the_serial_rows(tmp_path, serial_results):
    if not os.environ.get("CI"):  # in CI a missing Ray must fail, never skip
        pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[test]' brings it")
    assert cli.main(GRID + ["--out", str(tmp_path), "--executor", "ray"]) == 0
    assert_reproduced(metric_table(tmp_path), serial_results)
    runs = pd.read_csv(tmp_path / "smoke" / "runs.csv")
    assert runs["run_id"].is_unique and (runs["status"] == "ok").all()


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path, capsys):
    # A Gaussian likelihood with sigma 1e-30 overflows the loss at the first step: the run fails as
    # non-finite, is recorded with its reason, and the next grid finishes the rest.
    code = cli.main(["run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--seeds", "0",
                     "--epochs", "2", "--quiet", "--out", str(tmp_path), "--jobs", "2",
                     "--set", "vae.sigma=1e-30", "--set", "vae.likelihood=gaussian"])
    out = capsys.readouterr().out
    runs = pd.read_csv(tmp_path / "smoke" / "runs.csv")
    assert code == 1 and "1 failed" in out
    assert runs["status"].tolist() == ["failed"] and "non-finite" in runs["reason"][0]
    code = cli.main(["run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--seeds", "0,1",
                     "--epochs", "2", "--quiet", "--out", str(tmp_path), "--jobs", "2"])
    runs = pd.read_csv(tmp_path / "smoke" / "runs.csv")
    assert code == 0 and sorted(runs["status"]) == ["failed", "ok", "ok"]


def test_killing_a_parallel_grid_then_rerunning_gives_each_run_once(tmp_path):
    argv = cli_command("run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--seeds", "0,1,2,3,4",
                       "--epochs", "30", "--quiet", "--out", str(tmp_path), "--jobs", "2")
    runs_csv = tmp_path / "smoke" / "runs.csv"
    interrupt_after_first_run(argv, runs_csv, signal.SIGTERM)
    partial = pd.read_csv(runs_csv)
    assert 1 <= len(partial) < 5
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    runs, metrics = pd.read_csv(runs_csv), pd.read_csv(tmp_path / "smoke" / "metrics.csv")
    assert sorted(runs["seed"]) == [0, 1, 2, 3, 4] and runs["run_id"].is_unique
    assert not metrics.duplicated(["run_id", "metric"]).any() and set(metrics["run_id"]) == set(runs["run_id"])


def test_a_study_file_drives_the_grid_and_options_override_it(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text('models = ["vae"]\ndatasets = "digits"\nseeds = [3]\nprofile = "smoke"\nepochs = 2\n'
                     f'out = "{tmp_path / "out"}"\nexperiment = "from-file"\n[hparams.vae]\nlatent_dim = 3\n')
    assert cli.main(["run", "--config", str(study), "--quiet", "--set", "vae.sigma=0.3"]) == 0
    folder = tmp_path / "out" / "from-file"
    runs = pd.read_csv(folder / "runs.csv")
    hparams = json.loads(runs["hparams"][0])
    assert runs["seed"].tolist() == [3] and hparams["latent_dim"] == 3 and hparams["sigma"] == 0.3
    assert json.loads(runs["train_config"][0])["epochs"] == 2
    saved = json.loads((folder / "config.json").read_text())
    assert saved["config"]["hparams"] == {"vae": {"latent_dim": 3, "sigma": "0.3"}}
    assert [r["run_id"] for r in saved["runs"]] == runs["run_id"].tolist()
    # a command-line option beats the file
    assert cli.main(["run", "--config", str(study), "--quiet", "--seeds", "4", "--epochs", "1"]) == 0
    assert sorted(pd.read_csv(folder / "runs.csv")["seed"]) == [3, 4]


def test_models_on_the_command_line_rerun_part_of_a_study_with_its_run_ids():
    # Reproducing one model of a study: the other models' [hparams] tables do not apply, the chosen
    # model keeps its table (so its run ids are the study's), and a misnamed table or --set still fails.
    from aebench.run.runner import plan_config
    from aebench.run.study import resolve

    study = {"models": ["vae", "wae"], "datasets": ["digits"], "seeds": [0, 1], "profile": "smoke",
             "hparams": {"vae": {"latent_dim": 3}, "wae": {"lam": 3.0}}}
    whole = {spec.run_id for spec in plan_config(resolve(study, {}, {}))[1] if spec.model == "wae"}
    part = plan_config(resolve(study, {"models": "wae"}, {}))[1]
    assert {spec.run_id for spec in part} == whole and len(whole) == 2
    assert all(spec.model == "wae" and spec.hparams["lam"] == 3.0 for spec in part)
    with pytest.raises(UserError, match="'vae', which is not in this run"):
        plan_config(resolve(study, {"models": "wae"}, {"vae": {"latent_dim": "4"}}))
    misnamed = study | {"hparams": {"wea": {"lam": 3.0}}}
    with pytest.raises(UserError, match="'wea', which is not in this run"):
        plan_config(resolve(misnamed, {"models": "wae"}, {}))


@pytest.mark.parametrize("text,message", [
    ("models = [\n", "not valid TOML"),
    ("modles = ['vae']\n", "unknown key 'modles'"),
    ("epochs = 'ten'\n", "'epochs' must be int"),
    ("[hparams]\nvae = 3\n", "[hparams.vae] must be a table"),
    ("tuning_budget = 0\n", "'tuning_budget' must be an integer >= 1 (trials per model), got 0"),
    ("tuning_budget = '4'\n", "'tuning_budget' must be int, got '4'"),
    ("tuning_budget = true\n", "'tuning_budget' must be int, got True"),
])
def test_bad_study_files_are_one_line_errors(tmp_path, capsys, text, message):
    study = tmp_path / "study.toml"
    study.write_text(text)
    assert cli.main(["run", "--config", str(study), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert cli.main(["run", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_executor_choices_are_checked():
    with pytest.raises(UserError, match="choices: local, ray"):
        make_executor("slurm")
    with pytest.raises(UserError, match="--jobs 0"):
        ProcessExecutor(0)
    assert ProcessExecutor(2, threads=None).threads >= 1


def test_progress_line_counts_and_estimates_time_left():
    lines = []
    progress = GridProgress(total=5, parallelism=2, log=lines.append)
    assert progress.line() == "grid: 0/5 finished (0 ok, 0 failed), 2 running"
    progress.finished("a", "ok", "", seconds=10)
    progress.finished("b", "failed", "boom", seconds=30)
    # mean 20 s per cell, 3 cells left, 2 at a time -> 30 s
    assert lines[-1] == "grid: 2/5 finished (1 ok, 1 failed), 2 running, about 30s left"
    progress.finished("c", "lost", "worker died")
    progress.finished("d", "ok", "", seconds=20)
    assert lines[-1] == "grid: 4/5 finished (2 ok, 1 failed, 1 lost), 1 running, about 10s left"


def test_stopping_the_pool_ends_a_worker_in_the_middle_of_a_long_cell():
    """Ctrl-C / SIGTERM during a long run: the worker is ended at once, not left to finish its cell."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from aebench.run.executors import _stop

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(time.sleep, 120)
    deadline = time.time() + 60
    while not future.running() and time.time() < deadline:
        time.sleep(0.05)
    workers = list(pool._processes.values())
    assert future.running() and len(workers) == 1
    time.sleep(1)  # "running" means queued to a worker; let it reach the task (a busy machine starts it late)
    _stop(pool)
    deadline = time.time() + 60
    while not process_ended(workers[0]) and time.time() < deadline:
        time.sleep(0.1)
    assert process_ended(workers[0]), f"worker {workers[0].pid} still running 60 s after the pool was stopped"


def process_ended(process) -> bool:
    """Has the OS ended the process? Asked of the OS, not of multiprocessing's bookkeeping: the pool's
    own manager thread joins its workers too, and when it reaps one first, is_alive() of our handle
    gets ECHILD and says True until that thread records the exit code, which on a loaded machine
    came after the test's last check (the CI failures of this test)."""
    if process.exitcode is not None:
        return True
    proc = Path("/proc")
    if proc.is_dir():  # Linux: gone (reaped) or a zombie (dead, not yet reaped)
        try:
            state = (proc / str(process.pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        return state in ("Z", "X")
    try:
        os.kill(process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_worker_processes_run_the_cells_that_finished_cells_lead_to(tmp_path):
    """run_grid's follow: a cell added while the grid runs (a tuning's next trial) is run by the same
    workers, and a cell added that is already recorded leads on at once."""
    from aebench.run.profiles import get_profile
    from aebench.run.runner import plan, run_grid
    from aebench.store.folder import ResultsStore

    seed_0, seed_1, seed_2 = plan(get_profile("smoke"), ["vae"], ["digits"], [0, 1, 2], epochs=1)
    store = ResultsStore(tmp_path)
    chain = {seed_0.run_id: [seed_1], seed_1.run_id: [seed_0, seed_2]}  # seed_0 again: recorded by then
    followed = []

    def follow(spec):
        followed.append(spec.seed)
        return chain.pop(spec.run_id, [])

    outcome = run_grid([seed_0], store, progress=False, log=lambda line: None, executor=ProcessExecutor(2),
                       follow=follow)
    assert outcome.done == [seed_0.run_id, seed_1.run_id, seed_2.run_id] and not outcome.lost
    assert followed == [0, 1, 0, 2]  # the recorded seed 0 was followed at once, before seed 2 ran
    assert set(store.runs()["run_id"]) == {seed_0.run_id, seed_1.run_id, seed_2.run_id}
