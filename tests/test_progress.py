"""Progress while cells train: each epoch's snapshot, its time-left bounds, the status line (in place
on a terminal, throttled lines in a log), and what `run` prints serially, with --jobs and --quiet."""
import io
import os
import queue
import subprocess

import pytest
import torch
from interrupt import ROOT, cli_command
from torch import nn

from aebench.plumbing.progress import (
    PROGRESS_INTERVAL_S,
    EpochProgress,
    GridProgress,
    QueueReporter,
    StatusLine,
    drain,
    format_entry,
    format_epoch,
)
from aebench.run.training import TrainConfig, fit
from models.contract import AutoEncoder, Hyperparameters


def snapshot(label="swae_mnist_s0_1a2b3c4d", epoch=12, epochs=300, stale=3, patience=10, warmup=0,
             seconds_per_epoch=30.0, best_epoch=9, val=45.31, best=44.90) -> EpochProgress:
    return EpochProgress(label=label, epoch=epoch, epochs=epochs, val_loss=val, best_val_loss=best,
                         best_epoch=best_epoch, stale=stale, patience=patience, warmup_epochs=warmup,
                         epoch_seconds=seconds_per_epoch, elapsed=seconds_per_epoch * epoch)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


class LogFile(io.StringIO):
    def isatty(self):
        return False


# --- what is reported, and the time left it implies ---------------------------------------------------


def test_time_left_is_bounded_by_patience_below_and_by_the_cap_above():
    p = snapshot(epoch=12, epochs=300, stale=3, patience=10, seconds_per_epoch=30.0)
    # at least 10 - 3 = 7 more epochs without improvement; at most 300 - 12 = 288 more
    assert p.epochs_left() == (7, 288)
    assert p.time_left() == (210.0, 8640.0)
    assert format_epoch(p) == ("swae_mnist_s0_1a2b3c4d: epoch 12/300, val 45.31 (best 44.90 at epoch 9), "
                               "3/10 epochs without improvement, 30.0 s/epoch, 3m30s to 2h24m left")


def test_during_warm_up_patience_starts_counting_only_after_it():
    p = snapshot(epoch=5, epochs=300, stale=0, patience=10, warmup=20, best_epoch=5, seconds_per_epoch=2.0)
    assert p.warming_up
    assert p.epochs_left() == (25, 295)  # 15 warm-up epochs to go, then 10 of patience
    assert p.time_left() == (50.0, 590.0)
    assert "KL warm-up to epoch 20, patience not counted yet" in format_epoch(p)
    assert "50s to 9m50s left" in format_epoch(p)
    assert not snapshot(epoch=20, warmup=20, stale=0).warming_up  # the next epoch counts


def test_the_cap_limits_the_lower_bound_and_a_stopped_run_has_nothing_left():
    near_cap = snapshot(epoch=298, epochs=300, stale=0, seconds_per_epoch=30.0)
    assert near_cap.epochs_left() == (2, 2) and "1m00s left" in format_epoch(near_cap)
    stopped = snapshot(epoch=19, stale=10, patience=10)
    assert stopped.stopping and stopped.epochs_left() == (0, 0)
    assert format_epoch(stopped) == ("swae_mnist_s0_1a2b3c4d: trained 19/300 epochs, stopped by patience "
                                     "(best 44.90 at epoch 9), scoring")
    capped = snapshot(epoch=300, epochs=300, stale=2)
    assert capped.stopping and "stopped by the cap" in format_epoch(capped)
    assert format_entry("swae s0", stopped) == "swae s0 scoring (trained 19 epochs, best 9)"


class ConstantAE(AutoEncoder):
    """Only an unused bias trains: the validation loss never improves after epoch 1."""

    def __init__(self):
        super().__init__((1, 8, 8), Hyperparameters(latent_dim=2))
        self.unused = nn.Parameter(torch.zeros(1))
        self.dec = nn.Linear(2, 64)

    def encode(self, x):
        return torch.zeros(len(x), 2) + 0 * self.unused

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)

    def loss(self, x):
        rec = ((self.reconstruct(x) - x) ** 2).flatten(1).sum(1).mean() + 0 * self.unused.sum()
        return {"loss": rec.detach() + 0 * self.unused.sum(), "rec": rec.detach()}


