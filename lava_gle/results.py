"""Helpers for writing results: JSON-ready values and the optional matplotlib.

Used by the comparison report, the experiments and the deployment bundle, so every
JSON file lava-gle writes treats NumPy values the same way.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


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
