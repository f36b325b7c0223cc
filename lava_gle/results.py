"""Helpers for writing results: output paths checked before a run, atomic writes,
JSON-ready values and the optional matplotlib.

Every file lava-gle writes (traces, JSON, figures, HTML, checkpoints, bundles) goes through
:func:`atomic_write`: the data lands in a uniquely named temporary file in the target's
directory and replaces the target with ``os.replace`` only when complete, so an interrupted
or failed write leaves the previous file as it was, and two writers never share a temporary
file. The commands check their ``--out`` with :func:`prepare_out_dir` or
:func:`prepare_out_file` before they run anything, so a place that cannot be written fails
at once with one line instead of after the run.
"""
from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from lava_gle.errors import LavaGleError
from lava_gle.provenance import code_version


class OutputError(LavaGleError):
    """An output path cannot be written (or is not the kind of path the option needs)."""


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of ``value``: mappings and sequences recursively, ndarrays as
    lists, NumPy scalars as Python numbers, and non-finite floats as ``None`` (JSON has
    no NaN or infinity)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend, or None without matplotlib
    (it is the optional extra ``lava-gle[plot]``)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _temporary(path: Path) -> tuple[int, Path]:
    """A new, empty file next to ``path`` with a name no other writer uses: ``(fd, path)``.

    Created with O_EXCL and mode 0o666 (less the umask), like an ordinary new file.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_write(path: str | os.PathLike, text: bool = False) -> Iterator[IO]:
    """Open a file object whose content replaces ``path`` when the block ends normally.

    Binary unless ``text`` (then UTF-8). On any exception, Ctrl-C included, the temporary
    file is removed and ``path`` keeps its previous content. An OSError (disk full, no
    permission) becomes an :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    try:
        fd, tmp = _temporary(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror or exc}); choose a writable "
                          "place") from None
    try:
        with os.fdopen(fd, "w" if text else "wb",
                       **({"encoding": "utf-8"} if text else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({exc.strerror or exc}); check the free space "
                          "and the permissions there") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_write(path, text=True) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, value: Any, indent: int = 2,
               sort_keys: bool = False) -> Path:
    """Write ``jsonable(value)`` as JSON (non-finite floats as ``null``) atomically."""
    text = json.dumps(jsonable(value), indent=indent, sort_keys=sort_keys, allow_nan=False)
    return write_text(path, text + "\n")


def write_metrics(out_dir: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """``DIR/metrics.json``, atomically, keys sorted, without private keys (``_series``),
    with ``lava_gle``: the version and commit of the lava-gle that writes it
    (:func:`lava_gle.provenance.code_version`); NaN and infinity become ``null``. Returns
    its path."""
    public = {k: v for k, v in metrics.items() if not k.startswith("_")}
    public["lava_gle"] = code_version()
    return write_json(Path(out_dir) / "metrics.json", public, sort_keys=True)


def save_figure(fig, path: str | os.PathLike, dpi: int) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, e.g. ``.png``), close it,
    return the path."""
    path = Path(path)
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    finally:
        pyplot().close(fig)
    return path


def _writable_dir(out: Path) -> str | None:
    """Create the directory ``out`` if needed and make a file in it; ``None`` when that
    works, else why not."""
    if out.exists() and not out.is_dir():
        return f"{out} is not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{exc.strerror or exc}: {exc.filename or out}"
    try:
        fd, probe = _temporary(out / "write-test")
    except OSError as exc:
        return f"{exc.strerror or exc}: no new file can be made in {out}"
    os.close(fd)
    probe.unlink()
    return None


def prepare_out_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the output directory ``path`` if needed and check that files can be made in it.

    Raises :class:`OutputError` naming ``option`` when ``path`` is a file, cannot be created
    or is not writable.
    """
    out = Path(path)
    problem = _writable_dir(out)
    if problem is not None:
        raise OutputError(f"{option} {out}: cannot write into it ({problem}); give a writable "
                          "directory (it is created when missing)")
    return out


def output_path(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` with ``suffix`` (e.g. ``.npz``) appended unless it already ends with it."""
    path = Path(path)
    return path if path.name.endswith(suffix) else path.with_name(path.name + suffix)


def prepare_out_file(path: str | os.PathLike, suffix: str, option: str = "--out") -> Path:
    """The file an output option ``path`` names, checked before a run: :func:`output_path`
    (``suffix`` appended when missing); its directory is created and must be writable.

    Refuses a directory (``--out DIR`` would silently write ``DIR.npz``) and any path that
    exists but is not a regular file, e.g. ``/dev/null``: files are replaced atomically, which
    would replace the device itself rather than write into it.
    """
    given = Path(path)
    target = output_path(given, suffix)
    for p in dict.fromkeys((given, target)):
        if p.is_dir():
            raise OutputError(f"{option} {p} is a directory; give a file name such as "
                              f"{p / ('traces' + suffix)}")
        if p.exists() and not p.is_file():
            raise OutputError(f"{option} {p} is not a regular file (a device, pipe or socket); "
                              f"give a file name ending in {suffix}")
    problem = _writable_dir(target.parent)
    if problem is not None:
        raise OutputError(f"{option} {target}: cannot write there ({problem}); give a file in "
                          "a writable directory")
    return target
