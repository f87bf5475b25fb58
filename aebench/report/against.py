"""`aebench report EXPERIMENT --against REFERENCE`: your models beside a committed reference study's,
read from its folder and never retrained, under the same tables and significance tests.

A comparison across two folders is only fair when everything but the model is the same, so before any
number is read the two are checked, and any difference is a refusal naming the setting:

- the datasets: each of yours is one of the reference's (the same dataset key: the same data, and so
  the same fixed split);
- the seeds: on each dataset, yours are the reference's (the paired tests pair runs by seed);
- the evaluation (eval_config: protocol, FID backbone and sample sizes, probes...) and the binarisation,
  which decide what every number means;
- the training settings (train_config: epoch cap, patience, optimiser, batch size, precision), so that
  your model had the budget the baselines had.

A model in both folders is refused too: which of its two sets of runs would be "the" model?
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from aebench.errors import UserError
from aebench.store.values import Results, column_labels

# runs.csv columns that must hold one value across both folders (on each dataset), and what they are
SHARED_SETTINGS = {"eval_config": "evaluation settings", "train_config": "training settings",
                   "binarize": "binarisation"}


def _ok(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def _settings(runs: pd.DataFrame, column: str) -> set[str]:
    if column not in runs:
        return set()
    values = _ok(runs)[column].dropna()
    if column.endswith("_config"):  # compare the settings, not the JSON's spelling
        return {json.dumps(json.loads(v), sort_keys=True) for v in values}
    return {str(v) for v in values}


def _differing_keys(ours: set[str], theirs: set[str]) -> str:
    """Which keys of two sets of JSON settings differ, e.g. "fid_samples (yours 200, reference 10000)"."""
    mine = [json.loads(v) for v in ours]
    refs = [json.loads(v) for v in theirs]
    keys = sorted({k for d in mine + refs for k in d})
    found = []
    for key in keys:
        a, b = {json.dumps(d.get(key)) for d in mine}, {json.dumps(d.get(key)) for d in refs}
        if a != b:
            found.append(f"{key} (yours {', '.join(sorted(a))}; reference {', '.join(sorted(b))})")
    return "; ".join(found) or "their JSON"


def check_comparable(ours: Results, reference: Results) -> None:
    """UserError naming the first setting that differs between the two experiments' successful runs."""
    mine, theirs = _ok(ours.runs), _ok(reference.runs)
    where = f"--against {reference.folder.name}"
    shared = sorted(set(mine["model"]) & set(theirs["model"]))
    if shared:
        raise UserError(f"{where}: {', '.join(shared)} ran in both folders; the comparison takes your models from "
                        f"{ours.folder.name} and the baselines from the reference: leave them out of one")
    for dataset, runs in mine.groupby("dataset"):
        on_reference = theirs[theirs["dataset"] == dataset]
        if on_reference.empty:
            raise UserError(f"{where}: dataset {dataset} is not in the reference (its datasets: "
                            f"{', '.join(sorted(theirs['dataset'].astype(str).unique()))}); run your model on those")
        seeds, reference_seeds = sorted(set(runs["seed"].astype(int))), sorted(set(on_reference["seed"].astype(int)))
        if seeds != reference_seeds:
            raise UserError(f"{where}: seeds on {dataset} differ: yours {seeds}, the reference's {reference_seeds}; "
                            f"run your model with --seeds {','.join(map(str, reference_seeds))}")
        for column, what in SHARED_SETTINGS.items():
            a, b = _settings(runs, column), _settings(on_reference, column)
            if a != b:
                detail = _differing_keys(a, b) if column.endswith("_config") else f"yours {a}, reference {b}"
                raise UserError(f"{where}: the {what} on {dataset} differ: {detail}; run your model with the "
                                "reference study's settings (its config.json, or its study file)")


def against(ours: Results, reference: Results) -> Results:
    """Your results with the reference's beside them, after check_comparable; each run keeps the folder its
    files (per-image values, histories, checkpoints) are in."""
    check_comparable(ours, reference)
    datasets = set(ours.values["dataset"])
    theirs_values = reference.values[reference.values["dataset"].isin(datasets)]
    theirs_runs = reference.runs[reference.runs["dataset"].isin(datasets)]
    values = pd.concat([ours.values, theirs_values], ignore_index=True)
    values["column"] = column_labels(values)  # qualifiers that differ only across the two folders show
    runs = pd.concat([ours.runs, theirs_runs], ignore_index=True)
    failed = pd.concat([ours.failed, reference.failed[reference.failed["dataset"].isin(datasets)]], ignore_index=True)
    return replace(ours, values=values, runs=runs, failed=failed, reference=reference.folder)


def against_line(results: Results) -> str:
    """The report's sentence on where the reference's runs came from."""
    if results.reference is None:
        return ""
    theirs = results.runs[results.runs["folder"] == str(results.reference)]
    commits = sorted({str(c)[:7] for c in theirs.get("git_commit", pd.Series(dtype=str)).dropna()})
    models = ", ".join(sorted(theirs["model"].astype(str).unique()))
    return (f"**Against a reference.** The runs of {models} are read from `{Path(results.reference).name}` "
            f"(code {', '.join(commits) or 'not recorded'}), not retrained; `report --against` checked that they "
            "share this experiment's datasets, seeds, evaluation, binarisation and training settings. The tables "
            "and tests treat every model alike.")
