"""The FID classifier's test accuracy and training time, per dataset (no cache: trained afresh).

    python benchmarks/classifier_accuracy.py                           # mnist and fashion-mnist
    python benchmarks/classifier_accuracy.py --datasets digits mnist-5k
    python benchmarks/classifier_accuracy.py --datasets mnist --binarize

Trains exactly what `--fid-backbone classifier` caches (aebench.features.classifier_training) and
prints, per dataset: the test accuracy, the accuracy on its own validation part, the rounds and steps,
why it stopped, the validation loss after each round, and the wall time. Training runs on one thread
(CLASSIFIER_THREADS), so its time is that of one core; on a shared CPU it moves with the load, which
is printed before and after each dataset.

Measured for v4, seed 0, on a 2-core AMD EPYC shared with other jobs (load average 1 to 4 during
the long runs, so the times are upper bounds for one core):
    mnist          test 0.9931, own validation 0.9938, 18 rounds, 6336 steps, converged, 463 s
    fashion-mnist  test 0.9149, own validation 0.9234, 23 rounds, 8096 steps, converged, 420 s
    mnist-5k       test 0.9800, 13 rounds, 325 steps, converged, 15 s
    digits         test 0.9806, 10 rounds, 200 steps, converged, 6 s (binarised: 0.9000, 6 s)
The same trainings in tests/test_classifier.py's slow test, at a load average near 1: mnist 298 s,
fashion-mnist 384 s (data loading included).
v3 (a fixed 800-1200 steps): mnist 0.9790, fashion-mnist 0.8302, mnist-5k 0.967, digits 0.983.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aebench.data.datasets import load_dataset  # noqa: E402
from aebench.features.classifier_training import CLASSIFIER_VERSION, SCHEDULE, train_classifier  # noqa: E402
from aebench.plumbing.provenance import load_average  # noqa: E402


def report_line(name: str, trained) -> str:
    losses = " ".join(f"{v:.4f}" for v in trained.val_losses)
    return (f"{name}: test accuracy {trained.test_accuracy:.4f}, own validation {trained.val_accuracy:.4f} "
            f"({len(trained.val_index)} images, fitted on {len(trained.fit_index)}), {trained.rounds} rounds, "
            f"{trained.steps} steps, stopped by {trained.stopped_by}, {trained.seconds:.0f} s\n"
            f"  validation loss per round: {losses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--binarize", action="store_true")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"classifier v{CLASSIFIER_VERSION}, {SCHEDULE}", flush=True)
    for name in args.datasets:
        data = load_dataset(name, args.data_root, binarize=args.binarize)
        print(f"load average before {name}: {load_average()}", flush=True)
        trained = train_classifier(data, seed=args.seed, log=lambda line: print(line, flush=True))
        print(report_line(name, trained), flush=True)
        print(f"load average after {name}: {load_average()}", flush=True)


if __name__ == "__main__":
    main()
