"""``fixed_pt`` CPU models: Loihi-2-style integer GLE, bit-exact with ``numpy-fixed``.

The fused network model runs GLE steps of :mod:`lava_gle.arithmetic.fixed` through the
same loop as the NumPy engines (:class:`lava_gle.fixed_engine.FixedEngine` at batch 1,
driven one Lava step at a time). So a ``lava-fixed`` run and a ``numpy-fixed`` run of the
same network produce identical integers by construction, not by a parallel
implementation. The formats come from :func:`lava_gle.quantize.quantize_network`
applied to the Process's network description.

Host conventions (the :class:`~lava_gle.models.base.StepArithmetic` seam as
:class:`~lava_gle.mappings.LavaNetwork` uses it): the shared parameter arrays and the
recording buffers hold dequantised float64 values. Those are exact, since every value is
an integer times a power of two. Saturation counts are reported from the model as a
:class:`~lava_gle.quantize.QuantizationWarning` (on stderr of the Lava process) the
first time each variable clips.

The structural Processes (GleNeurons, GleProjection, StreamSource) have no ``fixed_pt``
model yet: their per-layer formats would have to reach each Process. ``LavaNetwork``
then reports the missing model by name.
"""
from __future__ import annotations

import warnings

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_gle.fixed_engine import FixedEngine
from lava_gle.processes.network.process import GleNetworkProcess
from lava_gle.quantize import QuantizationWarning


class FixedHostArithmetic:
    """What the host side of :class:`~lava_gle.mappings.LavaNetwork` needs from a fixed
    model: float64 shared arrays holding dequantised (exact) values."""

    dtype = np.float64

    def from_float(self, x):
        return np.asarray(x, dtype=np.float64)

    def to_float(self, x):
        return x


FIXED_HOST = FixedHostArithmetic()


@implements(proc=GleNetworkProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleNetworkFixed(PyLoihiProcessModel):
    """Fused whole-network model in integers (one GLE step per Lava step)."""

    arith = FIXED_HOST
    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._engine: FixedEngine | None = None

    def _setup(self) -> None:
        p = self.proc_params
        net = p["net"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationWarning)  # the host warned already
            eng = FixedEngine(net)
        eng.reset(1)
        self._engine = eng
        self._xq, _ = eng.q.quantize_inputs(self.x)
        self._yq = eng.q.quantize_targets(self.y)[0] if p["has_target"] else None
        self._reset = p["reset_interval"]
        self._params = [(mem.W.attach(), mem.b.attach()) for mem in p["layers"]]
        self._recs = [None if mem.recording is None else
                      (mem.recording.names, mem.recording.buffer.attach())
                      for mem in p["layers"]]
        self._write_parameters()
        self._reported: set[str] = set()

    def _write_parameters(self) -> None:
        for (w_view, b_view), w, b in zip(self._params, self._engine.weights,
                                          self._engine.biases):
            w_view[...] = w
            b_view[...] = b

    def run_spk(self) -> None:
        if self._engine is None:
            self._setup()
        eng = self._engine
        row = self.time_step - 1
        if self._reset > 0 and row % self._reset == 0:
            eng.reset(1)
        y = None if self._yq is None else self._yq[row][None]
        out = eng.step(self._xq[row][None], y)
        top = eng.q.layers[-1]
        for ql, st, rec in zip(eng.q.layers, eng.state, self._recs):
            if rec is None:
                continue
            names, buf = rec
            for i, name in enumerate(names):
                if name == "output":
                    buf[row, i] = out[0] * top.scale("r")
                else:
                    buf[row, i] = eng._var(st, name)[0] * ql.scale(name)
        if eng.learning:
            self._write_parameters()
        self._report(eng.saturation)

    def _report(self, counts: dict[str, int]) -> None:
        new = [k for k, n in counts.items() if n and k not in self._reported]
        if new:
            self._reported.update(new)
            warnings.warn(f"lava-fixed: fixed-point saturation in {', '.join(sorted(new))} "
                          f"(values clipped; numpy-fixed reports the counts)",
                          QuantizationWarning, stacklevel=2)
