"""The readers of a user's own images (aebench.data.user_images): npz files and image folders, on tiny
inputs whose right answer is known."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from aebench.data import user_images
from aebench.data.user_images import content_digest, read_folder, read_npz
from aebench.errors import UserError

SPLIT = np.array([0, 0, 1, 2])  # train, train, val, test: the smallest valid split of four images


def grey(n=4, h=5, w=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


# ---------------------------------------------------------------- npz: what is read


def test_npz_grey_uint8_gets_a_channel_and_keeps_values(tmp_path):
    x = grey()
    got = read_npz(npz(tmp_path, x=x))
    assert got.images.shape == (4, 1, 5, 6) and got.images.dtype == np.uint8
    np.testing.assert_array_equal(got.images[:, 0], x)
    assert got.labels is None and got.split is None and got.class_names is None
    assert str(tmp_path / "d.npz") in got.source


def test_npz_float_rgb_kept_as_float32(tmp_path):
    x = np.random.default_rng(1).random((3, 3, 4, 5))
    got = read_npz(npz(tmp_path, x=x))
    assert got.images.shape == (3, 3, 4, 5) and got.images.dtype == np.float32
    np.testing.assert_allclose(got.images, x, rtol=1e-6)


def test_npz_float16_and_exact_bounds_accepted(tmp_path):
    x = np.zeros((2, 1, 4, 4), np.float16)
    x[1] = 1.0
    got = read_npz(npz(tmp_path, x=x))
    assert got.images.dtype == np.float32 and got.images.min() == 0 and got.images.max() == 1


def test_npz_labels_kept_as_int64(tmp_path):
    y = np.array([3, 0, 7, 3], dtype=np.uint8)
    got = read_npz(npz(tmp_path, x=grey(), y=y))
    assert got.labels.dtype == np.int64 and got.labels.tolist() == [3, 0, 7, 3]


@pytest.mark.parametrize("split", [SPLIT, np.array(["train", "train", "val", "test"]),
                                   np.array([b"train", b"train", b"val", b"test"])])
def test_npz_split_ints_and_strings_become_strings(tmp_path, split):
    got = read_npz(npz(tmp_path, x=grey(), split=split))
    assert got.split.tolist() == ["train", "train", "val", "test"]
    assert got.split.dtype.kind == "U"


# ---------------------------------------------------------------- npz: what is refused


def refused(path, match):
    with pytest.raises(UserError, match=match) as info:
        read_npz(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_npz_missing_file(tmp_path):
    refused(tmp_path / "nope.npz", "not found")


def test_npz_folder_is_not_a_file(tmp_path):
    refused(tmp_path, "is not a file")


def test_npz_random_bytes(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    msg = refused(path, r"x.npz is not an .npz file \(not a zip archive\)")
    assert "pickle" not in msg  # numpy's advice to trust the file and unpickle it must not reach the user


def test_npz_truncated_zip(tmp_path):
    path = npz(tmp_path, x=grey(n=50, h=20, w=20))
    path.write_bytes(path.read_bytes()[:200])
    refused(path, r"is a damaged .npz file \(BadZipFile")


def test_npz_damaged_member(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=grey(n=50, h=20, w=20))
    data = bytearray(path.read_bytes())
    data[300:340] = bytes(40)  # inside the compressed pixels: the zip directory is intact
    path.write_bytes(bytes(data))
    refused(path, "cannot read array x from .*d.npz .*damaged")


def test_npz_npy_file(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as f:
        np.save(f, grey())
    refused(path, r"\.npy file")


def test_npz_missing_x(tmp_path):
    refused(npz(tmp_path, y=np.arange(4)), "no array x")


def test_npz_unknown_arrays_named_with_the_known_ones(tmp_path):
    msg = refused(npz(tmp_path, x=grey(), labels=np.arange(4), extra=np.arange(2)), "unknown arrays")
    assert "extra, labels" in msg and "x, y, split" in msg


def test_npz_object_array(tmp_path):
    refused(npz(tmp_path, x=grey(), split=np.array(["train", None], dtype=object)), "cannot read array split")


@pytest.mark.parametrize("shape", [(4, 6), (4, 5, 6, 3), (4, 2, 5, 6), (2, 1, 1, 5, 6)])
def test_npz_bad_shapes(tmp_path, shape):
    msg = refused(npz(tmp_path, x=np.zeros(shape, np.uint8)), "x has shape")
    assert "N x H x W or N x C x H x W" in msg and "channels-last" in msg


def test_npz_no_images(tmp_path):
    refused(npz(tmp_path, x=np.zeros((0, 8, 8), np.uint8)), r"no images \(N = 0\)")


def test_npz_images_too_small(tmp_path):
    refused(npz(tmp_path, x=np.zeros((4, 3, 8), np.uint8)), "at least 4 x 4")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.uint16])
def test_npz_other_dtypes(tmp_path, dtype):
    refused(npz(tmp_path, x=np.zeros((2, 4, 4), dtype)), "expected uint8 .* or float")


@pytest.mark.parametrize("value,match", [(1.5, r"in \[0, 1\].*spans \[0, 1.5\]"), (-0.25, r"spans \[-0.25, 0\]"),
                                         (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite")])
def test_npz_float_outside_unit_range(tmp_path, value, match):
    x = np.zeros((2, 4, 4), np.float32)
    x[1, 2, 3] = value
    refused(npz(tmp_path, x=x), match)


@pytest.mark.parametrize("name,value,match", [
    ("y", np.arange(3), "y has 3 labels but x has 4 images"),
    ("y", np.arange(4.0), "integer array"),
    ("y", np.arange(4).reshape(4, 1), "1-D integer"),
    ("y", np.array([0, 1, -1, 2]), "negative labels"),
    ("split", SPLIT[:3], "split has 3 entries but x has 4 images"),
    ("split", np.array([0, 1, 2, 3]), "unknown values 3; values: test, train, val"),
    ("split", np.array(["train", "val", "test", "Train"]), "unknown values 'Train'"),
    ("split", np.array([0.0, 1.0, 2.0, 0.0]), "split has dtype float64"),
])
def test_npz_bad_labels_and_splits(tmp_path, name, value, match):
    refused(npz(tmp_path, x=grey(), **{name: value}), match)


@pytest.mark.parametrize("split,missing", [([0, 0, 2, 2], "val"), ([1, 1, 2, 2], "train"),
                                           (["train", "val"] * 2, "test")])
def test_npz_each_split_part_must_be_non_empty(tmp_path, split, missing):
    refused(npz(tmp_path, x=grey(), split=np.array(split)), f"no '{missing}' images")


# ---------------------------------------------------------------- folders


def test_folder_classes_in_sorted_order_with_exact_pixels(tmp_path):
    a, b = grey(2, seed=1), grey(3, seed=2)
    for i, img in enumerate(b):
        png(tmp_path / "zebra" / f"{i}.png", img)
    for i, img in enumerate(a):
        png(tmp_path / "apple" / f"{i}.png", img)
    got = read_folder(tmp_path)
    assert got.class_names == ("apple", "zebra") and got.split is None
    assert got.labels.dtype == np.int64 and got.labels.tolist() == [0, 0, 1, 1, 1]
    assert got.images.shape == (5, 1, 5, 6) and got.images.dtype == np.uint8
    np.testing.assert_array_equal(got.images[:, 0], np.concatenate([a, b]))
    assert "5 images, 2 classes" in got.source


def test_folder_files_in_sorted_name_order(tmp_path):
    x = grey(3)
    for name, img in zip(["b.png", "c.PNG", "a.bmp"], x):  # upper-case extension counts too
        png(tmp_path / "only" / name, img)
    np.testing.assert_array_equal(read_folder(tmp_path).images[:, 0], x[[2, 0, 1]])


def test_folder_rgb_gives_three_channels_and_greys_follow(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    png(tmp_path / "a" / "colour.png", rgb)
    png(tmp_path / "b" / "grey.png", grey(1)[0])
    rgba = np.dstack([rgb, np.full((5, 6), 7, np.uint8)])
    png(tmp_path / "c" / "alpha.png", rgba)
    got = read_folder(tmp_path)
    assert got.images.shape == (3, 3, 5, 6)
    np.testing.assert_array_equal(got.images[0], rgb.transpose(2, 0, 1))
    np.testing.assert_array_equal(got.images[1], np.stack([grey(1)[0]] * 3))  # grey repeated, not rescaled
    np.testing.assert_array_equal(got.images[2], rgb.transpose(2, 0, 1))  # alpha dropped


def test_folder_mixed_sizes_refused_without_size(tmp_path):
    png(tmp_path / "a" / "small.png", grey(1, 5, 6)[0])
    png(tmp_path / "a" / "tall.png", grey(1, 9, 6)[0])
    with pytest.raises(UserError, match=r"small.png is 6 x 5, a/tall.png is 6 x 9 .*give a size"):
        read_folder(tmp_path)


def test_folder_resized_to_the_size_asked(tmp_path):
    png(tmp_path / "a" / "small.png", grey(1, 5, 6)[0])
    png(tmp_path / "a" / "tall.png", grey(1, 9, 6)[0])
    flat = np.full((10, 12), 200, np.uint8)
    png(tmp_path / "b" / "flat.png", flat)
    got = read_folder(tmp_path, size=8)
    assert got.images.shape == (3, 1, 8, 8)
    assert (got.images[2] == 200).all()  # bilinear resizing keeps a constant image constant


def test_folder_size_must_be_sensible(tmp_path):
    png(tmp_path / "a.png", grey(1)[0])
    for size in (3, 0, 8.0, True):
        with pytest.raises(UserError, match="image size must be an integer >= 4"):
            read_folder(tmp_path, size=size)


def test_folder_too_small_images(tmp_path):
    png(tmp_path / "a.png", np.zeros((3, 8), np.uint8))
    with pytest.raises(UserError, match="are 8 x 3; at least 4 x 4"):
        read_folder(tmp_path)


def test_flat_folder_is_unlabelled(tmp_path):
    x = grey(2)
    png(tmp_path / "one.png", x[0])
    png(tmp_path / "two.jpg", np.full((5, 6), 128, np.uint8))
    got = read_folder(tmp_path)
    assert got.labels is None and got.class_names is None and got.split is None
    assert got.images.shape == (2, 1, 5, 6) and "unlabelled" in got.source
    np.testing.assert_array_equal(got.images[0, 0], x[0])
    assert abs(got.images[1].astype(int) - 128).max() <= 2  # JPEG is lossy, but barely on a flat image


def test_folder_ignores_other_and_hidden_files(tmp_path):
    x = grey(1)[0]
    png(tmp_path / "cats" / "a.png", x)
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / "labels.csv").write_text("a,0")
    png(tmp_path / "cats" / ".hidden.png", grey(1, 7, 7)[0])  # another size: would fail if read
    png(tmp_path / ".cache" / "b.png", x)  # a hidden folder is no class
    (tmp_path / "README").write_text("top-level files are fine")
    got = read_folder(tmp_path)
    assert got.class_names == ("cats",) and len(got.images) == 1


@pytest.mark.parametrize("setup,match", [
    (lambda root: None, "holds no images .* and no class subfolders"),
    (lambda root: (root / "a.txt").write_text("x"), "holds no images"),
    (lambda root: (png(root / "a" / "x.png", grey(1)[0]), (root / "b").mkdir()),
     r"class subfolder .*b holds no images"),
    (lambda root: (png(root / "a" / "x.png", grey(1)[0]), png(root / "y.png", grey(1)[0])),
     r"both class subfolders and images \(y.png\)"),
])
def test_folder_layout_errors(tmp_path, setup, match):
    setup(tmp_path)
    with pytest.raises(UserError, match=match):
        read_folder(tmp_path)


def test_folder_missing_or_a_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_folder(tmp_path / "nope")
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(UserError, match="is not a folder"):
        read_folder(tmp_path / "f.png")


def test_folder_corrupt_image_named(tmp_path):
    png(tmp_path / "a" / "good.png", grey(1)[0])
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(UserError, match=r"cannot read image .*a/broken.png") as info:
        read_folder(tmp_path)
    assert "\n" not in str(info.value)


def test_folder_truncated_image_named(tmp_path):
    path = png(tmp_path / "a" / "cut.png", grey(1, 40, 40)[0])
    path.write_bytes(path.read_bytes()[:100])  # the header survives, the pixels do not
    with pytest.raises(UserError, match=r"cannot read image .*cut.png"):
        read_folder(tmp_path)


def test_folder_sixteen_bit_refused(tmp_path):
    png(tmp_path / "deep.png", np.full((5, 6), 1000, np.uint16))
    with pytest.raises(UserError, match="deep.png has mode I;16.*convert it to 8-bit"):
        read_folder(tmp_path)


# ---------------------------------------------------------------- content digest


def test_digest_of_a_folder_follows_content_not_place(tmp_path):
    src = tmp_path / "one" / "data"
    png(src / "a" / "x.png", grey(1, seed=4)[0])
    png(src / "b" / "y.png", grey(1, seed=5)[0])
    copy = shutil.copytree(src, tmp_path / "elsewhere" / "copy")
    (copy / "b" / "notes.txt").write_text("not part of the data")
    digest = content_digest(src)
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert content_digest(copy) == digest
    changed = grey(1, seed=5)[0]
    changed[0, 0] ^= 1  # one pixel, one bit
    png(copy / "b" / "y.png", changed)
    assert content_digest(copy) != digest
    png(copy / "b" / "y.png", grey(1, seed=5)[0])
    assert content_digest(copy) == digest
    (copy / "b").rename(copy / "c")  # same bytes, another class name: other data
    assert content_digest(copy) != digest


@pytest.fixture
def digest_reads(monkeypatch, tmp_path):
    """The files content_digest reads, in a cache of this test's own that trusts files however recently they
    were written (RECENT_SECONDS 0)."""
    reads = []
    hash_file = user_images._hash_file

    def counted(digest, path):
        reads.append(path.name)
        hash_file(digest, path)

    monkeypatch.setattr(user_images, "_hash_file", counted)
    monkeypatch.setattr(user_images, "RECENT_SECONDS", 0)
    monkeypatch.setenv("AEBENCH_CACHE", str(tmp_path / "cache"))
    return reads


def two_images(folder):
    png(folder / "a" / "x.png", grey(1, seed=4)[0])
    return png(folder / "b" / "y.png", grey(1, seed=5)[0])


def set_mtime(path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_digest_is_read_once_and_cached_outside_the_data_folder(tmp_path, digest_reads):
    src = tmp_path / "data"
    two_images(src)
    files = sorted(src.rglob("*"))
    digest = content_digest(src)
    assert digest_reads == ["x.png", "y.png"]
    assert content_digest(src) == digest and digest_reads == ["x.png", "y.png"]  # the second from the cache
    assert sorted(src.rglob("*")) == files  # nothing written into the user's folder
    assert [p.read_text() for p in (tmp_path / "cache" / "digests").iterdir()] == [digest]
    (entry,) = (tmp_path / "cache" / "digests").iterdir()
    entry.write_text("not a digest")  # a damaged entry is read past
    assert content_digest(src) == digest and len(digest_reads) == 4


def uncached_digest(folder, tmp_path) -> str:
    """The digest of the folder's bytes as they are now, from a copy (a path the cache has never seen)."""
    copy = tmp_path / f"copy-{len(list(tmp_path.glob('copy-*')))}"
    return content_digest(shutil.copytree(folder, copy))


