"""Floating-point GLE step functions: one explicit-Euler step of the model in
``docs/model.md``, split at the boundaries a Lava network has (neuron
compartments, synapses, the output error, the learning rule).

Shapes: ``n`` neurons in the layer, ``m`` in the layer below, any number of
leading batch axes ``...``. Time constants are in the unit of ``dt``.

One step of layer ``l`` (all inputs are values from the end of the previous step,
except ``p`` of the first layer, which is the current input)::

    d   = eps_{l+1}          or  output_error(r_L, y)        (error from above)
    s   = forward_drive(W, b, p)                            (W p + b)
    ... = neuron_step(state, s, d)                          (v, e, u, u_prosp, r, r')
    eps = backward_error(W, e)                              (W^T e, to the layer below)
    gW, gb = local_gradients(e, p)                          (e p^T, batch mean)

A layer with neuron-local normalisers (``docs/model.md``, "Neuron-local normalisers")
sends ``g r`` instead of ``r``, scales the error it receives by the same ``g`` and learns
from ``n e`` instead of ``e``; ``g`` and ``n`` are :func:`normaliser` values of running
mean squares kept by :func:`update_mean_square`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from lava_gle.numerics.activations import phi as _phi, phi_prime as _phi_prime

Array = np.ndarray


@dataclass(frozen=True, eq=False)
class NeuronConstants:
    """Per-layer constants of the neuron update, in the dtype of the simulation.

    Attributes
    ----------
    dt : float
        Euler step (time unit of the taus).
    tau_m, tau_r : ndarray [n]
        Membrane and prospective time constants.
    gamma : float
        Error feedback strength into the membrane.
    prospective : bool
        Prospective error compartments (True) or instantaneous errors (False).
    phi, phi_prime : callable
        Activation and its derivative.
    e_bound : float or None
        The error is clipped to ``[-e_bound, e_bound]`` (the layer's ``error_bound``);
        None: unbounded.
    """

    dt: float
    tau_m: Array
    tau_r: Array
    gamma: float
    prospective: bool
    phi: Callable[[Array], Array]
    phi_prime: Callable[[Array], Array]
    e_bound: float | None = None

    @classmethod
    def build(cls, dt: float, tau_m, tau_r, gamma: float, prospective: bool, phi: str,
              size: int, dtype=np.float64, e_bound: float | None = None
              ) -> "NeuronConstants":
        """Constants of a layer of ``size`` neurons; taus are scalars or arrays [size]."""
        # Python-float scalars keep float32 arrays float32 under NumPy's promotion rules.
        return cls(dt=float(dt),
                   tau_m=np.broadcast_to(np.asarray(tau_m, dtype), (size,)).copy(),
                   tau_r=np.broadcast_to(np.asarray(tau_r, dtype), (size,)).copy(),
                   gamma=float(gamma), prospective=bool(prospective),
                   phi=_phi(phi), phi_prime=_phi_prime(phi),
                   e_bound=None if e_bound is None else float(e_bound))


class NeuronState(NamedTuple):
    """State of a layer's neurons at the end of a step (arrays [..., n]).

    ``u``: membrane potential; ``u_prosp``: prospective potential (argument of phi);
    ``r``: rate phi(u_prosp); ``r_prime``: phi'(u_prosp), the gate of the next step's
    error; ``v``: error-compartment state; ``e``: prospective error of the step;
    ``udot``: du/dt of the step (used by tau_m learning).
    """

    u: Array
    u_prosp: Array
    r: Array
    r_prime: Array
    v: Array
    e: Array
    udot: Array


def zero_state(shape: tuple[int, ...], dtype=np.float64) -> NeuronState:
    """The state before step 0: every variable zero (r and r' included, not phi(0))."""
    return NeuronState(*(np.zeros(shape, dtype) for _ in NeuronState._fields))


def neuron_step(u: Array, v: Array, r_prime: Array, s: Array, d: Array,
                c: NeuronConstants) -> NeuronState:
    """One Euler step of both compartments of a layer's neurons.

    Parameters
    ----------
    u, v, r_prime : ndarray [..., n]
        Membrane potential, error state and phi'(u_prosp) from the previous step.
    s : ndarray [..., n]
        Feed-forward drive ``W p + b`` of this step.
    d : ndarray [..., n]
        Error arriving from above (``eps`` of the layer above, or the output error).
    c : NeuronConstants

    Returns
    -------
    NeuronState
        The new state; ``e`` is the error of this step, clipped to ``+-c.e_bound`` when
        the layer bounds it (before it enters the membrane through gamma).
    """
    i = r_prime * d
    if c.prospective:
        vdot = (i - v) / c.tau_r
        v_new = v + c.dt * vdot
        e = v + c.tau_m * vdot
    else:
        v_new = e = i
    if c.e_bound is not None:
        e = np.clip(e, -c.e_bound, c.e_bound)
    udot = (s + c.gamma * e - u) / c.tau_m
    u_new = u + c.dt * udot
    u_prosp = u + c.tau_r * udot
    return NeuronState(u_new, u_prosp, c.phi(u_prosp), c.phi_prime(u_prosp), v_new, e, udot)


def forward_drive(w: Array, b: Array, p: Array) -> Array:
    """Feed-forward drive ``s = W p + b``: w [n, m], b [n], p [..., m] -> [..., n]."""
    return p @ w.T + b


def backward_error(w: Array, e: Array) -> Array:
    """Error sent down ``eps = W^T e``: w [n, m], e [..., n] -> [..., m]."""
    return e @ w


def output_error(r: Array, target: Array, loss: str, beta: float) -> Array:
    """Nudging error of the output layer, formed from its previous rate ``r`` [..., n].

    ``mse``: ``beta * (target - r)`` with target [..., n].
    ``ce``:  ``beta * (onehot(target) - softmax(r))`` with integer class indices
    target [...]; softmax over the last axis (the rates are the logits).
    """
    if loss == "mse":
        return beta * (target - r)
    z = np.exp(r - r.max(axis=-1, keepdims=True))
    soft = z / z.sum(axis=-1, keepdims=True)
    onehot = np.zeros_like(r)
    np.put_along_axis(onehot, np.asarray(target)[..., None].astype(np.intp), 1.0, axis=-1)
    return beta * (onehot - soft)


def local_gradients(e: Array, p: Array) -> tuple[Array, Array]:
    """The local plasticity signal of one step, averaged over the batch.

    e [B, n] (or [n]), p [B, m] (or [m]) -> (gW [n, m] = mean_b e p^T, gb [n] = mean_b e).
    The rule is ``W += eta * gW``, ``b += eta * gb`` (ascent on the nudged objective).
    """
    if e.ndim == 1:
        return np.multiply.outer(e, p), e.copy()
    batch = e.shape[0]
    if batch == 1:  # one product per synapse, as the matrix product below gives it
        return np.multiply.outer(e[0], p[0]), e[0].copy()
    return (e.T @ p) / batch, e.sum(axis=0) / batch


def tau_m_gradient(e: Array, udot: Array) -> Array:
    """Local signal for tau_m learning: ``mean_b(-e * du/dt)`` [n]; ``tau_m += eta_tau * g``."""
    g = -e * udot
    return g if g.ndim == 1 else g.mean(axis=0)


#: Largest gain ``g`` (the inverse RMS of a silent neuron's rate is capped here).
GAIN_MAX = 1000.0
#: Largest error normaliser ``n``.
NORM_MAX = 1e8


#: The gains' running mean square starts here (RMS 1, g = 1) and counts it as its first
#: sample, so update k has the rate of update k + 1. Started from the first value
#: itself, a network streamed from the zero state took r = 0 there: every gain 1000 at
#: once, errors 10**13 below five such layers, and error normalisers that then held
#: h0-h4 of MNIST-1D below 10**-3 of their rate for about 40,000 steps (measured).
GAIN_PRIOR = 1.0


def mean_square_rate(steps: int, decay: float) -> float:
    """Rate of update number ``steps`` (1, 2, ...) of a running mean square:
    ``max(2**-floor(log2(steps)), 1 - decay)``. The first update takes the value itself,
    the rate then halves at updates 2, 4, 8, ... until it reaches ``1 - decay``: a running
    mean at first (so no start-up bias, as Adam's bias correction gives), then an
    exponential average over about ``1 / (1 - decay)`` updates; a shift on integers."""
    return max(2.0 ** -(int(steps).bit_length() - 1), 1.0 - decay)


def update_mean_square(ms: Array, x: Array, rate: float) -> None:
    """One step of a per-neuron running mean square, in place:
    ``ms <- ms + rate (mean_b(x**2) - ms)``; ms [n], x [..., n] (batch mean over the
    leading axes); ``rate`` from :func:`mean_square_rate`."""
    sq = np.square(x).reshape(-1, ms.shape[-1])
    rows = sq.shape[0]
    # the batch mean as np.mean computes it (sum, then divide), without its overhead
    sq = sq[0] if rows == 1 else np.add.reduce(sq, axis=0) / rows
    ms += rate * (sq - ms)


def normaliser(ms: Array, steps: int, limit: float) -> Array:
    """The inverse RMS ``min(ms**-0.5, limit)`` [n] of a running mean square after
    ``steps`` updates (ones before the first)."""
    if steps == 0:
        return np.ones_like(ms)
    root = np.sqrt(ms)
    if root.all():
        inverse = 1.0 / root
    else:  # ms = 0: the limit, without a division by zero
        inverse = np.full_like(root, limit)
        np.divide(1.0, root, out=inverse, where=root > 0)
    return np.minimum(inverse, limit).astype(ms.dtype, copy=False)
