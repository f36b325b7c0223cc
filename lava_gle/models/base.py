"""Abstract ProcessModels of lava-gle: Lava's step order around the layer kernels.

All GLE logic of a model (the order of sends and receives inside a Lava step, state,
resets, recording, learning) lives in the abstract classes here, and every number
comes from the kernels of :mod:`lava_gle.numerics.kernels` that the Processes carry (built and,
for fixed point, quantised once on the host). A concrete model only adds Lava's
decorators and the ``LavaPyType`` declarations of its Vars and Ports:

    @implements(proc=GleNeurons, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class PyGleNeuronsFixed(AbstractGleNeuronsModel):
        s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
        ...

Lava ports carry vectors [n]; the kernels keep a batch axis of 1, so a structural
model computes with the very shapes, and so the very numbers, of the NumPy engine at
batch 1. Learnable parameters live in shared arrays (:mod:`lava_gle.runtime.shared_memory`) in the
kernels' own units; the host decodes them with the same kernels.
"""
from __future__ import annotations

import warnings

import numpy as np

from lava.magma.core.model.py.model import PyLoihiProcessModel

from lava_gle.numerics.kernels import learn_in_epochs
from lava_gle.quantize import QuantizationWarning
from lava_gle.runtime.shared_memory import SharedCounters


class SharedSaturation:
    """A saturation sink (:class:`lava_gle.numerics.kernels.SaturationSink`) that counts into the
    shared counters the host reads after the run and warns the first time a key clips."""

    def __init__(self, where: str, counters: SharedCounters) -> None:
        self.where = where
        self.index, self.counts = counters.attach()
        self.warned: set[str] = set()

    def add(self, key: str, n: int) -> None:
        if n:
            self.counts[self.index[key]] += n
            if key not in self.warned:
                self.warned.add(key)
                warnings.warn(f"lava-fixed: {self.where}: fixed-point saturation in {key} "
                              f"(values clipped)", QuantizationWarning, stacklevel=3)


def _is_reset_step(row: int, interval: int) -> bool:
    return interval > 0 and row % interval == 0


def _attach(shared):
    return None if shared is None else shared.attach()


def _attach_all(shared: dict) -> dict:
    """Every shared array of ``shared`` (kind -> SharedArray) attached, by kind."""
    return {kind: a.attach() for kind, a in shared.items()}