def test_a_changed_file_changes_the_cached_digest(tmp_path, digest_reads):
    src = tmp_path / "data"
    y = two_images(src)
    first, original = y.stat(), y.read_bytes()
    digest = content_digest(src)
    y.write_bytes(original + b"\0")  # another size
    assert content_digest(src) == uncached_digest(src, tmp_path) != digest
    y.write_bytes(original)  # the first bytes again: the first digest, which names bytes, not timestamps
    assert content_digest(src) == digest
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 1
    y.write_bytes(bytes(flipped))
    set_mtime(y, first.st_mtime_ns + 10**9)  # the same size, another mtime (whatever the clock's resolution)
    assert content_digest(src) == uncached_digest(src, tmp_path) != digest
    time.sleep(0.1)  # past a coarse timestamp tick
    y.write_bytes(bytes(flipped))
    set_mtime(y, first.st_mtime_ns)  # the cached size and mtime (as `cp -p` or tar leave them): ctime tells
    assert (y.stat().st_size, y.stat().st_mtime_ns) == (first.st_size, first.st_mtime_ns)
    assert content_digest(src) == uncached_digest(src, tmp_path) != digest


def test_a_touched_file_keeps_its_digest_and_a_fresh_one_is_not_cached(tmp_path, digest_reads, monkeypatch):
    src = tmp_path / "data"
    y = two_images(src)
    digest = content_digest(src)
    set_mtime(y, y.stat().st_mtime_ns + 10**9)
    assert content_digest(src) == digest and digest_reads == ["x.png", "y.png"] * 2  # read again, same bytes
    monkeypatch.setattr(user_images, "RECENT_SECONDS", 3600)  # every file is then recent
    png(src / "c" / "z.png", grey(1, seed=6)[0])
    entries = set((tmp_path / "cache" / "digests").iterdir())
    grown = content_digest(src)
    assert grown != digest and content_digest(src) == grown and len(digest_reads) == 4 + 3 + 3  # read each time
    assert set((tmp_path / "cache" / "digests").iterdir()) == entries  # a timestamp that may still tick is no key


def test_a_file_s_cached_digest_is_its_sha256(tmp_path, digest_reads):
    import hashlib

    path = npz(tmp_path, x=grey())
    expected = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert content_digest(path) == content_digest(path) == expected and digest_reads == ["d.npz"]


def test_digest_of_a_file_is_its_sha256(tmp_path):
    import hashlib

    x = grey()
    path = npz(tmp_path, x=x)
    copy = shutil.copy(path, tmp_path / "renamed.npz")
    assert content_digest(path) == content_digest(copy) == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    x[0, 0, 0] ^= 1
    assert content_digest(npz(tmp_path, "other.npz", x=x)) != content_digest(path)


def test_digest_missing_path(tmp_path):
    with pytest.raises(UserError, match="not found"):
        content_digest(tmp_path / "nope")