def test_fit_reports_every_epoch_with_its_patience_counter(digits):
    seen = []
    result = fit(ConstantAE(), digits, TrainConfig(epochs=50, batch_size=256, patience=3), seed=0,
                 on_epoch=seen.append)
    assert result.stopped == "patience" and result.epochs_run == 4
    assert [p.epoch for p in seen] == [1, 2, 3, 4] and [p.stale for p in seen] == [0, 1, 2, 3]
    assert all(p.label == "ConstantAE" and p.epochs == 50 and p.patience == 3 and p.best_epoch == 1 for p in seen)
    assert [p.epoch_seconds for p in seen] == [h["seconds"] for h in result.history]
    assert seen[-1].stopping and not seen[-2].stopping
    assert seen[-1].val_loss == result.history[-1]["val_loss"] and seen[0].best_val_loss == result.best_val_loss
    assert all(a.elapsed < b.elapsed for a, b in zip(seen, seen[1:]))


def test_fit_without_a_callback_shows_its_own_line_on_stdout_only_when_asked(digits, capsys):
    config = TrainConfig(epochs=2, batch_size=256, patience=3)
    fit(ConstantAE(), digits, config, seed=0, progress=False)
    assert capsys.readouterr().out == ""
    fit(ConstantAE(), digits, config, seed=0)  # progress=True: stdout is not a terminal here, so a line
    assert capsys.readouterr().out.startswith("ConstantAE: epoch 1/2, val ")


# --- the status line: in place on a terminal, throttled lines elsewhere ----------------------------------


def test_off_a_terminal_the_first_line_comes_at_once_then_at_most_one_per_interval():
    clock, log = FakeClock(), LogFile()
    status = StatusLine(log, clock=clock)
    assert not status.tty and PROGRESS_INTERVAL_S == 30
    status.show("one")
    clock.now += 10
    status.show("two")
    clock.now += 19.9
    status.show("three")
    clock.now += 0.1  # 30 s after "one"
    status.show("four")
    clock.now += 1
    status.show("five")
    status.show("six", at_once=True)
    status.hide()  # nothing to take away in a file
    assert log.getvalue() == "one\nfour\nsix\n"


def test_on_a_terminal_the_line_is_rewritten_in_place():
    terminal = Terminal()
    status = StatusLine(terminal, clock=FakeClock())
    assert status.tty
    status.show("epoch 1")
    status.show("epoch 2")  # no 30 s wait on a terminal
    written = terminal.getvalue()
    assert "epoch 1" in written and "epoch 2" in written and "\r" in written and "\n" not in written
    status.hide()
    assert terminal.getvalue().endswith("\r") and "\n" not in terminal.getvalue()


def test_the_grid_shows_a_cells_first_epoch_at_once_then_throttles_and_adds_nothing_at_the_end():
    clock, log, lines = FakeClock(), LogFile(), []
    grid = GridProgress(2, 1, log=lines.append, status=StatusLine(log, clock=clock))
    a, b = "vae_digits_s0_aaaaaaaa", "vae_digits_s1_bbbbbbbb"
    grid.epoch(snapshot(label=a, epoch=1, stale=0, best_epoch=1))
    for epoch in range(2, 6):  # 5 s apiece: none of these is shown
        clock.now += 5
        grid.epoch(snapshot(label=a, epoch=epoch, stale=0, best_epoch=epoch))
    clock.now += 10  # 30 s after the first line
    grid.epoch(snapshot(label=a, epoch=6, stale=1, best_epoch=5))
    grid.finished(a, "ok", "fine", seconds=40)
    grid.epoch(snapshot(label=a, epoch=7, stale=2, best_epoch=5))  # late news of a finished cell: ignored
    clock.now += 1
    grid.epoch(snapshot(label=b, epoch=1, stale=0, best_epoch=1))  # a new cell: at once
    shown = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in shown] == [f"{a}: epoch 1/300", f"{a}: epoch 6/300", f"{b}: epoch 1/300"]
    assert lines == [f"  {a}: ok (fine)", "grid: 1/2 finished (1 ok, 0 failed), 1 running, about 40s left"]


def test_a_parallel_grid_shows_every_running_cell_on_one_line():
    log = LogFile()
    grid = GridProgress(5, 2, log=lambda *_: None, status=StatusLine(log, clock=FakeClock()),
                        names={"swae_mnist_s0_1": "swae s0", "wae_mnist_s0_2": "wae s0"})
    grid.epoch(snapshot(label="swae_mnist_s0_1", epoch=12, stale=3, best_epoch=9, seconds_per_epoch=10))
    grid.epoch(snapshot(label="wae_mnist_s0_2", epoch=10, stale=0, best_epoch=10, seconds_per_epoch=20))
    # swae: 7 to 288 epochs of 10 s; wae: 10 to 290 epochs of 20 s -> until both end: 200 s to 5800 s
    assert log.getvalue().splitlines()[-1] == (
        "running: swae s0 epoch 12 (best 9, 3/10), wae s0 epoch 10 (best 10, 0/10); 3m20s to 1h36m left for these; "
        "3 waiting")


