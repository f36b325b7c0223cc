"""The one test of a count given from Python: a whole number >= 1."""
from __future__ import annotations

import numbers
from typing import Any


def is_count(value: Any) -> bool:
    """Whether ``value`` is a whole number >= 1: a Python or NumPy integer, not a bool and
    not a float (2.5 neurons, ``"2"`` chips and ``True`` steps are no counts)."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and value >= 1)
