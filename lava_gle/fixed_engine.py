"""The fixed-point NumPy engine (``--backend numpy-fixed``): the integer twin of Loihi 2.

It runs the loop of :class:`lava_gle.engine.SteppedEngine` with the integer step
functions of :mod:`lava_gle.arithmetic.fixed` and the constants of
:func:`lava_gle.quantize.quantize_network`, with a batch axis. Traces come back in
the golden key layout, dequantised to float units, plus one ``sat.<var>.<layer>``
count per saturating variable (also warned about at the end of a run, never silent).

Example
-------
>>> import numpy as np
>>> from lava_gle import load_network
>>> from lava_gle.fixed_engine import FixedEngine
>>> net = load_network("tests/data/golden/visible_mlp/network.json")
>>> traces = FixedEngine(net).run(np.zeros((10, 1, 2)), record=["r"])
>>> traces["r.hidden"].shape, int(traces["sat.u.hidden"])
((10, 1, 4), 0)
"""
from __future__ import annotations

import warnings

import numpy as np

from lava_gle.arithmetic import fixed as X
from lava_gle.engine import SteppedEngine
from lava_gle.network import Network
from lava_gle.quantize import QuantizationWarning, QuantizedNetwork, quantize_network

#: Saturation counters per layer: neuron variables, drive, error sent down, learning
#: error trace, weights and biases at the 8-bit limit, learned tau_m at the 24-bit
#: limit; plus input and target payloads.
SAT_VARS = X.NEURON_SAT_VARS + ("s", "eps", "trace", "W", "b", "tau")


def saturation_keys(q: QuantizedNetwork) -> tuple[str, ...]:
    """Names of the saturation counters of a fixed-point run: ``<var>.<layer>`` for every
    variable of :data:`SAT_VARS` and layer, then ``input`` and ``target``."""
    return tuple(f"{v}.{ql.name}" for ql in q.layers for v in SAT_VARS) + ("input", "target")


