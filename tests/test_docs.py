"""The documentation is executable: every ```python block of docs/*.md and README.md runs.

Blocks of one file run in order in one namespace, with the repository root as the working
directory, so a tutorial's later blocks can use what earlier ones built.
"""
from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path

import matplotlib
import pytest

from conftest import REPO

matplotlib.use("Agg")

DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
#: Docs whose ```console sessions are short enough to replay in the suite.
CONSOLE_DOCS = ["simulating.md", "comparing.md"]


def _blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def _sessions(path: Path) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of every ``$ lava-gle`` line of ```console blocks."""
    out = []
    for block in CONSOLE.findall(path.read_text(encoding="utf-8")):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ lava-gle "):
                expected = []
                for follow in lines[i + 1:]:
                    if follow.startswith("$ "):
                        break
                    expected.append(follow)
                out.append((line[2:], expected))
    return out


def _params():
    for path in DOCS:
        blocks = _blocks(path)
        if not blocks:
            continue
        marks = [pytest.mark.lava] if "lava_gle.runtime" in "".join(blocks) else []
        yield pytest.param(path, id=path.name, marks=marks)


@pytest.mark.parametrize("path", list(_params()))
def test_python_blocks_run(path, monkeypatch):
    monkeypatch.chdir(REPO)
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for i, block in enumerate(_blocks(path)):
        code = compile(block, f"{path.name} block {i + 1}", "exec")
        exec(code, namespace)  # noqa: S102 - running our own documentation


@pytest.mark.parametrize("module", ["numerics.engine", "quantize", "calibration", "memory",
                                    "mappings.mapper", "runtime.simulator"])
def test_docstring_examples(module, monkeypatch):
    import importlib
    monkeypatch.chdir(REPO)
    result = doctest.testmod(importlib.import_module(f"lava_gle.{module}"), verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("doc", CONSOLE_DOCS)
def test_console_sessions_replay(doc, monkeypatch, capsys):
    """Each documented `lava-gle` command runs, prints what the doc shows and exits 0
    (or 2 when the doc shows an error)."""
    from lava_gle.cli import main
    monkeypatch.chdir(REPO)
    sessions = _sessions(REPO / "docs" / doc)
    assert sessions
    for command, expected in sessions:
        code = main(shlex.split(command)[1:])
        captured = capsys.readouterr()
        shown = (captured.out + captured.err).splitlines()
        wants_error = any(line.startswith("error:") for line in expected)
        assert code == (2 if wants_error else 0), (command, shown)
        for line in expected:
            assert line in shown, (command, line, shown)


def _documented_commands() -> list[tuple[str, str]]:
    """(doc, command) of every ``lava-gle`` command in a ```console block of the docs and
    README, shell variables set in the block (``$ name="..."``) expanded, comments and a
    trailing ``&`` dropped; ``$ wait; lava-gle ...`` counts too."""
    out = []
    for path in DOCS:
        for block in CONSOLE.findall(path.read_text(encoding="utf-8")):
            env: dict[str, str] = {}
            for line in block.replace("\\\n", " ").splitlines():
                if not line.startswith("$ "):
                    continue
                for part in line[2:].split(";"):
                    words = shlex.split(part, comments=True)
                    if len(words) == 1 and re.fullmatch(r"\w+=.*", words[0]):
                        name, value = words[0].split("=", 1)
                        env[name] = value
                    elif words and words[0] == "lava-gle":
                        words = [w for w in words if w != "&"]
                        expanded = [x for w in words
                                    for x in (shlex.split(env[w[1:]]) if w[1:] in env
                                              and w.startswith("$") else [w])]
                        out.append((path.name, shlex.join(expanded)))
    return out


def test_every_documented_command_parses(capsys):
    """Each ``lava-gle`` command the docs show (many run for hours, so are not replayed)
    names only options and values the CLI accepts."""
    from lava_gle.cli import build_parser
    commands = _documented_commands()
    assert len(commands) > 50
    bad = []
    for doc, command in commands:
        try:
            build_parser().parse_args(shlex.split(command)[1:])
        except SystemExit:
            bad.append((doc, command, capsys.readouterr().err.strip().splitlines()[-1]))
    assert not bad, bad
