"""A user's own images and a plug-in's dataset run like a built-in dataset: `--dataset npz:PATH`,
`--dataset folder:PATH[@SIZE]` and the entry-point group aebench.datasets (tests/toy_plugin declares
`toydigits`). Run ids name the data by its content, not its path; unlabelled data skips the probes and
says so; every mistake is one line and exit 2 with nothing written."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import cli
from aebench.data.datasets import dataset_key, get_spec, load_dataset
from aebench.run.profiles import get_profile
from aebench.run.runner import plan


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def smoke(tmp_path, *argv):
    return ["run", "--profile", "smoke", "--models", "vae", "--epochs", "2", "--fid-samples", "200",
            "--out", str(tmp_path / "out"), "--quiet", *argv]


@pytest.fixture
def digits_npz(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path / "my digits.npz"
    np.savez(path, x=(d.images[:400] * 16).clip(0, 255).astype(np.uint8), y=d.target[:400])
    return path


def test_an_npz_runs_and_its_ids_name_its_content_not_its_path(capsys, tmp_path, digits_npz):
    code, out, err = run_cli(capsys, *smoke(tmp_path, "--dataset", f"npz:{digits_npz}"))
    assert code == 0 and "1 runs done" in out, err
    runs = pd.read_csv(tmp_path / "out" / "smoke" / "runs.csv")
    key = runs["dataset"].iloc[0]
    assert key.startswith("npz-my-digits-") and len(key.rsplit("-", 1)[1]) == 8
    assert runs["run_id"].iloc[0].startswith(f"vae_{key}_s0_") and runs["status"].iloc[0] == "ok"
    metrics = pd.read_csv(tmp_path / "out" / "smoke" / "metrics.csv")
    assert {"knn5_acc", "linear_acc", "fid"} <= set(metrics["metric"]) and set(metrics["dataset"]) == {key}
    # the same file in another folder (another machine): the same key and run ids; one changed pixel: another key
    moved = tmp_path / "elsewhere" / digits_npz.name
    moved.parent.mkdir()
    shutil.copy(digits_npz, moved)
    profile = get_profile("smoke")
    ids = [s.run_id for s in plan(profile, ["vae"], [f"npz:{digits_npz}"], [0], 2)]
    assert ids == [s.run_id for s in plan(profile, ["vae"], [f"npz:{moved}"], [0], 2)] and key in ids[0]
    assert dataset_key(f"npz:{moved}") == key
    arrays = dict(np.load(moved))
    arrays["x"][0, 0, 0] ^= 1
    np.savez(moved, **arrays)
    get_spec.__globals__["own_images_spec"].cache_clear()
    assert dataset_key(f"npz:{moved}") != key and dataset_key(f"npz:{moved}").startswith("npz-my-digits-")


def test_the_seeded_split_and_a_given_split(tmp_path, digits_npz):
    data = load_dataset(f"npz:{digits_npz}")
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (280, 40, 80)  # 70 / 10 / 20 %
    assert data.image_shape == (1, 8, 8) and data.labelled and data.num_classes == 10
    again = load_dataset(f"npz:{digits_npz}")
    assert torch.equal(data.test_x, again.test_x)  # fixed by SPLIT_SEED, not by chance
    x = np.arange(20 * 16, dtype=np.uint8).reshape(20, 4, 4)
    split = np.array(["train"] * 12 + ["val"] * 3 + ["test"] * 5)
    np.savez(tmp_path / "split.npz", x=x, split=split)
    given = load_dataset(f"npz:{tmp_path / 'split.npz'}")
    assert (len(given.train_x), len(given.val_x), len(given.test_x)) == (12, 3, 5)
    assert torch.equal(given.test_x[:, 0] * 255, torch.as_tensor(x[15:]).float()) and not given.labelled


def test_unlabelled_images_skip_the_probes_and_say_so(capsys, tmp_path, digits_npz):
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, x=np.load(digits_npz)["x"])
    code, out, err = run_cli(capsys, *smoke(tmp_path, "--dataset", f"npz:{unlabelled}", "--fid-samples", "0"))
    assert code == 0 and "has no labels: the probes (kNN and linear accuracy) are skipped" in out + err, err
    metrics = pd.read_csv(tmp_path / "out" / "smoke" / "metrics.csv")
    assert "recon_sse" in set(metrics["metric"]) and not any(m.endswith("_acc") for m in metrics["metric"])


def test_unlabelled_images_refuse_the_classifier_backbone_before_anything_is_written(capsys, tmp_path, digits_npz):
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, x=np.load(digits_npz)["x"])
    code, _, err = run_cli(capsys, *smoke(tmp_path, "--dataset", f"npz:{unlabelled}", "--fid-backbone", "classifier"))
    assert code == 2 and "has no labels, and the classifier FID backbone is trained on labels" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def _shapes(folder, size=12, per_class=30):
    rng = np.random.default_rng(0)
    for label, name in enumerate(["circle", "square"]):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.zeros((size, size, 3), np.uint8)
            if label:
                image[3:9, 3:9] = rng.integers(60, 255, 3)
            else:
                yy, xx = np.mgrid[:size, :size]
                image[(yy - 6) ** 2 + (xx - 6) ** 2 < 16] = rng.integers(60, 255, 3)
            Image.fromarray(image).save(folder / name / f"{i:02d}.png")


def test_a_folder_of_colour_images_runs_through_every_metric(capsys, tmp_path):
    _shapes(tmp_path / "shapes")
    data = load_dataset(f"folder:{tmp_path / 'shapes'}@16")
    assert data.image_shape == (3, 16, 16) and data.num_classes == 2 and len(data.test_x) == 12
    code, out, err = run_cli(capsys, *smoke(tmp_path, "--dataset", f"folder:{tmp_path / 'shapes'}@16"))
    assert code == 0, err
    metrics = pd.read_csv(tmp_path / "out" / "smoke" / "metrics.csv")
    fid = metrics[metrics["metric"] == "fid"]
    assert len(fid) == 1 and fid["backbone"].iloc[0].startswith("classifier-folder-shapes-16px-")  # trained on colour
    assert {"knn5_acc", "linear_acc", "recon_sse", "fid_gmm"} <= set(metrics["metric"])


@pytest.mark.parametrize("argument, message", [
    ("npz:", "give a path after 'npz:'"),
    ("npz:{tmp}/missing.npz", "missing.npz not found"),
    ("folder:{tmp}/shapes@2", "the size after @ must be a whole number of pixels >= 4"),
    ("folder:{tmp}/shapes@big", "the size after @ must be a whole number of pixels >= 4"),
    ("csv:{tmp}/x", "unknown dataset 'csv:"),
    ("folder:{tmp}/bad.npz", "is not a folder"),
])
def test_a_bad_dataset_argument_is_one_line_and_exit_2(capsys, tmp_path, argument, message):
    _shapes(tmp_path / "shapes")
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    code, _, err = run_cli(capsys, *smoke(tmp_path, "--dataset", argument.format(tmp=tmp_path)))
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_plugin_dataset_runs_like_a_built_in(capsys, tmp_path):
    code, out, err = run_cli(capsys, *smoke(tmp_path, "--dataset", "toydigits"))
    assert code == 0, err
    runs = pd.read_csv(tmp_path / "out" / "smoke" / "runs.csv")
    assert runs["dataset"].tolist() == ["toydigits"] and runs["run_id"].iloc[0].startswith("vae_toydigits_s0_")
    data = load_dataset("toydigits")
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (420, 60, 120)
    code, out, _ = run_cli(capsys, "list")
    assert "toydigits (aebench_toy.data:TOY_DIGITS, from aebench-toy-plugin)" in out


def test_a_broken_plugin_dataset_is_one_line(monkeypatch, capsys, tmp_path):
    from aebench.plumbing import entry_points
    from aebench.plumbing.entry_points import Declared

    declared = [Declared("brokendata", "aebench_toy.data:broken_dataset", "toy"),
                Declared("digits", "aebench_toy.data:TOY_DIGITS", "shadowing-package")]
    monkeypatch.setattr(entry_points, "entries", lambda group: declared if group == "aebench.datasets" else [])
    entry_points.declared.cache_clear()
    try:
        code, _, err = run_cli(capsys, *smoke(tmp_path, "--dataset", "brokendata"))
        assert code == 2 and "dataset 'brokendata': aebench_toy.data:broken_dataset is not an " \
            "aebench.data.splits.DatasetSpec" in err and not (tmp_path / "out").exists()
        assert "warning: plug-in dataset 'digits'" in err and "is a built-in dataset" in err  # never shadowed
        assert load_dataset("digits").name == "digits" and len(load_dataset("digits").test_x) == 360
    finally:
        entry_points.declared.cache_clear()
