"""Start a grid as a separate process and interrupt it once its first run is recorded."""
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), *args]


def interrupt_after_first_run(argv: list[str], runs_csv: Path, sig=signal.SIGTERM) -> str:
    """Run argv, send `sig` as soon as runs.csv exists (the next runs are in progress), and return
    the interrupted process's stderr after checking how it ended: as an interruption (exit code 130)
    for SIGINT / SIGTERM, killed on the spot for SIGKILL (nothing of it can clean up)."""
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not runs_csv.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the grid ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), err
    return err
