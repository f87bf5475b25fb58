import os

import numpy as np
import pytest
import torch

from aebench.data.builtin import DEBIAN_FASHION_DIR, IDX_FILES
from aebench.data.datasets import availability, load_dataset
from aebench.data.idx import write_idx
from aebench.errors import UserError


def test_digits_splits_shapes_and_range(digits):
    assert digits.image_shape == (1, 8, 8)
    assert (len(digits.train_x), len(digits.val_x), len(digits.test_x)) == (1257, 180, 360)
    for x in (digits.train_x, digits.val_x, digits.test_x):
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert digits.num_classes == 10 and digits.train_y.dtype == torch.int64


def test_splits_are_fixed_and_disjoint(digits):
    again = load_dataset("digits")
    assert torch.equal(again.test_x, digits.test_x) and torch.equal(again.train_y, digits.train_y)
    # together the three parts are exactly the 1797 images, each used once
    from sklearn.datasets import load_digits

    everything = torch.cat([digits.train_x, digits.val_x, digits.test_x]).flatten(1)
    original = torch.as_tensor(load_digits().images / 16.0, dtype=torch.float32).flatten(1)
    assert sorted(map(tuple, everything.tolist())) == sorted(map(tuple, original.tolist()))


def test_mnist_5k_is_real_mnist():
    data = load_dataset("mnist-5k")
    assert data.image_shape == (1, 28, 28)
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (3500, 500, 1000)
    # the file is sorted by class; the seeded split must mix the classes into every part
    assert set(data.test_y.tolist()) == set(range(10))
    assert 0.05 < data.train_x.mean() < 0.25  # MNIST is mostly black background


def write_fake_mnist(folder, n_train=30, n_test=10, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        write_idx(folder / (IDX_FILES[key] + suffix), array)
    return arrays


@pytest.mark.parametrize("sub", ["", "mnist", "MNIST/raw"])
def test_mnist_loader_reads_idx_files_from_the_data_root(tmp_path, monkeypatch, sub):
    import aebench.data.builtin as data_module

    monkeypatch.setitem(data_module.BUILTIN_DATASETS, "mnist", data_module.BUILTIN_DATASETS["mnist"].__class__(
        **{**data_module.BUILTIN_DATASETS["mnist"].__dict__, "n_val": 5}))
    arrays = write_fake_mnist(tmp_path / sub if sub else tmp_path, gz=(sub != "mnist"))
    data = load_dataset("mnist", data_root=tmp_path)
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (25, 5, 10)
    np.testing.assert_allclose(data.train_x[0, 0].numpy(), arrays["train_images"][0] / 255.0, atol=1e-6)
    # validation is the END of the training file, as in the paper
    np.testing.assert_allclose(data.val_x[-1, 0].numpy(), arrays["train_images"][-1] / 255.0, atol=1e-6)
    assert data.test_y.tolist() == arrays["test_labels"].tolist()


def test_environment_variable_sets_the_data_root(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "env-root")
    assert availability("mnist") is not None
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "env-root"))
    assert availability("mnist") is None


def test_missing_mnist_says_where_it_looked(tmp_path):
    with pytest.raises(UserError) as info:
        load_dataset("mnist", data_root=tmp_path / "empty")
    message = str(info.value)
    assert "MNIST not found" in message and str(tmp_path / "empty") in message and "\n" not in message


def test_corrupt_mnist_file_is_a_clear_error(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / (IDX_FILES["train_images"] + ".gz")).write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read IDX file"):
        load_dataset("mnist", data_root=tmp_path)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(UserError, match="unknown dataset 'mnsit'; choices: digits, fashion-mnist, mnist, mnist-5k"):
        load_dataset("mnsit")


def test_binarisation_fixed_for_eval_dynamic_for_training(digits):
    a, b = load_dataset("digits", binarize=True), load_dataset("digits", binarize=True)
    assert set(a.test_x.unique().tolist()) <= {0.0, 1.0} and torch.equal(a.test_x, b.test_x)
    index = torch.arange(64)
    first = a.train_batch(index, torch.Generator().manual_seed(1))
    second = a.train_batch(index, torch.Generator().manual_seed(2))
    assert set(first.unique().tolist()) <= {0.0, 1.0} and not torch.equal(first, second)
    # a pixel's chance of being 1 is its grey value
    draws = torch.stack([a.train_batch(index) for _ in range(200)]).mean(0)
    assert (draws - a.train_x[index]).abs().max() < 0.15
    assert torch.equal(digits.train_batch(index), digits.train_x[index])  # off: untouched


def test_real_fashion_mnist_from_debian():
    if not DEBIAN_FASHION_DIR.is_dir():
        message = "Debian's dataset-fashion-mnist is not installed (apt-get install -y dataset-fashion-mnist)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: never let this check vanish there
        pytest.skip(message)
    data = load_dataset("fashion-mnist")
    assert len(data.train_x) + len(data.val_x) == 60000 and len(data.test_x) == 10000
    assert data.image_shape == (1, 28, 28)
    counts = torch.bincount(torch.cat([data.train_y, data.val_y]), minlength=10)
    assert counts.tolist() == [6000] * 10
    assert torch.bincount(data.test_y, minlength=10).tolist() == [1000] * 10
