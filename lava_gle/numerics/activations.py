"""Activation functions phi and their derivatives phi' (float), by name.

Definitions follow the golden-case format exactly, including the values at the
kinks: relu' is 0 at 0, hard_sigmoid' is 1 on the closed interval [0, 1], and
softplus(x) is x itself for x > 20.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import expit

Array = np.ndarray


def _linear(x: Array) -> Array:
    return x


def _linear_d(x: Array) -> Array:
    return np.ones_like(x)


def _relu(x: Array) -> Array:
    return np.maximum(x, 0.0)


def _relu_d(x: Array) -> Array:
    return (x > 0).astype(x.dtype)


def _hard_sigmoid(x: Array) -> Array:
    return np.clip(x, 0.0, 1.0)


def _hard_sigmoid_d(x: Array) -> Array:
    return ((x >= 0) & (x <= 1)).astype(x.dtype)


def _sigmoid_d(x: Array) -> Array:
    s = expit(x)
    return s * (1.0 - s)


def _tanh_d(x: Array) -> Array:
    t = np.tanh(x)
    return 1.0 - t * t


def _softplus(x: Array) -> Array:
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


#: name -> (phi, phi')
ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "linear": (_linear, _linear_d),
    "relu": (_relu, _relu_d),
    "hard_sigmoid": (_hard_sigmoid, _hard_sigmoid_d),
    "sigmoid": (expit, _sigmoid_d),
    "tanh": (np.tanh, _tanh_d),
    "softplus": (_softplus, expit),
}


def phi(name: str) -> Callable[[Array], Array]:
    """The activation function ``name`` (elementwise, any shape)."""
    return ACTIVATIONS[name][0]


def phi_prime(name: str) -> Callable[[Array], Array]:
    """The derivative of activation ``name`` (elementwise, any shape)."""
    return ACTIVATIONS[name][1]
