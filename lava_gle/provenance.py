"""Which lava-gle wrote a result: its version and, in a git clone, its commit.

``metrics.json`` and checkpoints record :func:`code_version`, so that a number can be
traced to the code that made it, and a checkpoint this lava-gle refuses names the one
that can resume it.
"""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

#: The directory that holds the ``lava_gle`` package (a clone's root, when it is one).
ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """``{"version": __version__, "commit": 40 hex digits or None, "modified": bool or
    None}``: the commit is the clone's ``HEAD`` where the package runs from a git clone
    (not an installed copy) and git is there; ``modified`` says whether files under
    ``lava_gle/`` differ from it or are new (then the commit alone does not give the code
    back)."""
    from lava_gle import __version__
    commit = _git("rev-parse", "HEAD") if (ROOT / ".git").exists() else None
    modified = None if commit is None else bool(
        _git("status", "--porcelain", "--", "lava_gle"))
    return {"version": __version__, "commit": commit, "modified": modified}


def describe(record: dict[str, Any] | str | None) -> str:
    """``lava-gle 0.1.0 (commit 0123456789ab, modified)`` for a :func:`code_version`
    record; ``an earlier lava-gle`` for None (a file written before records were kept);
    ``lava-gle 0.1.0`` for a version string (bundles before session 49 recorded that)."""
    if not record:
        return "an earlier lava-gle"
    if isinstance(record, str):
        return f"lava-gle {record}"
    commit = record.get("commit")
    where = "" if commit is None else (
        f" (commit {commit[:12]}{', modified' if record.get('modified') else ''})")
    return f"lava-gle {record.get('version')}{where}"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
