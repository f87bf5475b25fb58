"""Training precision (`run --precision`): fp32, or bf16 where the hardware computes bfloat16 natively.

bf16 changes training only. The networks' forward and the loss run under torch.autocast (bfloat16), the
weights and Adam's state stay float32 (autocast casts copies; the backward runs outside it), every
network hands float32 back (models.networks) so that the objectives - likelihoods, KL, MMD, the mixture
priors - are computed in float32, and the epoch's loss terms are summed in float64. Validation (which
picks the best epoch) and every evaluation run in float32, so metrics stay comparable across precisions.

bf16 is refused, before anything is written, on hardware that would only emulate it: a CPU without
avx512_bf16 or amx_bf16 (x86) or bf16 (ARM) in its flags, where emulated bfloat16 runs slower than
float32; a CUDA GPU that torch says lacks it; MPS. The CPU flags are read from /proc/cpuinfo, never
inferred by timing; AEBENCH_CPU_FLAGS (space-separated) replaces them, for tests that simulate a CPU.
"""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path

import torch

from aebench.errors import UserError, choices

PRECISIONS = ("fp32", "bf16")
DEFAULT_PRECISION = "fp32"
# CPU flags of native bfloat16 arithmetic: AVX512-BF16 (Intel Cooper Lake+, AMD Zen 4+), AMX (Intel
# Sapphire Rapids+), and ARMv8.6's BF16 (named "bf16" in /proc/cpuinfo's Features).
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags, or None where they cannot be read (not Linux)."""
    if (override := os.environ.get("AEBENCH_CPU_FLAGS")) is not None:
        return set(override.split())
    return _cpuinfo_flags()


@functools.lru_cache(maxsize=1)
def _cpuinfo_flags() -> set[str] | None:
    try:
        text = CPUINFO.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return set(value.split())
    return None


def unsupported_reason(precision: str, device: str) -> str | None:
    """Why `precision` cannot train on `device` here, or None when it can."""
    if precision == "fp32":
        return None
    if device == "cuda":
        return None if torch.cuda.is_bf16_supported() else "this CUDA GPU has no native bfloat16 (torch.cuda.is_bf16_supported() is False)"
    if device != "cpu":
        return f"bf16 training is not offered on {device}"
    flags = cpu_flags()
    if flags is None:
        return f"this CPU's flags cannot be read ({CPUINFO} is missing), so native bfloat16 cannot be confirmed"
    if not flags & set(NATIVE_BF16_FLAGS):
        return ("this CPU has no native bfloat16 (none of the flags avx512_bf16, amx_bf16, bf16), where emulated "
                "bfloat16 trains slower than fp32")
    return None


def check_precision(precision: str, device: str) -> None:
    """UserError naming the missing feature when `precision` cannot train on `device` here."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision '{precision}'; choices: {choices(PRECISIONS)}")
    if (reason := unsupported_reason(precision, device)) is not None:
        raise UserError(f"--precision {precision} refused: {reason}; choices here: {choices(supported(device))}")


def supported(device: str) -> list[str]:
    """The precisions that can train on `device` on this machine."""
    return [p for p in PRECISIONS if unsupported_reason(p, device) is None]


def cpu_support_line() -> str:
    """What `list` says about this CPU's precisions."""
    flags = cpu_flags()
    native = sorted(flags & set(NATIVE_BF16_FLAGS)) if flags is not None else []
    reason = unsupported_reason("bf16", "cpu")
    if reason is None:
        return f"fp32, bf16 (native bfloat16: {', '.join(native)})"
    return f"fp32 only ({reason})"


def training_autocast(precision: str, device_type: str):
    """The context a training step's forward and loss run in: autocast to bfloat16 for bf16, nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), or what the platform module says where that cannot be read."""
    with contextlib.suppress(OSError):
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def cpu_description() -> str:
    """Which CPU a measured figure comes from: its name and which x86 bfloat16 flags it has (AMX or
    AVX512-BF16 alone decides how fast bf16 is)."""
    flags = cpu_flags() or set()
    has = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in ("avx512_bf16", "amx_bf16"))
    return f"CPU: {cpu_name()} ({has})"
