"""Trace files: the golden key layout shared by every backend.

For every layer ``L``: ``u.L``, ``u_prosp.L``, ``r.L``, ``v.L``, ``e.L`` with shape
``[T, batch, size]`` (the value at the end of step t), ``W.L`` ``[size, size_below]``
and ``b.L`` ``[size]`` (after the last step), and ``output`` ``[T, batch, out]``
(the top layer's rate from the end of the previous step). With tau_m learning,
``tau_m.L`` ``[size]`` too.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Union

import numpy as np

from lava_gle.results import atomic_write, output_path

#: State variables recorded per layer and step, in the order of the golden format.
STATE_VARS = ("u", "u_prosp", "r", "v", "e")
#: The same in the order one step computes them (the error compartment first, whose e
#: feeds u), then ``eps``, the error sent down (engine-internal, in no trace file): the
#: order in which :func:`first_non_finite` looks for where a run diverged.
STEP_ORDER = ("v", "e", "u", "u_prosp", "r", "eps")
#: Per-layer parameters in the traces (the values after the last step).
PARAMETERS = ("W", "b", "tau_m")

Record = Union[bool, Iterable[str]]


def state_keys(layer_names: Iterable[str]) -> list[str]:
    """All per-step keys ``{var}.{layer}`` plus ``output``."""
    return [f"{v}.{n}" for n in layer_names for v in STATE_VARS] + ["output"]


def resolve_record(record: Record, layer_names: list[str]) -> set[str]:
    """The set of per-step keys selected by ``record``.

    ``True``: all keys; ``False``/empty: none; otherwise an iterable of variable
    names (``"r"``: that variable of every layer), full keys (``"r.out"``) or
    ``"output"``. Unknown names raise ValueError listing the valid ones.
    """
    every = state_keys(layer_names)
    if record is True:
        return set(every)
    if record is False or record is None:
        return set()
    if isinstance(record, str):
        record = [record]
    chosen: set[str] = set()
    for item in record:
        if item in STATE_VARS:
            chosen.update(f"{item}.{n}" for n in layer_names)
        elif item in every:
            chosen.add(item)
        else:
            raise ValueError(f"cannot record {item!r}: choose variable names {list(STATE_VARS)}, "
                             f"'output', or keys such as {every[0]!r}")
    return chosen


def save_traces(path: str | os.PathLike, traces: Mapping[str, np.ndarray]) -> Path:
    """Write traces as an uncompressed ``.npz`` (float64 arrays), atomically; return the
    path written: ``path``, with ``.npz`` appended when it does not end with it."""
    path = output_path(path, ".npz")
    with atomic_write(path) as fh:
        np.savez(fh, **{k: np.asarray(v, dtype=np.float64) for k, v in traces.items()})
    return path


def load_traces(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: np.asarray(data[k]) for k in data.files}


def max_relative_errors(expected: Mapping[str, np.ndarray],
                        candidate: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per key of ``expected``: max|cand - exp| / max|exp| over the whole key.

    A missing key, a shape mismatch or a non-finite candidate value gives ``inf``;
    a key whose expected values are all zero gives 0 if matched exactly, else ``inf``.
    This is the acceptance rule of the golden cases (``tests/data/golden/README.md``).
    """
    out = {}
    for key, exp in expected.items():
        exp = np.asarray(exp, dtype=np.float64)
        cand = candidate.get(key)
        if cand is None or np.shape(cand) != exp.shape:
            out[key] = np.inf
            continue
        cand = np.asarray(cand, dtype=np.float64)
        if exp.size == 0:
            out[key] = 0.0
            continue
        if not np.all(np.isfinite(cand)):
            out[key] = np.inf
            continue
        err = float(np.max(np.abs(cand - exp)))
        scale = float(np.max(np.abs(exp)))
        out[key] = err / scale if scale > 0 else (0.0 if err == 0 else np.inf)
    return out


def first_non_finite(traces: Mapping[str, np.ndarray], layer_names: Iterable[str]
                     ) -> tuple[str, str, int | None, float] | None:
    """Where ``traces`` (golden key layout) first hold NaN or inf, or None if nowhere.

    Returns ``(layer, variable, step, value)``: the earliest step of any per-step key
    ``{var}.{layer}`` [T, ...] (ties go to the lower layer, then to the variable earlier
    in :data:`STEP_ORDER`), and the first such value. Only when no per-step key holds
    one are the parameters (``W.L``, ``b.L``, ``tau_m.L``) searched; their ``step`` is
    None (they are the values after the last step).
    """
    names = list(layer_names)
    first: tuple[str, str, int | None, float] | None = None
    for name in names:
        for var in STEP_ORDER:
            arr = traces.get(f"{var}.{name}")
            if arr is None or np.isfinite(arr).all():
                continue
            bad = ~np.isfinite(arr.reshape(len(arr), -1))
            t = int(np.argmax(bad.any(axis=1)))
            if first is None or t < first[2]:
                first = (name, var, t, float(arr.reshape(len(arr), -1)[t][bad[t]][0]))
    if first is not None:
        return first
    for name in names:
        for var in PARAMETERS:
            arr = traces.get(f"{var}.{name}")
            if arr is not None and not np.isfinite(arr).all():
                return name, var, None, float(np.asarray(arr)[~np.isfinite(arr)][0])
    return None
