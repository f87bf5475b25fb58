"""What the evaluation protocol costs, against training, and what its caches save.

    python benchmarks/eval_cost.py                     # vae on mnist-5k, quick profile (a few minutes)
    python benchmarks/eval_cost.py --dataset digits --profile smoke

1. Runs `cli.py run` once with an EMPTY cache folder (AEBENCH_CACHE pointed at a fresh temporary
   folder): runs.csv then holds train_seconds and the cold eval_seconds (FID classifier trained,
   reference statistics computed).
2. Reloads the saved checkpoint and evaluates it again in this process with the caches on disk (the
   in-process copies dropped): the warm evaluation every later run of the grid pays.
3. Times each part of the warm evaluation, and the two cached pieces on their own.
The machine's load average is printed too: on a shared CPU, every number here moves with it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from aebench.plumbing.provenance import load_average  # noqa: E402


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def run_cli(args, work: Path) -> Path:
    out = work / "results"
    command = [sys.executable, str(ROOT / "cli.py"), "run", "--models", args.model, "--dataset", args.dataset,
               "--profile", args.profile, "--out", str(out), "--quiet", "--device", "cpu"]
    print("$", " ".join(command), f"(AEBENCH_CACHE={work / 'cache'})", flush=True)
    subprocess.run(command, check=True, env=os.environ | {"AEBENCH_CACHE": str(work / "cache")})
    return out / args.profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vae")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--work", default=None, help="folder for results and cache (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="aebench-eval-cost-"))
    print(f"load average before: {load_average()}")

    folder = run_cli(args, work)
    import pandas as pd

    run = pd.read_csv(folder / "runs.csv").iloc[-1]
    train_s, cold_s = float(run["train_seconds"]), float(run["eval_seconds"])

    os.environ["AEBENCH_CACHE"] = str(work / "cache")
    import torch

    import aebench.features.backbones as backbones
    from aebench.catalog.models import build_model
    from aebench.data.datasets import load_dataset
    from aebench.metrics.fid import features_path, reference_statistics
    from aebench.metrics.local_structure import fixed_subset
    from aebench.run import evaluation as ev
    from aebench.run.profiles import get_profile

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    profile = get_profile(args.profile)
    config = profile.eval
    data = load_dataset(args.dataset, binarize=profile.binarize)
    checkpoint = torch.load(folder / "checkpoints" / f"{run['run_id']}.pt", map_location="cpu", weights_only=False)
    model = build_model(checkpoint["model"], checkpoint["image_shape"], checkpoint["hparams"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()

    backbones.forget_loaded_backbones()  # only the disk cache is left, as for a new process
    rows, warm_s = timed(ev.evaluate, model, data, config, log=lambda *a: None)
    same = {r["metric"]: r["value"] for r in rows} == {
        r["metric"]: r["value"] for r in pd.read_csv(folder / "metrics.csv").to_dict("records")}

    # the parts of a warm evaluation
    x_hat, t_recon = timed(ev.batched, model.reconstruct, data.test_x, config.batch_size)
    (train_z, test_z), t_encode = timed(lambda: (ev.batched(model.encode, data.train_x, config.batch_size),
                                                 ev.batched(model.encode, data.test_x, config.batch_size)))
    _, t_probes = timed(ev.probe_rows, train_z.numpy(), data.train_y.numpy(), test_z.numpy(), data.test_y.numpy(), config)
    _, t_denoise = timed(ev.denoising_per_image, model.reconstruct, data.test_x, config.denoise_sigmas, config.seed,
                         config.batch_size)
    _, t_neigh = timed(ev.neighbourhood_rows, data.test_x, test_z, config)
    backbones.forget_loaded_backbones()
    backbone, t_load_backbone = timed(backbones.get_backbone, config.fid_backbone, data, config.inception_weights)
    _, t_fid = timed(ev.sample_quality_rows, model, data, x_hat, config)

    # the cached pieces, recomputed
    _, t_train_classifier = timed(backbones.train_classifier, data) if backbone.accuracy is not None else (None, 0.0)
    reference = data.test_grey[fixed_subset(len(data.test_grey), config.fid_reference, config.seed)]
    label = data.name
    features_path(label, "test", backbone, reference).unlink()
    _, t_stats_cold = timed(reference_statistics, backbone, reference, label, "test")
    _, t_stats_warm = timed(reference_statistics, backbone, reference, label, "test")

    print(f"\n{args.model} on {args.dataset}, profile {args.profile}: FID backbone {backbone.name} "
          f"(test accuracy {backbone.accuracy}), {config.fid_samples} samples vs {len(reference)} reference images")
    lines = [
        ("training (runs.csv train_seconds)", train_s),
        ("evaluation, empty cache (runs.csv eval_seconds)", cold_s),
        ("evaluation, caches on disk (new process)", warm_s),
        ("  saved by the caches", cold_s - warm_s),
        ("warm parts: reconstruct test", t_recon),
        ("            encode train + test", t_encode),
        ("            probes (knn + linear)", t_probes),
        (f"            denoising ({len(config.denoise_sigmas)} sigmas)", t_denoise),
        ("            trustworthiness + continuity", t_neigh),
        ("            load backbone from cache", t_load_backbone),
        ("            FID rows (samples, features, stats)", t_fid),
        ("cached: train the classifier", t_train_classifier),
        ("cached: reference statistics, computed", t_stats_cold),
        ("cached: reference statistics, read", t_stats_warm),
    ]
    for label_, seconds in lines:
        print(f"  {label_:<52} {seconds:8.2f} s")
    print(f"  evaluation / training: cold {cold_s / train_s:.2f}, warm {warm_s / train_s:.2f}")
    print(f"  warm evaluation reproduces the run's metrics exactly: {same}")
    print(f"load average after: {load_average()}; work folder: {work}")


if __name__ == "__main__":
    main()
