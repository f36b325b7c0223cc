"""GLE neuron populations and plastic GLE projections (Lava Process interfaces).

A layer ``l`` of a structural GLE network is two Lava Processes: the neurons
(:class:`GleNeurons`) and the plastic projection into them (:class:`GleProjection`),
which carries both the forward weights and the backward (error) path. All signals
travel over direct port links (no delay); one Lava step is one GLE step, and the
send/receive order inside a step (see ``docs/architecture.md``) makes every layer
compute from the previous step's state, as the golden semantics require.

Under chip timing (fixed point, ``fixed_point.timing: chip``) the arrays sit where a chip
keeps them: the forward array ``W_l`` with layer l's neurons (one :class:`GleNeurons`
holding :class:`Synapses`), and the backward array ``B_l`` of every layer above the first
in a Process of its own (:class:`GleBackwardArray`), so no signal goes back and forth
inside a step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from lava_gle.runtime.shared_memory import SharedArray

#: Per-step variables a GLE neuron model can record, in the golden key order, plus
#: ``output`` (output neurons only: the rate at the start of the step, r_L^-).
NEURON_RECORDABLE = ("u", "u_prosp", "r", "v", "e", "output")


@dataclass(frozen=True)
class Output:
    """Output-layer settings: ``kernels`` (the network's :mod:`lava_gle.numerics.kernels`, which
    form the output error), ``loss`` (``mse``: a target vector, ``ce``: a class index)
    and whether a target stream is connected (without one the output error is zero)."""

    kernels: object
    loss: str
    has_target: bool


#: The learnable arrays of a layer's forward array, by kind (the kernels' ``parameters``):
#: weights, biases and, with weight tags, their tags.
FORWARD_KINDS = ("W", "b", "tag_W", "tag_b")
#: Those of a backward array (chip timing), with its transpose drift figures.
BACKWARD_KINDS = ("B", "tag_B", "drift")
#: The state of a layer's neuron-local normalisers (``gain_decay``, ``error_norm_decay``):
#: the running mean squares of the rates and errors and the number of updates.
NORMALISER_KINDS = ("gain_ms", "error_ms", "norm_steps")


def shared_of(arrays: dict[str, SharedArray], kinds: tuple[str, ...]) -> dict[str, SharedArray]:
    """The shared arrays of ``arrays`` (kind -> SharedArray) whose kind is in ``kinds``."""
    return {kind: a for kind, a in arrays.items() if kind in kinds}


@dataclass(frozen=True)
class Synapses:
    """The forward array of a layer held by its neurons Process (chip timing: the array
    sits on the layer's own cores): the shared arrays it lives in by kind (``W`` [n, m],
    ``b`` [n], with weight tags ``tag_W``, ``tag_b``; :data:`FORWARD_KINDS`) and whether
    its learning epoch runs every step (``learning``)."""

    arrays: dict[str, SharedArray]
    learning: bool


@dataclass(frozen=True)
class Normalisers:
    """The neuron-local normalisers of a layer (``docs/model.md``), held by its neurons
    Process: the shared arrays their state lives in by kind (:data:`NORMALISER_KINDS`)
    and whether they adapt every step (``learning``)."""

    arrays: dict[str, SharedArray]
    learning: bool


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
    p_in : InPort [m]
        Instead of ``s_in`` when the Process holds its forward array (``synapses``): the
        presynaptic rates r_{l-1}^- (or the input x_t), from which it forms the drive.
    d_in : InPort [n]
        Error from above, W_{l+1}^T e_{l+1} of the previous step (hidden layers).
    y_in : InPort [n] (mse) or [1] (ce: the class index)
        Target y_t (output neurons with a target stream).
    e_out : OutPort [n]
        Sent after the step: the error e of this step. It is both the learning third
        factor of the input projection and the input of its backward path (one
        projection process serves both, so one port carries both). With ``synapses``:
        the input of the backward array (:class:`GleBackwardArray`), sent after the
        forward array's learning epoch of the step.
    l_out : OutPort [n]
        Sent last, only with ``sends_learning_error``: the learning error of this step,
        ``e`` normalised by the neurons' error normaliser (the kernel's
        ``learning_error``), the third factor of the arrays into the layer in place of
        ``e`` (as a chip's neurons hand the learning engine their post-synaptic trace).

    Vars
    ----
    u, v, r, r_prime, u_prosp, e : [n]
        State at the end of the last step, in the kernel's units (fixed point: integers;
        ``r`` the rate payload, ``r_prime`` the gate).

    Parameters
    ----------
    kernel : FloatLayer or FixedLayer
        The layer's kernel (:mod:`lava_gle.numerics.kernels`): time constants, activation and
        arithmetic of the neuron half (``step``, ``learn_tau``).
    output : Output or None
        Set for the output layer.
    learn_tau : bool
        tau_m learns every step (the kernel's rule).
    tau_m_shared : SharedArray or None
        Where the learned tau_m (the kernel's own units) is kept for the host.
    reset_interval : int
        If > 0, every state variable is zeroed at the start of each block of this
        many steps (runs several independent batch elements back to back).
    recording : Recording or None
    saturation : SharedCounters or None
        Where a fixed-point kernel counts clipped values (float kernels clip nothing).
    synapses : Synapses or None
        The layer's forward array, when this Process holds it (chip timing): the drive
        ``W p + b`` and W's learning epoch (the kernel's ``drive``, ``learn_forward``).
    normalisers : Normalisers or None
        The layer's neuron-local normalisers (the kernel's ``adapt`` after every step
        while learning; its gains scale the rates it sends and the error it receives).
    sends_learning_error : bool
        Send the learning error on ``l_out`` (a layer with an error normaliser whose
        arrays learn in another Process).
    """

    def __init__(self, *, kernel, output: Output | None = None, learn_tau: bool = False,
                 tau_m_shared: SharedArray | None = None, reset_interval: int = 0,
                 recording: Recording | None = None, saturation=None,
                 synapses: Synapses | None = None, normalisers: Normalisers | None = None,
                 sends_learning_error: bool = False, name: str | None = None) -> None:
        n, m = kernel.W.shape
        super().__init__(kernel=kernel, output=output, learn_tau=bool(learn_tau),
                         tau_m_shared=tau_m_shared, reset_interval=int(reset_interval),
                         recording=recording, saturation=saturation, synapses=synapses,
                         normalisers=normalisers,
                         sends_learning_error=bool(sends_learning_error), name=name)
        self.s_in = InPort(shape=(n,))
        self.p_in = InPort(shape=(m,))
        self.d_in = InPort(shape=(n,))
        y_shape = (1,) if output is not None and output.loss == "ce" else (n,)
        self.y_in = InPort(shape=y_shape)
        self.r_out = OutPort(shape=(n,))
        self.e_out = OutPort(shape=(n,))
        self.l_out = OutPort(shape=(n,))
        zero = kernel.zero_state(())
        for var in ("u", "v", "r", "r_prime", "u_prosp", "e"):
            setattr(self, var, Var(shape=(n,), init=kernel.var(zero, var)))


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
    l_in : InPort [n]
        With ``normalised``: the postsynaptic learning error of this step (``l_out`` of
        :class:`GleNeurons`), the third factor in place of ``e``.

    Vars
    ----
    W : [n, m], b : [n]
        Learnable parameters in the kernel's units (fixed point: integer mantissas). The
        model keeps them in the shared arrays ``shared`` so the host reads them without
        ``Var.get``.
    eps : [m]
        The backward error computed in the last step.

    Parameters
    ----------
    kernel : FloatLayer or FixedLayer
        The layer's kernel (:mod:`lava_gle.numerics.kernels`): W, b, feedback weights and the
        arithmetic of the projection half (``drive``, ``error_down``, ``learn_synapses``).
    learning : bool
    sends_error : bool
    reset_interval : int
        As in :class:`GleNeurons` (zeroes ``eps``).
    shared : dict of str to SharedArray
        Where the learnable arrays live, by kind (:data:`FORWARD_KINDS`: ``W``, ``b`` and,
        with weight tags, ``tag_W``, ``tag_b``); the host reads them after the run.
    saturation : SharedCounters or None
        As in :class:`GleNeurons`.
    normalised : bool
        Learn from the learning error on ``l_in`` (the neurons have an error normaliser).
    """

    def __init__(self, *, kernel, learning: bool = False, sends_error: bool = True,
                 reset_interval: int = 0, shared: dict[str, SharedArray] | None = None,
                 saturation=None, normalised: bool = False, name: str | None = None) -> None:
        n, m = kernel.W.shape
        super().__init__(kernel=kernel, learning=bool(learning), sends_error=bool(sends_error),
                         reset_interval=int(reset_interval), shared=dict(shared or {}),
                         saturation=saturation, normalised=bool(normalised), name=name)
        self.p_in = InPort(shape=(m,))
        self.e_in = InPort(shape=(n,))
        self.l_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        self.eps_out = OutPort(shape=(m,))
        self.W = Var(shape=(n, m), init=kernel.W.copy())
        self.b = Var(shape=(n,), init=kernel.b.copy())
        self.eps = Var(shape=(m,), init=np.zeros(m, kernel.W.dtype))


class GleBackwardArray(AbstractProcess):
    """The backward array ``B`` [n, m] of a layer above the first under chip timing: the
    synapses that carry the error of the layer's ``n`` neurons down to the ``m`` neurons
    below, separate from the forward array (on a chip: on the lower layer's cores, with a
    learning engine of its own).

    Error sum (sent at the start of the next step, so the layer below receives it one
    step later, as through the forward projection under exact timing)::

        eps = B^T e                        B as left by the epochs of the previous steps

    Learning, every step while learning, after the sum: the backward epoch of the
    forward pair of the step (the kernel's ``learn_backward``: pre = the error payload,
    post = the rate the lower neurons sent at the start of the step, i.e. the forward
    array's presynaptic rate; a chip runs it one step later from a delayed rate trace,
    with the same integers), then the transpose drift of B against W (read from
    ``W_shared``, which the layer's neurons Process has updated before it sent ``e``).

    Ports (order inside a Lava step)
    --------------------------------
    eps_out : OutPort [m]
        Sent first: the error sum of the previous step, to the neurons below.
    r_in : InPort [m]
        The lower neurons' rate r_{l-1}^- of the previous step.
    e_in : InPort [n]
        The layer's error e of this step.
    l_in : InPort [n]
        With ``normalised``: the layer's learning error of this step (``l_out`` of
        :class:`GleNeurons`), the third factor of B's epoch in place of ``e``.

    Vars
    ----
    B : [n, m]
        The backward array (integer mantissas, W's orientation and exponent), kept in
        ``shared`` for the host.
    eps : [m]
        The error sum computed in the last step.

    Parameters
    ----------
    kernel : FixedLayer
        The layer's kernel with its backward array (``error_down``, ``learn_backward``).
    learning : bool
    reset_interval : int
        As in :class:`GleNeurons` (zeroes ``eps``).
    shared : dict of str to SharedArray
        Where B, its tags (with weight tags) and the drift figures [3] live, by kind
        (:data:`BACKWARD_KINDS`; written here only).
    W_shared : SharedArray
        The layer's forward array (read here only, for the drift).
    saturation : SharedCounters or None
    normalised : bool
        As in :class:`GleProjection`.
    """

    def __init__(self, *, kernel, learning: bool = False, reset_interval: int = 0,
                 shared: dict[str, SharedArray], W_shared: SharedArray,
                 saturation=None, normalised: bool = False, name: str | None = None) -> None:
        n, m = kernel.B.shape
        super().__init__(kernel=kernel, learning=bool(learning),
                         reset_interval=int(reset_interval), shared=dict(shared),
                         W_shared=W_shared, saturation=saturation,
                         normalised=bool(normalised), name=name)
        self.r_in = InPort(shape=(m,))
        self.e_in = InPort(shape=(n,))
        self.l_in = InPort(shape=(n,))
        self.eps_out = OutPort(shape=(m,))
        self.B = Var(shape=(n, m), init=kernel.B.copy())
        self.eps = Var(shape=(m,), init=np.zeros(m, kernel.B.dtype))
