"""benchmarks/throughput.py and benchmarks/paper_step_cost.py with --precision: fp32 and bf16 timed
alternately, each precision's median and bf16's speed-up printed; bf16 refused on a CPU without native
bfloat16. AEBENCH_CPU_FLAGS stands in for the CPU's flags (aebench.plumbing.precision), so that these tests
pass on any machine: emulated bfloat16 is slow, not wrong, and the runs here are tiny."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NATIVE_BF16 = "avx512_bf16"
NO_BF16 = "sse2 avx2"
# The smallest run each script allows: one epoch (one round of steps) per precision, on the smallest data.
TINY = {
    "throughput": ["--network", "mlp", "--repeats", "1", "--epochs", "1"],
    "paper_step_cost": ["--profile", "smoke", "--dataset", "digits", "--models", "vae", "--steps", "1", "--rounds", "2"],
}


def run_script(name: str, cpu_flags: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"AEBENCH_CPU_FLAGS": cpu_flags}
    argv = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *TINY[name], *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def speed_up(out: str) -> float:
    """The bf16 speed-up a script printed (fp32 time over bf16 time)."""
    found = re.findall(r"bf16 speed-up \(.*fp32 time / .*bf16 time\): ([0-9.]+)x", out)
    assert len(found) == 1, out
    return float(found[0])


def test_throughput_prints_both_precisions_medians_and_the_speed_up():
    done = run_script("throughput", NATIVE_BF16, "--precision", "fp32,bf16")
    assert done.returncode == 0, done.stderr
    runs = re.findall(r"run 1 suite (fp32|bf16) ", done.stdout)
    assert runs == ["fp32", "bf16"]  # alternating, in the order given
    assert re.search(r"median: suite fp32 \d+ images/s, suite bf16 \d+ images/s", done.stdout), done.stdout
    assert "kernels of one bf16 training step" in done.stdout and f"{NATIVE_BF16} yes" in done.stdout
    assert speed_up(done.stdout) > 0


def test_paper_step_cost_prints_both_precisions_medians_and_the_speed_up():
    done = run_script("paper_step_cost", NATIVE_BF16, "--precision", "fp32,bf16")
    assert done.returncode == 0, done.stderr
    medians = re.findall(r"vae +(fp32|bf16) +[0-9.]+ ms/step .*\(rounds, ms: [0-9.]+ [0-9.]+\)", done.stdout)
    assert medians == ["fp32", "bf16"], done.stdout
    assert f"{NATIVE_BF16} yes" in done.stdout
    assert speed_up(done.stdout) > 0


@pytest.mark.parametrize("name", sorted(TINY))
def test_bf16_is_refused_in_one_line_on_a_cpu_without_native_bfloat16(name):
    done = run_script(name, NO_BF16, "--precision", "fp32,bf16")
    assert done.returncode == 2
    assert done.stdout == ""  # refused before anything is measured
    assert len(done.stderr.splitlines()) == 1 and "avx512_bf16" in done.stderr and "Traceback" not in done.stderr