class FixedEngine(SteppedEngine):
    """Simulate (and train) a GLE network in Loihi-2-style integers with NumPy.

    Parameters
    ----------
    net : Network
        The float description (quantised with :func:`quantize_network`), or pass ``qnet``.
    qnet : QuantizedNetwork, optional
        A quantisation to use instead of the default one.
    dequantize : bool
        Return traces in float units (default) or as the raw integers.

    Attributes
    ----------
    q : QuantizedNetwork
    w, b : list of int64 ndarray
        Integer weights [n_l, n_{l-1}] and biases [n_l], updated while learning.
    t : list of int64 ndarray or None
        Integer tau_m [n_l] of the layers whose tau_m learns (None for the others).
    saturation : dict of str -> int
        ``<var>.<layer>`` (and ``input``, ``target``) -> values clipped so far.
    """

    record_dtype = np.int64
    label = "numpy-fixed engine"
    backend = "numpy-fixed"

    def __init__(self, net: Network, qnet: QuantizedNetwork | None = None,
                 dequantize: bool = True):
        super().__init__(net)
        self.q = quantize_network(net) if qnet is None else qnet
        self.dequantize = dequantize
        self.w = [ql.w.copy() for ql in self.q.layers]
        self.b = [ql.b.copy() for ql in self.q.layers]
        self.t = [None if ql.tau is None else ql.tau.t_init.copy() for ql in self.q.layers]
        self.consts = [ql.consts for ql in self.q.layers]
        self._du: list[np.ndarray | None] = [None] * len(self.q.layers)
        self.saturation = dict.fromkeys(saturation_keys(self.q), 0)

    @property
    def weights(self) -> list[np.ndarray]:
        """W_l in float units [n_l, n_{l-1}] (dequantised copies)."""
        return [w * ql.scale("W") for w, ql in zip(self.w, self.q.layers)]

    @property
    def biases(self) -> list[np.ndarray]:
        """b_l in float units [n_l] (dequantised copies)."""
        return [b * ql.scale("b") for b, ql in zip(self.b, self.q.layers)]

    @property
    def tau_m(self) -> list[np.ndarray]:
        """Membrane time constants [n_l] (float units; learned when ``learn_tau``)."""
        return [l.tau_m_array() if t is None else t * ql.scale("tau_m")
                for l, ql, t in zip(self.net.layers, self.q.layers, self.t)]

    def derive_constants(self) -> None:
        """Re-derive every layer's tau_m-dependent Euler factors from its integer tau_m
        (after :attr:`t` was set from outside, e.g. when resuming from a checkpoint)."""
        self.consts = [ql.consts if t is None else X.tau_constants(ql.consts, t, ql.tau)
                       for ql, t in zip(self.q.layers, self.t)]

    def _count(self, key: str, n: int) -> None:
        if n:
            self.saturation[key] += n

    # -- the integer arithmetic -------------------------------------------------
    def _zero_state(self, batch: int):
        state = [X.zero_state((batch, l.size)) for l in self.net.layers]
        eps = [np.zeros((batch, n), np.int64) for n in self.net.sizes[:-1]]
        return state, eps

    def _rate(self, st: X.FixedNeuronState) -> np.ndarray:
        return st.p

    def _output_error(self, top: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        if y is None:
            return np.zeros_like(top)
        d, n = X.output_error(top, y, self.q.beta, self.q.beta_negative)
        self._count(f"e.{self.q.layers[-1].name}", n)
        return d

    def _layer_step(self, l: int, old: X.FixedNeuronState, p: np.ndarray,
                    d: np.ndarray) -> X.FixedNeuronState:
        ql = self.q.layers[l]
        s, n_s = X.forward_drive(self.w[l], ql.w_shift, self.b[l], ql.b_shift, p)
        st, counts = X.neuron_step(old.u, old.v, old.g, s, d, self.consts[l])
        if self.t[l] is not None:
            self._du[l] = st.u - old.u
        self._count(f"s.{ql.name}", n_s)
        for var, n in zip(X.NEURON_SAT_VARS, counts):
            self._count(f"{var}.{ql.name}", n)
        return st

    def _send_down(self, l: int, st: X.FixedNeuronState) -> np.ndarray:
        ql = self.q.layers[l]
        eps, n = X.backward_error(self.w[l], st.e, ql.back_shift)
        self._count(f"eps.{ql.name}", n)
        return eps

    def _learn(self, new: list[X.FixedNeuronState], pres: list[np.ndarray]) -> None:
        q, t = self.q, self.steps_done
        for l, (ql, st, p) in enumerate(zip(q.layers, new, pres)):
            if ql.rule is not None:
                draws = X.learning_draws(q.seed, l, t, ql.w.shape, ql.trace_shift,
                                         q.per_synapse_rounding)
                self.w[l], self.b[l], counts = X.learn_projection(
                    self.w[l], self.b[l], p, st.e, ql.trace_shift, ql.pre_signed, ql.rule,
                    ql.bias_rule, *draws)
                for var, n in zip(("trace", "W", "b"), counts):
                    self._count(f"{var}.{ql.name}", n)
            if ql.tau is not None:
                self.t[l], n = X.tau_step(self.t[l], st.e, self._du[l], ql.tau,
                                          X.tau_dither(q.seed, l, t, ql.tau))
                self._count(f"tau.{ql.name}", n)
                self.consts[l] = X.tau_constants(self.consts[l], self.t[l], ql.tau)

    def _prepare(self, x: np.ndarray, y: np.ndarray | None):
        xq, n = self.q.quantize_inputs(x)
        self._count("input", n)
        if y is not None:
            y, n = self.q.quantize_targets(y)
            self._count("target", n)
        return xq, y

    def _var(self, st: X.FixedNeuronState, var: str) -> np.ndarray:
        return st.p if var == "r" else getattr(st, var)

    def _results(self, rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        top = self.q.layers[-1]
        out: dict[str, np.ndarray] = {}
        for key, arr in rec.items():
            if not self.dequantize:
                out[key] = arr.copy()
            elif key == "output":
                out[key] = arr * top.scale("r")
            else:
                var, name = key.split(".", 1)
                out[key] = arr * self.q.layers[self.net.index(name)].scale(var)
        for ql, w, b, t in zip(self.q.layers, self.w, self.b, self.t):
            out[f"W.{ql.name}"] = w * ql.scale("W") if self.dequantize else w.copy()
            out[f"b.{ql.name}"] = b * ql.scale("b") if self.dequantize else b.copy()
            if t is not None:
                out[f"tau_m.{ql.name}"] = t * ql.scale("tau_m") if self.dequantize else t.copy()
        for key, n in self.saturation.items():
            out[f"sat.{key}"] = np.array(n)
        clipped = {k: n for k, n in self.saturation.items() if n}
        if clipped:
            warnings.warn("fixed-point saturation (values clipped so far): " +
                          ", ".join(f"{k}={n}" for k, n in sorted(clipped.items())),
                          QuantizationWarning, stacklevel=3)
        return out
