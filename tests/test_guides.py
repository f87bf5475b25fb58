"""The guides of docs/ (adding a model, a dataset, a metric) followed step by step: each block marked
`# guide: LABEL` is the code or command these tests run, so a guide that stops working fails here."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import cli
from aebench.data.datasets import load_dataset
from aebench.metrics import directions
from aebench.plumbing import entry_points
from aebench.plumbing.entry_points import Declared
from aebench.run.evaluation import Scores, metric_row

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```\w*\n# guide: ([^\n]+)\n(.*?)```", re.S)


def guide(name: str) -> dict[str, str]:
    """The guide's marked blocks by label."""
    blocks = dict(BLOCK.findall((ROOT / "docs" / name).read_text()))
    assert blocks, f"docs/{name} has no `# guide:` blocks"
    return blocks


def run_commands(capsys, block: str, out: Path) -> None:
    """Each `aebench ...` line of a block through the CLI, OUT being the test's output folder."""
    for line in block.strip().splitlines():
        argv = shlex.split(line.replace("OUT", str(out)).replace("tests/data/", str(ROOT / "tests" / "data") + "/"))
        assert argv[0] == "aebench", line
        code = cli.main(argv[1:])
        captured = capsys.readouterr()
        assert code == 0, f"{line}\n{captured.err}"


def test_adding_a_model(capsys, tmp_path, monkeypatch):
    blocks = guide("adding-a-model.md")
    (tmp_path / "tiny_ae.py").write_text(blocks["tiny_ae.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    run_commands(capsys, blocks["run"], tmp_path / "out")
    runs = pd.read_csv(tmp_path / "out" / "mine" / "runs.csv")
    assert runs["model"].tolist() == ["tiny_ae:TinyAE"] * 2 and (runs["status"] == "ok").all()
    # step 4: tune with the study's budget, run the choice on the reference's seeds, report beside the reference
    run_commands(capsys, blocks["against"], tmp_path / "out")
    trials = pd.read_csv(tmp_path / "out" / "tuned-mine-tune" / "tuning.csv")
    assert len(trials) == 2 and set(trials["model"]) == {"tiny_ae:TinyAE"}
    tuned = pd.read_csv(tmp_path / "out" / "tuned-mine" / "runs.csv")
    assert sorted(tuned["seed"]) == [0, 1] and (tuned["status"] == "ok").all()
    chosen = trials[trials["selected"]]["hparams"].iloc[0]
    assert all(json.loads(h)["code_noise"] == json.loads(chosen)["code_noise"] for h in tuned["hparams"])
    summary = pd.read_csv(tmp_path / "out" / "tuned-mine" / "summary.csv")
    assert set(summary["model"]) == {"tiny_ae:TinyAE", "vae", "swae"}
    assert "Against a reference" in (tmp_path / "out" / "tuned-mine" / "report.md").read_text()


def test_adding_a_dataset(capsys, tmp_path, monkeypatch):
    blocks = guide("adding-a-dataset.md")
    monkeypatch.chdir(tmp_path)
    exec(blocks["make_npz.py"], {})
    run_commands(capsys, blocks["run npz"], tmp_path / "out")
    runs = pd.read_csv(tmp_path / "out" / "smoke" / "runs.csv")
    assert runs["dataset"].iloc[0].startswith("npz-my-digits-") and runs["status"].iloc[0] == "ok"
    exec(blocks["make_folder.py"], {})
    run_commands(capsys, blocks["run folder"], tmp_path / "out")
    shapes = load_dataset("folder:shapes@12")
    assert shapes.image_shape == (3, 12, 12) and shapes.num_classes == 2
    # the plug-in: its module, declared as its entry point would declare it
    (tmp_path / "inverted_digits.py").write_text(blocks["inverted_digits.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(entry_points, "entries", lambda group: [
        Declared("inverted-digits", "inverted_digits:INVERTED_DIGITS", "guide")] if group == "aebench.datasets" else [])
    entry_points.declared.cache_clear()
    try:
        data = load_dataset("inverted-digits")
        assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (1257, 180, 360)
        assert data.train_x.max() <= 1 and data.name == "inverted-digits"
    finally:
        entry_points.declared.cache_clear()
    assert 'inverted-digits = "inverted_digits:INVERTED_DIGITS"' in (ROOT / "docs" / "adding-a-dataset.md").read_text()


def test_adding_a_metric(monkeypatch):
    blocks = guide("adding-a-metric.md")
    module: dict = {}
    exec(blocks["aebench/metrics/abs_error.py"], module)
    recon_mae = module["RECON_MAE"]
    with pytest.raises(ValueError, match="'recon_mae' is not declared"):  # before step 2: refused, not dropped
        metric_row("recon_mae", 0.1, "test", 2)
    directions.declaration.cache_clear()
    monkeypatch.setattr(directions, "DECLARED", (*directions.DECLARED, recon_mae))  # step 2
    try:
        assert directions.direction("recon_mae") == directions.LOWER
        x_test = torch.rand(5, 1, 4, 4)
        x_hat = x_test.clone()
        x_hat[0] += 0.5
        scores, split = Scores(), "test"
        exec(blocks["evaluation"], {**module, "scores": scores, "x_hat": x_hat, "x_test": x_test, "split": split})  # step 3
        assert scores[0]["metric"] == "recon_mae" and scores[0]["n"] == 5
        assert scores[0]["value"] == pytest.approx(0.5 / 5) and len(scores.per_image["recon_mae"]) == 5
        exec(blocks["test"], {**module, "np": np, "torch": torch})  # step 4
    finally:
        directions.declaration.cache_clear()
