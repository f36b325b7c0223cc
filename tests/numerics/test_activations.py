"""phi and phi' as the golden format defines them, kinks included."""
from __future__ import annotations

import numpy as np
import pytest

from lava_gle.numerics.activations import ACTIVATIONS, phi, phi_prime
from lava_gle.network import PHI_NAMES


def test_every_format_activation_is_implemented():
    assert set(ACTIVATIONS) == set(PHI_NAMES)


@pytest.mark.parametrize("name", PHI_NAMES)
def test_derivative_matches_finite_differences_away_from_kinks(name):
    x = np.linspace(-6, 6, 1201)
    x = x[(np.abs(x) > 1e-3) & (np.abs(x - 1) > 1e-3)]
    h = 1e-6
    numeric = (phi(name)(x + h) - phi(name)(x - h)) / (2 * h)
    np.testing.assert_allclose(phi_prime(name)(x), numeric, atol=1e-6)


def test_values_at_the_kinks_follow_the_format():
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(phi_prime("relu")(x), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(phi_prime("hard_sigmoid")(x), [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(phi("hard_sigmoid")(x), [0, 0, 0.5, 1, 1])


def test_softplus_is_the_identity_above_20_and_finite_everywhere():
    x = np.array([-800.0, 0.0, 20.0, 20.5, 800.0])
    y = phi("softplus")(x)
    assert np.all(np.isfinite(y))
    assert y[3] == 20.5 and y[4] == 800.0
    assert y[1] == np.log(2.0)
    np.testing.assert_allclose(y[2], np.log1p(np.exp(20.0)), rtol=1e-15)


@pytest.mark.parametrize("name", PHI_NAMES)
def test_float32_stays_float32(name):
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    assert phi(name)(x).dtype == np.float32
    assert phi_prime(name)(x).dtype == np.float32
