"""What a profile's training step costs on this machine (the paper profile by default), measured over a few steps.

    python benchmarks/paper_step_cost.py [--dataset fashion-mnist] [--steps 5] [--device cpu] [--models vae,swae]
                                         [--profile paper] [--precision fp32[,bf16]] [--rounds 3]
                                         [--compare-memory-format]

For each model: the paper profile's settings (gated networks, latent 40, AdamNormGrad, batch 100,
dynamic binarisation, each model's own paper values such as SWAE's K = 4000), `steps` optimiser
steps after one warm-up step, then the time per step times the steps of one epoch, and of the
profile's 200 epochs (an upper bound: early stopping may end sooner). --profile standard (or any
other) measures that profile's settings instead, e.g. to design its epoch cap.

--precision: the arithmetic of the steps, as `aebench run --precision` trains (aebench.plumbing.precision):
fp32, or bf16, where the forward and the loss run under torch.autocast (bfloat16) and the backward and
the optimiser step on float32 weights, exactly as aebench.run.training's epochs do. bf16 is refused (one
line on stderr, exit code 2) on hardware without native bfloat16. With several precisions, each model
is built once per precision and the precisions are timed alternately (fp32, bf16, fp32, bf16, ...:
`--rounds` rounds of `--steps` steps each), so that a change in the machine's load hits all of them.

--compare-memory-format: each model also in the plain (contiguous) layout, the two timed alternately
(`--steps` steps each, `--rounds` rounds, the best round of each), with the speed-up of channels-last
weights, which models/networks.py uses for the gated networks. It measures fp32 only.

Reading the output: the first lines name the CPU (its model name and which of avx512_bf16 / amx_bf16
it has: AMX is what makes bf16 fast on Intel CPUs) and the load average, so that every figure says
where it comes from. With one precision, a line per model: ms per step, minutes per epoch, hours for
the profile's epochs. With several, a line per model and precision with the median round (each
round's ms per step follow it), then the bf16 speed-up: fp32's median time per step over bf16's
(above 1: bf16 is faster).

The fp32 / bf16 table of the issue on precision (three commands, one per profile):

    python benchmarks/paper_step_cost.py --profile quick --dataset mnist-5k --models vae,swae --precision fp32,bf16
    python benchmarks/paper_step_cost.py --profile standard --dataset mnist --models vae --precision fp32,bf16
    python benchmarks/paper_step_cost.py --profile paper --dataset mnist --models vae,swae --precision fp32,bf16

(quick: the conv VAE and SWAE; standard: the MLP VAE; paper: the gated VAE and SWAE.)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aebench.catalog.models import MODELS, build_model  # noqa: E402
from aebench.data.datasets import load_dataset  # noqa: E402
from aebench.errors import UserError  # noqa: E402
from aebench.plumbing.precision import check_precision, cpu_description, training_autocast  # noqa: E402
from aebench.plumbing.provenance import load_average  # noqa: E402
from aebench.run.optim import make_optimizer  # noqa: E402
from aebench.run.profiles import get_profile, model_settings  # noqa: E402
from aebench.run.training import TrainConfig  # noqa: E402


def seconds_per_step(model, data, train: TrainConfig, steps: int) -> float:
    """Mean seconds of `steps` training steps in train's precision, batch, optimiser and learning rate."""
    optimizer = make_optimizer(train.optimizer, model.parameters(), train.lr)
    autocast = training_autocast(train.precision, data.train_x.device.type)
    generator = torch.Generator().manual_seed(0)
    timings = []
    for step in range(steps + 1):  # the first step warms up allocators and kernels: not counted
        index = torch.randint(len(data.train_x), (train.batch_size,), generator=generator).to(data.train_x.device)
        started = time.perf_counter()
        with autocast:  # the forward and loss only, as aebench.run.training: backward and update on float32 weights
            loss = model.loss(data.train_batch(index))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.after_step()
        if data.train_x.is_cuda:
            torch.cuda.synchronize()
        if step:
            timings.append(time.perf_counter() - started)
    return sum(timings) / len(timings)


def build(name, data, profile, device):
    torch.manual_seed(0)
    model = build_model(name, data.image_shape, model_settings(profile, MODELS[name])).to(device)
    model.prepare(data.train_x, torch.Generator().manual_seed(0))
    return model


