"""The committed reference folders (results/reference/*) are consistent, checked without retraining:
every run succeeded, every metric row belongs to a recorded run, every folder is listed in the
README, each report's numbers are what `report` computes from the folder's CSV files today, and a
folder's claims.md and before-after.md are what `claims` and benchmarks/before_after.py generate."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from aebench.report.writer import write_report

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"
FOLDERS = sorted(p for p in REFERENCE.iterdir() if (p / "runs.csv").is_file())
# What `report` derives from the CSV files alone: compared byte for byte with a fresh report's.
DERIVED = ("summary.csv", "comparisons.csv", "tables.tex")


def test_there_are_reference_folders():
    assert len(FOLDERS) >= 4, [p.name for p in FOLDERS]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_run_succeeded_and_every_metric_row_has_its_run(folder):
    runs, metrics = pd.read_csv(folder / "runs.csv"), pd.read_csv(folder / "metrics.csv")
    failed = runs[runs.status != "ok"]
    if _is_tuning(folder):  # a trial that diverged is an observation of the search (it ranks last)
        assert failed.reason.notna().all(), f"{folder.name}: a failed trial without its reason"
        runs = runs[runs.status == "ok"]
    else:
        assert failed.empty, f"{folder.name}: failed runs {list(failed.run_id)}"
    assert runs.run_id.is_unique, f"{folder.name}: a run recorded twice"
    assert set(metrics.run_id) == set(runs.run_id), f"{folder.name}: metric rows and runs differ"


def _is_tuning(folder: Path) -> bool:
    """An `aebench tune` experiment: its config.json records the trial budget."""
    return "budget" in json.loads((folder / "config.json").read_text())["config"]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_folder_is_described_in_the_readme(folder):
    assert f"| {folder.name} |" in (REFERENCE / "README.md").read_text()


@pytest.mark.parametrize("folder", [p for p in FOLDERS if (p / "report.md").is_file()], ids=lambda p: p.name)
def test_the_committed_report_is_what_report_computes_from_the_csvs(folder, tmp_path):
    copy = tmp_path / folder.name
    copy.mkdir()
    for name in ("runs.csv", "metrics.csv", "config.json"):
        if (folder / name).is_file():
            shutil.copy(folder / name, copy / name)
    if (folder / "per_image").is_dir():  # protocol v2: summary.csv's intervals are computed from these
        shutil.copytree(folder / "per_image", copy / "per_image")
    write_report(copy, figures=False)
    for name in DERIVED:
        assert (copy / name).read_text() == (folder / name).read_text(), f"{folder.name}/{name} is stale: run report"
    fresh, committed = _tables_and_verdicts(copy / "report.md"), _tables_and_verdicts(folder / "report.md")
    assert fresh == committed, f"{folder.name}/report.md is stale: run `python cli.py report` on it"


def _tables_and_verdicts(report: Path) -> list[str]:
    """The report's table rows and verdict lines; left out: figures, their notes (which depend on
    checkpoints, never committed) and the generation time."""
    return [line for line in report.read_text().splitlines()
            if line.startswith(("|", "- ")) and "no checkpoint" not in line]


def test_the_claims_in_results_readme_are_what_the_command_they_name_generates(monkeypatch):
    import re

    from aebench.report.claims import BEGIN, END, claims_report

    readme = (REFERENCE.parent / "README.md").read_text()
    arguments = re.search(re.escape(BEGIN) + r" (.*?)`", readme).group(1).split()
    arguments = arguments[:arguments.index("--out")]
    ablation = arguments[arguments.index("--ablation") + 1] if "--ablation" in arguments else None
    folders = [a for a in arguments if a not in ("--ablation", ablation)]
    committed = readme.split(BEGIN, 1)[1].split("\n", 1)[1].split(END, 1)[0]
    monkeypatch.chdir(REFERENCE.parent.parent)  # the command names folders relative to the checkout
    assert committed == claims_report(folders, ablation), "results/README.md is stale: run the command it names"


@pytest.mark.parametrize("folder", [p for p in FOLDERS if (p / "claims.md").is_file()], ids=lambda p: p.name)
def test_a_folders_claims_file_is_what_the_claims_command_generates(folder, monkeypatch):
    from aebench.report.claims import claims_report

    monkeypatch.chdir(REFERENCE.parent.parent)  # the file names its folder relative to the checkout
    fresh = claims_report([str(folder.relative_to(REFERENCE.parent.parent))])
    assert (folder / "claims.md").read_text() == fresh, f"{folder.name}/claims.md is stale: run `python cli.py claims`"


@pytest.mark.parametrize("folder", [p for p in FOLDERS if (p / "before-after.md").is_file()], ids=lambda p: p.name)
def test_a_folders_before_after_table_is_what_the_script_generates(folder):
    from benchmark_script import load_script

    committed = (folder / "before-after.md").read_text()
    before, after = committed.splitlines()[0].removeprefix("# Before and after: ").split(" -> ")
    assert after == folder.name, f"{folder.name}/before-after.md compares {after}, not this folder"
    fresh = load_script("before_after").before_after(REFERENCE / before, REFERENCE / after)
    assert committed == fresh, f"{folder.name}/before-after.md is stale: run benchmarks/before_after.py"
