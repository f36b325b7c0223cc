"""Argument types shared by the subcommands: numbers checked where they are parsed.

argparse turns an :class:`argparse.ArgumentTypeError` into one ``error: argument --X: ...``
line with exit status 2, so ``--chunks 0`` or ``--tolerance nan`` is refused before any
work starts, with the option's name and the range it takes.
"""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts: steps, chunks, epochs, chips, block sizes)."""
    return _integer(text, 1, ">= 1")


def natural_int(text: str) -> int:
    """A whole number >= 0 (seeds)."""
    return _integer(text, 0, ">= 0")


def out_path(text: str) -> str:
    """A path that is not empty (``--out "$DIR"`` with ``DIR`` unset would write into the
    working directory, or nowhere)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path (an unset shell variable?)")
    return text


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (tolerances, learning rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be a whole number {what}, got {text!r}")
    return value
