"""Write a reference study file from what `tune` chose, so that its values are copied, never typed.

    python benchmarks/reference_study.py fashion-mnist     # after tune-standard-fashion-mnist finished

reads results/reference/tune-standard-DATASET/tuned.toml and writes studies/reference-DATASET.toml:
every model with its tuned values, seeds 0-4, the standard profile, the classifier backbone (named, not
"auto", so that the numbers do not depend on whether Inception's weights are on the machine), 2 jobs, and
the tuning budget where tuned.toml records it (so that `run --tune-first` gives a new model that budget).
An existing study file is left alone unless --force: its committed results carry its run ids.
tests/test_studies.py checks that each reference study carries its tuned.toml's values.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from aebench.plumbing.tomlfile import read_toml  # noqa: E402
from aebench.run.study import TUNING_BUDGET  # noqa: E402
from aebench.tune.tuner import toml_key, toml_value  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]


def tuned_path(dataset: str) -> Path:
    return ROOT / "results" / "reference" / f"tune-standard-{dataset}" / "tuned.toml"


def reference_study(dataset: str, tuned: dict) -> str:
    """The study file's text: a header that says what it is, the grid, then tuned.toml's [hparams] tables."""
    header = [
        f"Issue 15, the reference study of {dataset}: every model with the hyperparameters `tune` chose on the",
        f"validation split (results/reference/tune-standard-{dataset}/tuned.toml, copied below; tests/test_studies.py",
        "checks they are equal), retrained on seeds 0-4 and scored on the test split, standard profile:",
        f"    python cli.py run --config studies/reference-{dataset}.toml",
        "The backbone is named, not \"auto\", so that the numbers do not depend on what the machine holds (auto",
        "picks Inception when its weights are present); the Inception scores are a separate, rescoring study.",
    ]
    keys = {"models": tuned["models"], "datasets": [dataset], "seeds": SEEDS, "profile": "standard",
            "fid_backbone": "classifier", "jobs": 2, "out": "results/reference",
            "experiment": f"reference-{dataset}", "note": tuned["note"]}
    if TUNING_BUDGET in tuned:  # tuned.toml written before the key existed has none
        keys[TUNING_BUDGET] = tuned[TUNING_BUDGET]
    lines = [f"# {line}" for line in header] + [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    for model, fields in tuned["hparams"].items():
        lines += ["", f"[hparams.{toml_key(model)}]"] + [f"{field} = {toml_value(value)}" for field, value in fields.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="the dataset of a finished tune-standard-DATASET study, e.g. fashion-mnist")
    parser.add_argument("--force", action="store_true", help="replace an existing study file")
    args = parser.parse_args(argv)
    source, target = tuned_path(args.dataset), ROOT / "studies" / f"reference-{args.dataset}.toml"
    if not source.is_file():
        print(f"{source.relative_to(ROOT)} does not exist: run `python cli.py tune --config "
              f"studies/tune-standard-{args.dataset}.toml --budget 4` to the end first", file=sys.stderr)
        return 2
    if target.exists() and not args.force:
        print(f"{target.relative_to(ROOT)} exists (its results carry its run ids); --force replaces it", file=sys.stderr)
        return 2
    tuned = read_toml(source, "tuned values")
    if tuned.get("datasets") != [args.dataset]:
        print(f"{source.relative_to(ROOT)} tuned datasets {tuned.get('datasets')}, not [{args.dataset!r}]", file=sys.stderr)
        return 2
    target.write_text(reference_study(args.dataset, tuned), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
