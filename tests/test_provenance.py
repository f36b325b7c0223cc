"""Which lava-gle wrote a result: metrics.json and checkpoints name its version and commit."""
import json
import shutil
import subprocess

import pytest

from lava_gle import __version__, provenance
from lava_gle.results import write_metrics

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def fresh(monkeypatch):
    """``code_version`` computed anew (it is cached), for a ``ROOT`` the test may set."""
    provenance.code_version.cache_clear()
    yield monkeypatch
    provenance.code_version.cache_clear()


def _git(root, *args):
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@needs_git
def test_a_clone_names_its_commit_and_whether_its_code_was_changed(fresh, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(provenance.ROOT), str(clone)], check=True)
    fresh.setattr(provenance, "ROOT", clone)
    assert provenance.code_version() == {"version": __version__,
                                         "commit": _git(clone, "rev-parse", "HEAD"),
                                         "modified": False}
    (clone / "README.md").write_text("outside the package: the code is the commit's\n")
    provenance.code_version.cache_clear()
    assert provenance.code_version()["modified"] is False
    (clone / "lava_gle" / "extra.py").write_text("X = 1\n")
    provenance.code_version.cache_clear()
    record = provenance.code_version()
    assert record["modified"] is True
    assert provenance.describe(record) == (f"lava-gle {__version__} "
                                           f"(commit {record['commit'][:12]}, modified)")


def test_an_installed_copy_names_its_version_only(fresh, tmp_path):
    fresh.setattr(provenance, "ROOT", tmp_path)
    assert provenance.code_version() == {"version": __version__, "commit": None,
                                         "modified": None}
    assert provenance.describe(provenance.code_version()) == f"lava-gle {__version__}"
    assert provenance.describe(None) == "an earlier lava-gle"


def test_metrics_name_the_lava_gle_that_wrote_them(tmp_path):
    path = write_metrics(tmp_path, {"test_accuracy": 0.5, "_series": [1]})
    assert json.loads(path.read_text()) == {"test_accuracy": 0.5,
                                            "lava_gle": provenance.code_version()}