class AbstractGleNeuronsModel(PyLoihiProcessModel):
    """Step logic of :class:`~lava_gle.processes.gle.process.GleNeurons`.

    Inside Lava step ``k`` (GLE step ``t = k - 1``): send r^-; receive the drive s (or,
    holding the forward array, the rates p and form s = W p + b) and the error from above
    (or form the output error from r^- and y_t); step; adapt the normalisers (with
    them); run the forward array's learning epoch (holding it); send e and the learning
    error (where another Process learns from it); record; learn tau_m.
    """

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._kernel = None

    def _setup(self) -> None:
        p = self.proc_params
        k = self._kernel = p["kernel"]
        self._output = p["output"]
        if p["saturation"] is not None:
            sink = SharedSaturation(k.name, p["saturation"])
            k.sat = sink
            if self._output is not None:
                self._output.kernels.report_to(sink)
        k.bind(tau_m=_attach(p["tau_m_shared"]))
        syn = p["synapses"]
        self._holds_synapses = syn is not None
        self._learn_synapses = syn is not None and syn.learning
        if syn is not None:
            k.bind(**_attach_all(syn.arrays))
        norm = p["normalisers"]
        self._adapt = norm is not None and norm.learning
        if norm is not None:
            k.bind(**_attach_all(norm.arrays))
        self._sends_l = p["sends_learning_error"]
        self._learn_tau = p["learn_tau"]
        self._reset = p["reset_interval"]
        rec = p["recording"]
        self._rec = None if rec is None else (rec.names, rec.buffer.attach())
        self._zero()

    def _zero(self) -> None:
        self._state = self._kernel.zero_state((1,))
        if self._kernel.epoch is not None:  # the epoch's error sum is neuron state
            self._kernel.epoch.reset()
        self._show(self._state)

    def _show(self, st) -> None:
        """The Vars (u, v, r, r_prime, u_prosp, e) from the kernel's state."""
        k = self._kernel
        self.u, self.v, self.r = k.var(st, "u")[0], k.var(st, "v")[0], k.var(st, "r")[0]
        self.r_prime, self.u_prosp = k.var(st, "r_prime")[0], k.var(st, "u_prosp")[0]
        self.e = k.var(st, "e")[0]

    def run_spk(self) -> None:
        if self._kernel is None:
            self._setup()
        k, out = self._kernel, self._output
        row = self.time_step - 1
        if _is_reset_step(row, self._reset):
            self._zero()
        old = self._state
        r_old = k.rate(old)
        self.r_out.send(r_old[0])
        if self._holds_synapses:
            p = self.p_in.recv()[None]
            s = k.drive(p)
        else:
            s = self.s_in.recv()[None]
        if out is None:
            d = self.d_in.recv()[None]
        elif out.has_target:
            y = self.y_in.recv()
            d = out.kernels.output_error(r_old, y if out.loss == "ce" else y[None])
        else:
            d = out.kernels.output_error(r_old, None)
        st = k.step(old, s, d)
        if self._adapt:
            k.adapt(st)
        if self._learn_synapses or self._sends_l:
            l = k.learning_error(st.e)
        if self._learn_synapses:  # W final for this step before e reaches the backward array
            learn_in_epochs(k.epoch, k.learn_forward, l, p, row)
        self.e_out.send(st.e[0])
        if self._sends_l:
            self.l_out.send(l[0])
        self._state = st
        self._show(st)
        if self._rec is not None:
            names, buf = self._rec
            for i, name in enumerate(names):
                buf[row, i] = r_old[0] if name == "output" else k.var(st, name)[0]
        if self._learn_tau:
            k.learn_tau(st, old, row)


class _SynapseArrayModel(PyLoihiProcessModel):
    """What the forward projection's and the backward array's models share: the kernel
    bound to the shared arrays on the first step, the saturation sink, the reset of the
    error they send down, and that error sent first in every step (it was computed in the
    step before). Subclasses name their arrays (:attr:`role`, :meth:`_arrays`)."""

    #: How the saturation counters name this Process's clipped values.
    role = ""
    #: The Vars that are the kernel's arrays (after binding, the model's Var is the array).
    array_vars: tuple[str, ...] = ()

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._kernel = None

    def _arrays(self) -> dict:
        """Keyword arguments of the kernel's ``bind`` (the shared arrays this Process holds)."""
        raise NotImplementedError

    def _begin_step(self):
        """Bind on the first step, zero eps on a reset step, send eps; return the kernel
        and the GLE step."""
        if self._kernel is None:
            p = self.proc_params
            k = self._kernel = p["kernel"]
            if p["saturation"] is not None:
                k.sat = SharedSaturation(f"{k.name} {self.role}", p["saturation"])
            k.bind(**self._arrays())
            for name in self.array_vars:
                setattr(self, name, getattr(k, name))
            self._learning, self._reset = p["learning"], p["reset_interval"]
            self._normalised = p["normalised"]
        row = self.time_step - 1
        if _is_reset_step(row, self._reset):
            self.eps = np.zeros_like(self.eps)
            if self._kernel.epoch is not None:
                self._kernel.epoch.reset()
        if self._sends_error():
            self.eps_out.send(self.eps)
        return self._kernel, row

    def _sends_error(self) -> bool:
        return True

    def _learning_error(self, e):
        """The third factor of this step's epoch: the neurons' learning error from
        ``l_in`` where they normalise it, else ``e``."""
        return self.l_in.recv()[None] if self._normalised else e


