"""Float tolerances from the scale of the values compared, not fixed absolute numbers.

Two float64 computations of the same formula that differ only in how BLAS orders a sum
(a batch of 3 against 3 runs of batch 1, ``gemm`` against ``ger``, an Intel against an AMD
kernel) differ by a few units in the last place (ulps) of the *scale* of the quantity,
not of each element: an element near zero carries the absolute rounding error of the larger
terms it was summed from. Along a run the difference is carried from step to step, so the
budget is given in ulps of the scale for the whole comparison, and each caller states why
its budget is what it is. A real defect (a mixed-up batch element, a missed term) is off
by a fraction of the scale, 1e10 ulps and more, so these budgets still catch it.
"""
from __future__ import annotations

import numpy as np

EPS = float(np.finfo(np.float64).eps)


def assert_close_at_scale(actual, desired, *, ulps: float, scale: float | None = None,
                          what: str = "") -> None:
    """Assert ``max|actual - desired| <= ulps * EPS * scale``.

    ``scale`` defaults to ``max|desired|`` (at least the smallest normal number, so an
    all-zero ``desired`` demands exact zeros up to denormals). Shapes must match.
    """
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != {desired.shape}"
    if scale is None:
        scale = float(np.max(np.abs(desired), initial=0.0))
    scale = max(scale, float(np.finfo(np.float64).tiny))
    err = float(np.max(np.abs(actual - desired), initial=0.0))
    assert err <= ulps * EPS * scale, (
        f"{what}: max |difference| {err:.3g} is {err / (EPS * scale):.3g} ulps of the scale "
        f"{scale:.3g}; the budget is {ulps} ulps")
