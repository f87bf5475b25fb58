import gzip

import numpy as np
import pytest

from aebench.data.idx import read_idx, write_idx
from aebench.errors import UserError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_images(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, images)
    back = read_idx(tmp_path / name)
    assert back.shape == (5, 28, 28) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, images)


def test_reads_a_hand_written_label_file(tmp_path):
    # magic 0x00000801 (uint8, 1 dim), count 3, then the labels
    (tmp_path / "labels").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9]))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [7, 2, 9])


def test_truncated_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(UserError, match="corrupt"):
        read_idx(tmp_path / "bad")


def test_bad_magic_and_bad_gzip_are_clear_errors(tmp_path):
    (tmp_path / "text").write_text("hello world")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "text")
    (tmp_path / "fake.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot read"):
        read_idx(tmp_path / "fake.gz")
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "short.gz")
