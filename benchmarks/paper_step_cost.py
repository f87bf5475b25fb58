"""What the paper profile costs per epoch on this machine, measured over a few training steps.

    python benchmarks/paper_step_cost.py [--dataset fashion-mnist] [--steps 5] [--device cpu]
                                         [--compare-memory-format] [--profile paper]

For each model: the paper profile's settings (gated networks, latent 40, AdamNormGrad, batch 100,
dynamic binarisation, each model's own paper values such as SWAE's K = 4000), `steps` optimiser
steps after one warm-up step, then the time per step times the steps of one epoch, and of the
profile's 200 epochs (an upper bound: early stopping may end sooner). --profile standard (or any
other) measures that profile's settings instead, e.g. to design its epoch cap.

--compare-memory-format: each model also in the plain (contiguous) layout, the two timed alternately
(`--steps` steps each, three rounds, the best round of each), with the speed-up of channels-last
weights, which models/networks.py uses for the gated networks.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmark.data import load_dataset  # noqa: E402
from benchmark.optim import make_optimizer  # noqa: E402
from benchmark.profiles import get_profile, model_settings  # noqa: E402
from benchmark.registry import MODELS, build_model  # noqa: E402


def seconds_per_step(model, data, batch_size: int, steps: int, optimizer_name: str, lr: float) -> float:
    optimizer = make_optimizer(optimizer_name, model.parameters(), lr)
    generator = torch.Generator().manual_seed(0)
    timings = []
    for step in range(steps + 1):  # the first step warms up allocators and kernels: not counted
        index = torch.randint(len(data.train_x), (batch_size,), generator=generator).to(data.train_x.device)
        started = time.perf_counter()
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


def compare_memory_format(name, data, profile, device, steps: int) -> str:
    """Best-of-three seconds per step of the suite's layout against the contiguous one, alternating."""
    layouts = {"suite": build(name, data, profile, device),
               "contiguous": build(name, data, profile, device).to(memory_format=torch.contiguous_format)}
    best = {layout: float("inf") for layout in layouts}
    for _ in range(3):
        for layout, model in layouts.items():
            best[layout] = min(best[layout], seconds_per_step(model, data, profile.train.batch_size, steps,
                                                              profile.train.optimizer, profile.train.lr))
    return (f"contiguous {best['contiguous'] * 1000:.0f} ms/step, suite's layout {best['suite'] * 1000:.0f} ms/step: "
            f"{best['contiguous'] / best['suite']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--profile", default="paper", help="any profile: its networks, batch, optimiser and epochs")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--compare-memory-format", action="store_true")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    data = load_dataset(args.dataset, binarize=profile.binarize, download=False).to(args.device)
    steps_per_epoch = -(-len(data.train_x) // profile.train.batch_size)
    print(f"{profile.name} profile on {args.dataset} ({len(data.train_x)} training images, {steps_per_epoch} steps/epoch), "
          f"device {args.device}, {torch.get_num_threads()} threads")
    for name in args.models.split(","):
        if args.compare_memory_format:
            print(f"  {name:<10} {compare_memory_format(name, data, profile, args.device, args.steps)}")
            continue
        model = build(name, data, profile, args.device)
        step = seconds_per_step(model, data, profile.train.batch_size, args.steps, profile.train.optimizer, profile.train.lr)
        epoch = step * steps_per_epoch
        print(f"  {name:<10} {step * 1000:8.0f} ms/step  {epoch / 60:7.1f} min/epoch  "
              f"{epoch * profile.train.epochs / 3600:7.1f} h for {profile.train.epochs} epochs")


if __name__ == "__main__":
    main()
