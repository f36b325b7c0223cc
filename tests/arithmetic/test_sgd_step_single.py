"""The in-place single-sample SGD step equals local_gradients + SGD up to rounding."""
from __future__ import annotations

import numpy as np
import pytest

from lava_gle.arithmetic import floating as F
from lava_gle.optim import SGD


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-15), (np.float32, 1e-6)])
@pytest.mark.parametrize("layout", ["c", "strided"])
@pytest.mark.parametrize("learn_bias", [True, False])
def test_matches_local_gradients_with_sgd(dtype, tol, layout, learn_bias):
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(5, 7)).astype(dtype)
    b0 = rng.normal(size=5).astype(dtype)
    e, p = rng.normal(size=5).astype(dtype), rng.normal(size=7).astype(dtype)
    g_w, g_b = F.local_gradients(e, p)
    expected = {"W": w0.copy(), "b": b0.copy()}
    grads = {"W": g_w, "b": g_b} if learn_bias else {"W": g_w}
    SGD(0.3).step(expected, grads)
    if layout == "c":
        w = w0.copy()
    else:  # a non-contiguous view must still be updated in place
        big = np.zeros((5, 14), dtype)
        big[:, ::2] = w0
        w = big[:, ::2]
    b = b0.copy()
    F.sgd_step_single(w, b, e, p, 0.3, learn_bias)
    np.testing.assert_allclose(w, expected["W"], rtol=0, atol=tol * np.abs(expected["W"]).max())
    np.testing.assert_allclose(b, expected["b"], rtol=0, atol=tol * np.abs(expected["b"]).max())
    assert not np.allclose(w, w0)
    assert np.array_equal(b, b0) != learn_bias
    if layout == "strided":
        assert np.all(big[:, 1::2] == 0)
