"""GLE neuron populations and plastic GLE projections (Lava Process interfaces).

A layer ``l`` of a structural GLE network is two Lava Processes: the neurons
(:class:`GleNeurons`) and the plastic projection into them (:class:`GleProjection`),
which carries both the forward weights and the backward (error) path. All signals
travel over direct port links (no delay); one Lava step is one GLE step, and the
send/receive order inside a step (see ``docs/architecture.md``) makes every layer
compute from the previous step's state, as the golden semantics require.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from lava_gle.shared import SharedArray

#: Per-step variables a GLE neuron model can record, in the golden key order, plus
#: ``output`` (output neurons only: the rate at the start of the step, r_L^-).
NEURON_RECORDABLE = ("u", "u_prosp", "r", "v", "e", "output")


@dataclass(frozen=True)
class Nudging:
    """Output-layer settings: loss ``mse`` or ``ce``, strength ``beta``, and whether a
    target stream is connected (without one the output error is zero)."""

    loss: str
    beta: float
    has_target: bool


@dataclass(frozen=True)
class TauLearning:
    """tau_m learning: ``tau_m += eta_tau * (-e * du/dt)``, clamped to ``>= tau_m_min``.
    ``tau_m`` is the shared array the learned values are kept in (read by the host)."""

    eta_tau: float
    tau_m_min: float
    tau_m: SharedArray


@dataclass(frozen=True)
class Recording:
    """Record ``names`` (from :data:`NEURON_RECORDABLE`) every step into ``buffer``
    ``[steps, len(names), n]``: row ``k - 1`` at Lava step ``k``."""

    names: tuple[str, ...]
    buffer: SharedArray


class GleNeurons(AbstractProcess):
    """A population of ``n`` GLE neurons, each with a representation and an error compartment.

    One Euler step (``dt``) from the state at the end of the previous step (``^-``)::

        i      = r'^- * d                         d: error from above (d_in), or for
                                                  output neurons beta*(y - r^-) (mse) /
                                                  beta*(onehot(y) - softmax(r^-)) (ce)
        vdot   = (i - v^-) / tau_r                error compartment (prospective_errors)
        v      = v^- + dt * vdot
        e      = v^- + tau_m * vdot               prospective error
        udot   = (s + gamma * e - u^-) / tau_m    s: forward drive W p + b (s_in)
        u      = u^- + dt * udot
        u_prosp= u^- + tau_r * udot               prospective potential
        r      = phi(u_prosp),  r' = phi'(u_prosp)

    Without prospective errors ``v = e = i``. All state starts at zero (r and r' too).

    Ports (order inside a Lava step)
    --------------------------------
    r_out : OutPort [n]
        Sent first: the rate r^- of the previous step (the next projection's input p).
    s_in : InPort [n]
        Forward drive W p + b of this step, from the input projection.
    d_in : InPort [n]
        Error from above, W_{l+1}^T e_{l+1} of the previous step (hidden layers).
    y_in : InPort [n] (mse) or [1] (ce: the class index)
        Target y_t (output neurons with a target stream).
    e_out : OutPort [n]
        Sent last: the error e of this step. It is both the learning third factor of
        the input projection and the input of its backward path (one projection
        process serves both, so one port carries both).

    Vars
    ----
    u, v, r, r_prime, u_prosp, e : [n]
        State at the end of the last step.
    tau_m, tau_r : [n]
        Time constants (unit of dt), each >= dt.

    Parameters
    ----------
    shape : (n,)
    tau_m, tau_r : float or array [n]
    phi : str
        Activation, one of ``lava_gle.network.PHI_NAMES``.
    dt, gamma : float
    prospective_errors : bool
    nudging : Nudging or None
        Set for the output layer.
    tau_learning : TauLearning or None
    reset_interval : int
        If > 0, every state variable is zeroed at the start of each block of this
        many steps (runs several independent batch elements back to back).
    recording : Recording or None
    fixed_point : (QuantizedNetwork, layer index, SharedCounters) or None
        Integer formats for ``fixed_pt`` models (``lava_gle.quantize``); float models
        ignore it.
    """

    def __init__(self, *, shape: tuple[int], tau_m, tau_r, phi: str, dt: float, gamma: float,
                 prospective_errors: bool = True, nudging: Nudging | None = None,
                 tau_learning: TauLearning | None = None, reset_interval: int = 0,
                 recording: Recording | None = None, fixed_point=None,
                 name: str | None = None) -> None:
        n = int(shape[0])
        super().__init__(shape=(n,), phi=phi, dt=float(dt), gamma=float(gamma),
                         prospective_errors=bool(prospective_errors), nudging=nudging,
                         tau_learning=tau_learning, reset_interval=int(reset_interval),
                         recording=recording, fixed_point=fixed_point, name=name)
        self.s_in = InPort(shape=(n,))
        self.d_in = InPort(shape=(n,))
        y_shape = (1,) if nudging is not None and nudging.loss == "ce" else (n,)
        self.y_in = InPort(shape=y_shape)
        self.r_out = OutPort(shape=(n,))
        self.e_out = OutPort(shape=(n,))
        for var in ("u", "v", "r", "r_prime", "u_prosp", "e"):
            setattr(self, var, Var(shape=(n,), init=np.zeros(n)))
        self.tau_m = Var(shape=(n,), init=np.broadcast_to(np.asarray(tau_m, float), (n,)).copy())
        self.tau_r = Var(shape=(n,), init=np.broadcast_to(np.asarray(tau_r, float), (n,)).copy())


class GleProjection(AbstractProcess):
    """The plastic all-to-all projection from ``m`` presynaptic to ``n`` GLE neurons.

    Forward path (this step, weights as they were before this step's update)::

        s = W p + b                        p: presynaptic rate r_{l-1}^- (or the input x_t)

    Backward path (sent at the start of the next step, so the layer below receives
    it one step later, as the golden semantics require)::

        eps = B^T e                        B = W (transpose mode, W before the update)
                                           or a fixed feedback matrix (feedback alignment)

    Local plasticity, every step while learning (e: the third factor from the
    postsynaptic neurons)::

        W += eta * e p^T,     b += eta * e   (b only if the layer has a bias)

    Ports (order inside a Lava step)
    --------------------------------
    eps_out : OutPort [m]
        Sent first: the error W^T e of the previous step, to the neurons below
        (only when ``sends_error``; the first projection has no neurons below).
    p_in : InPort [m]
        Presynaptic rates (or the input stream).
    s_out : OutPort [n]
        The drive W p + b.
    e_in : InPort [n]
        Postsynaptic error e of this step (third factor and backward input).

    Vars
    ----
    W : [n, m], b : [n]
        Learnable parameters. The model keeps them in the shared arrays ``W_shared``,
        ``b_shared`` so the host reads them without ``Var.get``.
    eps : [m]
        The backward error computed in the last step.

    Parameters
    ----------
    weights : ndarray [n, m]
    biases : ndarray [n]
    feedback : ndarray [n, m] or None
        Fixed feedback weights (feedback alignment); None uses W.
    eta : float
    learning : bool
    learn_bias : bool
    sends_error : bool
    reset_interval : int
        As in :class:`GleNeurons` (zeroes ``eps``).
    W_shared, b_shared : SharedArray
    fixed_point : (QuantizedNetwork, layer index, SharedCounters) or None
        Integer formats for ``fixed_pt`` models; float models ignore it.
    """

    def __init__(self, *, weights: np.ndarray, biases: np.ndarray,
                 feedback: np.ndarray | None = None, eta: float = 0.0, learning: bool = False,
                 learn_bias: bool = True, sends_error: bool = True, reset_interval: int = 0,
                 W_shared: SharedArray | None = None, b_shared: SharedArray | None = None,
                 fixed_point=None, name: str | None = None) -> None:
        weights = np.asarray(weights, dtype=np.float64)
        n, m = weights.shape
        super().__init__(feedback=None if feedback is None else np.asarray(feedback, float),
                         eta=float(eta), learning=bool(learning), learn_bias=bool(learn_bias),
                         sends_error=bool(sends_error), reset_interval=int(reset_interval),
                         W_shared=W_shared, b_shared=b_shared, fixed_point=fixed_point,
                         name=name)
        self.p_in = InPort(shape=(m,))
        self.e_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        self.eps_out = OutPort(shape=(m,))
        self.W = Var(shape=(n, m), init=weights)
        self.b = Var(shape=(n,), init=np.asarray(biases, dtype=np.float64))
        self.eps = Var(shape=(m,), init=np.zeros(m))
