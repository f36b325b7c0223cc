"""Check and normalise input and target streams for any backend."""
from __future__ import annotations

import numpy as np

from lava_gle.errors import ShapeError
from lava_gle.network import Network


def prepare_streams(net: Network, inputs, targets=None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(x [T, B, in] float64, y or None)`` after checking them against ``net``.

    ``inputs``: [T, in] (batch 1) or [T, batch, in]. ``targets`` for ``mse``:
    [T, out] or [T, batch, out] floats; for ``ce``: [T] or [T, batch] class indices
    in ``0..out-1``. Raises :class:`ShapeError` naming the array, its shape and the
    shape the network needs.
    """
    x = np.asarray(inputs)
    n_in = net.input.size
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[2] != n_in:
        raise ShapeError(f"inputs have shape {list(np.shape(inputs))}; network "
                         f"{net.name!r} needs [T, {n_in}] or [T, batch, {n_in}] "
                         f"(input.size = {n_in})")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"inputs have shape {list(x.shape)}: T and batch must be >= 1")
    _check_real(x, "inputs")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        t, b, i = (int(k) for k in np.argwhere(~np.isfinite(x))[0])
        raise ShapeError(f"inputs hold a non-finite value at step {t}, batch {b}, channel {i}")
    if targets is None:
        return x, None
    T, B = x.shape[:2]
    y = np.asarray(targets)
    n_out = net.output_size
    if net.learning.loss == "ce":
        if y.ndim == 1:
            y = y[:, None]
        if y.shape != (T, B):
            shapes = f"[{T}] or [{T}, 1]" if B == 1 else f"[{T}, {B}]"
            raise ShapeError(f"targets have shape {list(np.shape(targets))}; loss 'ce' needs "
                             f"class indices of shape {shapes} to match inputs "
                             f"[{T}, {B}, {x.shape[2]}]")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.issubdtype(y.dtype, np.floating) or not np.all(np.mod(y, 1) == 0):
                raise ShapeError(f"targets for loss 'ce' must be integer class indices, "
                                 f"got dtype {y.dtype}")
        # range check before the cast: a float class of 1e20 would wrap to INT64_MIN
        if y.min() < 0 or y.max() >= n_out:
            raise ShapeError(f"targets hold class {y.min() if y.min() < 0 else y.max():g}, "
                             f"outside 0..{n_out - 1} (output size {n_out})")
        return x, y.astype(np.int64, copy=False)
    if y.ndim == 2:
        y = y[:, None, :]
    _check_real(y, "targets")
    if y.shape != (T, B, n_out):
        shapes = f"[{T}, {n_out}] or [{T}, 1, {n_out}]" if B == 1 else f"[{T}, {B}, {n_out}]"
        raise ShapeError(f"targets have shape {list(np.shape(targets))}; loss 'mse' needs "
                         f"{shapes} to match inputs [{T}, {B}, {n_in}] and the output size "
                         f"{n_out}")
    y = y.astype(np.float64, copy=False)
    if not np.all(np.isfinite(y)):
        t = int(np.argwhere(~np.isfinite(y))[0][0])
        raise ShapeError(f"targets hold a non-finite value at step {t}")
    return x, y


def _check_real(a: np.ndarray, what: str) -> None:
    """Refuse arrays that are not real numbers (bool, complex, strings, objects)."""
    if (not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating)
            or a.dtype == np.bool_):
        raise ShapeError(f"{what} must be real numbers (integer or float), got dtype {a.dtype}")
