"""The code version each run records: HEAD, marked dirty by changed code but not by changed results."""
import subprocess

import pytest

from aebench.plumbing import provenance


@pytest.fixture
def repository(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "runs.csv").write_text("run_id\n")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    monkeypatch.setattr(provenance, "PROJECT_ROOT", tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    return tmp_path, head


def test_a_clean_checkout_records_its_head(repository):
    _, head = repository
    assert provenance.git_commit.__wrapped__() == head


def test_results_written_into_the_checkout_do_not_mark_the_code_dirty(repository):
    root, head = repository
    (root / "results" / "runs.csv").write_text("run_id\nnew\n")
    assert provenance.git_commit.__wrapped__() == head


def test_changed_code_marks_the_version_dirty(repository):
    root, head = repository
    (root / "model.py").write_text("x = 2\n")
    assert provenance.git_commit.__wrapped__() == head + "-dirty"
