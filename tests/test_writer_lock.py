"""One writer per experiment folder: a second `run` or `tune` on a folder in use stops before writing."""
import subprocess
import sys

import pytest
from interrupt import ROOT

import cli
from aebench.errors import UserError
from aebench.plumbing.writer_lock import LOCK_NAME, writing

HOLD = "import sys, time\nfrom aebench.plumbing.writer_lock import writing\nwith writing(sys.argv[1], 'run'):\n" \
       "    print('held', flush=True)\n    time.sleep(300)\n"


def hold_in_another_process(folder):
    """A process that holds the folder's lock until killed (returned once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_held_folder_refuses_a_second_writer_and_names_the_holder(tmp_path):
    with writing(tmp_path, "run"):
        with pytest.raises(UserError, match=r"is being written by another command \(`run`, pid \d+, since "):
            with writing(tmp_path, "tune"):
                pass
    with writing(tmp_path, "tune"):  # released at the end of the block
        assert "`tune`" in (tmp_path / LOCK_NAME).read_text()


def test_the_lock_of_a_killed_process_is_gone_with_it(tmp_path):
    holder = hold_in_another_process(tmp_path)
    try:
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            with writing(tmp_path, "run"):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with writing(tmp_path, "run"):  # no stale lock after a SIGKILL
        pass


@pytest.mark.parametrize("command,folder", [
    (["run", "--models", "vae", "--profile", "smoke", "--epochs", "1"], "smoke"),
    (["tune", "--models", "vae", "--profile", "smoke", "--epochs", "1", "--budget", "1"], "tune-smoke"),
])
def test_run_and_tune_on_a_folder_in_use_exit_2_and_write_nothing(capsys, tmp_path, command, folder):
    (tmp_path / folder).mkdir()
    config = tmp_path / folder / "config.json"
    config.write_text('{"config": "of the command that holds the folder"}')
    holder = hold_in_another_process(tmp_path / folder)
    try:
        code = cli.main([*command, "--out", str(tmp_path), "--quiet"])
    finally:
        holder.kill()
        holder.wait(timeout=30)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"is being written by another command (`run`, pid {holder.pid}" in err
    assert config.read_text() == '{"config": "of the command that holds the folder"}'
    assert not (tmp_path / folder / "runs.csv").exists()