def alternate(variants: dict, data, steps: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per step of each variant (name: (model, TrainConfig)) in each round; every round times each
    variant once, in turn, so that a change in the machine's load hits them all."""
    seconds = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (model, train) in variants.items():
            seconds[name].append(seconds_per_step(model, data, train, steps))
    return seconds


def compare_memory_format(name, data, profile, device, steps: int, rounds: int) -> str:
    """Best-of-rounds seconds per step of the suite's layout against the contiguous one, alternating."""
    contiguous = build(name, data, profile, device).to(memory_format=torch.contiguous_format)
    seconds = alternate({"suite": (build(name, data, profile, device), profile.train),
                         "contiguous": (contiguous, profile.train)}, data, steps, rounds)
    best = {layout: min(s) for layout, s in seconds.items()}
    return (f"contiguous {best['contiguous'] * 1000:.0f} ms/step, suite's layout {best['suite'] * 1000:.0f} ms/step: "
            f"{best['contiguous'] / best['suite']:.2f}x")


def step_cost(step: float, steps_per_epoch: int, epochs: int) -> str:
    """A step's seconds as ms per step, minutes per epoch and hours for the profile's epochs."""
    epoch = step * steps_per_epoch
    return f"{step * 1000:8.1f} ms/step  {epoch / 60:7.1f} min/epoch  {epoch * epochs / 3600:7.1f} h for {epochs} epochs"


def compare_precisions(name, data, profile, device, args, steps_per_epoch: int) -> None:
    """Prints each precision's median seconds per step (of alternating rounds) and bf16's speed-up."""
    variants = {p: (build(name, data, profile, device), replace(profile.train, precision=p)) for p in args.precisions}
    seconds = alternate(variants, data, args.steps, args.rounds)
    medians = {p: statistics.median(s) for p, s in seconds.items()}
    for p, s in seconds.items():
        rounds = " ".join(f"{t * 1000:.1f}" for t in s)
        cost = step_cost(medians[p], steps_per_epoch, profile.train.epochs)
        print(f"  {name:<10} {p:<5} {cost}  (rounds, ms: {rounds})")
    if {"fp32", "bf16"} <= medians.keys():
        print(f"  {name:<10} bf16 speed-up (fp32 time / bf16 time): {medians['fp32'] / medians['bf16']:.2f}x")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--profile", default="paper", help="any profile: its networks, batch, optimiser and epochs")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precision", default="fp32", help="comma-separated, among fp32,bf16: timed alternately")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of alternation when comparing (default 3)")
    parser.add_argument("--compare-memory-format", action="store_true")
    args = parser.parse_args()
    args.precisions = list(dict.fromkeys(args.precision.split(",")))  # in the order given, each once
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be >= 1")
    if args.compare_memory_format and args.precisions != ["fp32"]:
        parser.error("--compare-memory-format measures fp32 only: leave --precision out")
    try:
        for precision in args.precisions:  # refused before anything is measured
            check_precision(precision, args.device)
    except UserError as error:
        parser.exit(2, f"{error}\n")
    return args


def main() -> None:
    args = parse_args()
    profile = get_profile(args.profile)
    data = load_dataset(args.dataset, binarize=profile.binarize).to(args.device)
    steps_per_epoch = -(-len(data.train_x) // profile.train.batch_size)
    print(f"{cpu_description()}; load average {load_average()}"
          + (f"; GPU: {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))
    print(f"{profile.name} profile on {args.dataset} ({len(data.train_x)} training images, {steps_per_epoch} steps/epoch), "
          f"device {args.device}, {torch.get_num_threads()} threads, precision {', '.join(args.precisions)}"
          + (f", alternating, {args.rounds} rounds of {args.steps} steps" if len(args.precisions) > 1 else ""))
    for name in args.models.split(","):
        if args.compare_memory_format:
            print(f"  {name:<10} {compare_memory_format(name, data, profile, args.device, args.steps, args.rounds)}")
        elif len(args.precisions) > 1:
            compare_precisions(name, data, profile, args.device, args, steps_per_epoch)
        else:
            train = replace(profile.train, precision=args.precisions[0])
            step = seconds_per_step(build(name, data, profile, args.device), data, train, args.steps)
            print(f"  {name:<10} {step_cost(step, steps_per_epoch, profile.train.epochs)}")


if __name__ == "__main__":
    main()