class AbstractGleProjectionModel(_SynapseArrayModel):
    """Step logic of :class:`~lava_gle.processes.gle.process.GleProjection`.

    Inside Lava step ``k``: send eps (computed in step k-1); receive p; send
    s = W p + b; receive e (and the learning error, normalised); compute eps = W^T e
    with W before the update; learn.
    """

    role = "projection"
    array_vars = ("W", "b")

    def _arrays(self) -> dict:
        p = self.proc_params
        return _attach_all(p["shared"])

    def _sends_error(self) -> bool:
        return self.proc_params["sends_error"]

    def run_spk(self) -> None:
        k, row = self._begin_step()
        p = self.p_in.recv()[None]
        self.s_out.send(k.drive(p)[0])
        e = self.e_in.recv()[None]
        l = self._learning_error(e)
        if self._sends_error():
            self.eps = k.error_down(e)[0]
        if self._learning:
            learn_in_epochs(k.epoch, k.learn_synapses, l, p, row)


class AbstractGleBackwardModel(_SynapseArrayModel):
    """Step logic of :class:`~lava_gle.processes.gle.process.GleBackwardArray`.

    Inside Lava step ``k`` (GLE step ``t = k - 1``): send eps (computed in step k-1);
    receive the lower rates r^- and the error e (and the learning error, normalised);
    compute eps = B^T e with B before this step's epoch; learn B for the pair (learning
    error, r^-) and track the drift against W.
    """

    role = "backward array"
    array_vars = ("B",)

    def _arrays(self) -> dict:
        p = self.proc_params
        return {"watch_W": p["W_shared"].attach(), **_attach_all(p["shared"])}

    def run_spk(self) -> None:
        k, row = self._begin_step()
        r = self.r_in.recv()[None]
        e = self.e_in.recv()[None]
        l = self._learning_error(e)
        self.eps = k.error_down(e)[0]
        if self._learning:
            learn_in_epochs(k.epoch, k.learn_backward, l, r, row)


class AbstractStreamSourceModel(PyLoihiProcessModel):
    """Step logic of :class:`~lava_gle.processes.stream.process.StreamSource`:
    send row ``k - 1`` of the input (and the target) at Lava step ``k``, as the kernels
    encode them."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._x = None

    def run_spk(self) -> None:
        if self._x is None:
            p = self.proc_params
            kernels = p["kernels"]
            if p["saturation"] is not None:
                kernels.report_to(SharedSaturation("streams", p["saturation"]))
            self._x, self._y = kernels.encode(self.x, self.y if p["has_target"] else None)
        row = self.time_step - 1
        self.x_out.send(self._x[row])
        if self._y is not None:
            self.y_out.send(self._y[row])


class AbstractGleNetworkModel(PyLoihiProcessModel):
    """Step logic of :class:`~lava_gle.processes.network.process.GleNetworkProcess`:
    the host's :class:`~lava_gle.numerics.engine.Engine` stepped at batch 1, one GLE step per
    Lava step, with its parameters and recordings in shared memory."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._engine = None

    def _setup(self) -> None:
        p = self.proc_params
        eng = self._engine = p["engine"]
        kernels = eng.kernels
        if p["saturation"] is not None:
            kernels.report_to(SharedSaturation(eng.net.name, p["saturation"]))
        for k, mem in zip(kernels.layers, p["layers"]):
            k.bind(**_attach_all(mem.arrays))
        self._recs = [None if mem.recording is None else
                      (mem.recording.names, mem.recording.buffer.attach())
                      for mem in p["layers"]]
        self._x, self._y = kernels.encode(self.x, self.y if p["has_target"] else None)
        self._ce = eng.net.learning.loss == "ce"
        self._reset = p["reset_interval"]
        eng.reset(1)

    def run_spk(self) -> None:
        if self._engine is None:
            self._setup()
        eng = self._engine
        row = self.time_step - 1
        if _is_reset_step(row, self._reset):
            eng.reset(1)
        y = None if self._y is None else self._y[row] if self._ce else self._y[row][None]
        out = eng.step(self._x[row][None], y)
        for k, st, rec in zip(eng.kernels.layers, eng.state, self._recs):
            if rec is not None:
                names, buf = rec
                for i, name in enumerate(names):
                    buf[row, i] = out[0] if name == "output" else k.var(st, name)[0]