def test_a_worker_sends_plain_dicts_and_never_fails_because_of_the_queue():
    sent = queue.Queue()
    report = QueueReporter(sent)
    report(snapshot(epoch=1))
    report(snapshot(epoch=2))
    received = []
    assert drain(sent, received.append) == 2 and [p.epoch for p in received] == [1, 2]
    assert received[0] == snapshot(epoch=1)

    class Gone:
        calls = 0

        def put_nowait(self, item):
            Gone.calls += 1
            raise BrokenPipeError

        def get_nowait(self):
            raise EOFError

    class RayLike(queue.Queue):  # drained in one batch, as ray.util.queue.Queue is
        def get_nowait_batch(self, n):
            return [self.get_nowait() for _ in range(n)]

    batched = RayLike()
    QueueReporter(batched)(snapshot(epoch=3))
    assert drain(batched, received.append) == 1 and received[-1] == snapshot(epoch=3)

    broken = QueueReporter(Gone())
    broken(snapshot())
    broken(snapshot())  # after the first failure it stops trying
    assert broken.broken and Gone.calls == 1
    assert drain(Gone(), received.append) == 0


def test_short_names_tell_running_cells_apart():
    from aebench.run.profiles import get_profile
    from aebench.run.runner import plan, short_names

    specs = plan(get_profile("smoke"), ["vae", "wae"], ["digits"], [0, 1])
    assert sorted(short_names(specs).values()) == ["vae s0", "vae s1", "wae s0", "wae s1"]
    two_trials = plan(get_profile("smoke"), ["vae"], ["digits"], [0]) + \
        plan(get_profile("smoke"), ["vae"], ["digits"], [0], overrides={"vae": {"latent_dim": "3"}})
    names = short_names(two_trials)
    assert len(set(names.values())) == 2 and all(name.startswith("vae s0 ") for name in names.values())


# --- end to end: what `run` writes to a log file ----------------------------------------------------------


def run_to_file(tmp_path, *options) -> list[str]:
    log = tmp_path / "log.txt"
    argv = cli_command("run", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--epochs", "3",
                       "--out", str(tmp_path / "out"), *options)
    with open(log, "w") as stdout:  # not a terminal: plain lines
        done = subprocess.run(argv, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=600,
                              env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


def test_a_serial_run_logs_its_epochs_before_the_cells_result(tmp_path):
    lines = run_to_file(tmp_path)
    epochs = [i for i, line in enumerate(lines) if line.startswith("vae_digits_s0_") and ": epoch 1/3, val" in line]
    finished = [i for i, line in enumerate(lines) if line.startswith("  vae_digits_s0_") and ": ok (" in line]
    assert epochs and finished and epochs[0] < finished[0], lines


def test_a_parallel_run_logs_the_running_cells_before_their_results(tmp_path):
    lines = run_to_file(tmp_path, "--jobs", "2", "--seeds", "0,1")
    running = [i for i, line in enumerate(lines) if line.startswith("running: ")]
    finished = [i for i, line in enumerate(lines) if line.startswith("  vae_digits_s") and ": ok (" in line]
    assert running and len(finished) == 2 and running[0] < finished[0], lines
    assert "vae s0 epoch" in "\n".join(lines) and "vae s1 epoch" in "\n".join(lines), lines
    # each cell appears on a running line before its own result
    for seed, index in zip((0, 1), sorted(finished, key=lambda i: lines[i])):
        assert any(f"vae s{seed} " in lines[i] for i in running if i < index), lines


def test_quiet_prints_no_epochs(tmp_path):
    lines = run_to_file(tmp_path, "--quiet", "--seeds", "2")
    assert not any(" epoch " in line for line in lines), lines
    assert not any(line.startswith(("vae_digits_s2_", "running:")) for line in lines), lines
    assert any(line.startswith("  vae_digits_s2_") and ": ok (" in line for line in lines), lines


@pytest.mark.slow
def test_ray_tasks_report_their_epochs_to_the_driver(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[test]' brings it")
    lines = run_to_file(tmp_path, "--executor", "ray", "--seeds", "0,1")
    # one cell at a time on a one-CPU machine (its own line), else the running cells' line
    shown = [i for i, line in enumerate(lines) if line.startswith("running: ") or
             (line.startswith("vae_digits_s") and ": epoch " in line)]
    finished = [i for i, line in enumerate(lines) if line.startswith("  vae_digits_s") and ": ok (" in line]
    assert shown and len(finished) == 2 and shown[0] < finished[0], lines
