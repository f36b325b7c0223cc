"""The vectorised NumPy GLE engine (batch axis), the reference backend of lava-gle.

It follows the discrete-time semantics of ``tests/data/golden/README.md`` exactly:
all layers update synchronously from the previous step's state (one step per layer
hop, forwards and backwards), the first layer sees the current input, the output
error is formed from the output layer's previous rate, and learning is applied
after the step with the batch mean of the local signals. The arithmetic itself is
in :mod:`lava_gle.arithmetic.floating`, shared with the Lava ProcessModels.

:class:`SteppedEngine` is the loop every NumPy engine shares (state bookkeeping,
the synchronous layer pipeline, recording); :class:`Engine` fills it with the
float arithmetic and :class:`lava_gle.fixed_engine.FixedEngine` with the
fixed-point arithmetic of :mod:`lava_gle.arithmetic.fixed`.

Example
-------
>>> import numpy as np
>>> from lava_gle import load_network
>>> from lava_gle.engine import Engine
>>> net = load_network("tests/data/golden/visible_mlp/network.json")
>>> traces = Engine(net).run(np.zeros((10, 1, 2)), record=["r"])
>>> traces["r.hidden"].shape
(10, 1, 4)
"""
from __future__ import annotations

import warnings

import numpy as np
from tqdm.auto import tqdm

from lava_gle.arithmetic import floating as F
from lava_gle.errors import DivergenceError, ShapeError
from lava_gle.memory import require_memory
from lava_gle.network import Network
from lava_gle.optim import SGD
from lava_gle.streams import prepare_streams
from lava_gle.traces import STATE_VARS, Record, first_non_finite, resolve_record


class SteppedEngine:
    """The synchronous GLE loop shared by the float and the fixed-point NumPy engines.

    One step visits every layer with the previous step's state only (one step per
    layer hop, forwards and backwards), then applies learning. Subclasses supply the
    arithmetic through a handful of methods; the loop, the streams, the recording and
    the state bookkeeping live here once.

    Attributes
    ----------
    state : list of per-layer state tuples [batch, n_l] or None
        The state at the end of the last step (``None`` before the first run).
    eps : list of ndarray
        Error each layer sent down at the end of the last step.
    steps_done : int
        Steps since the last reset.
    """

    #: dtype of the recording buffers.
    record_dtype: type = np.float64
    #: progress-bar label.
    label = "numpy engine"
    #: backend name, the key of its memory use in :data:`lava_gle.memory.WORK`.
    backend = "numpy"

    def __init__(self, net: Network):
        require_memory(net, self.backend)  # before a subclass draws the weights
        self.net = net
        self.learning = net.learning.enabled
        self.state: list | None = None
        self.eps: list[np.ndarray] | None = None
        self.steps_done = 0

    # -- arithmetic supplied by subclasses --------------------------------------
    def _zero_state(self, batch: int) -> tuple[list, list[np.ndarray]]:
        raise NotImplementedError

    def _rate(self, st) -> np.ndarray:
        """The rate a layer sends up (what the next layer and the output see)."""
        raise NotImplementedError

    def _output_error(self, top: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def _layer_step(self, l: int, old, p: np.ndarray, d: np.ndarray):
        """New state of layer ``l`` from its old state, presynaptic rates p and error d."""
        raise NotImplementedError

    def _send_down(self, l: int, st) -> np.ndarray:
        """The error layer ``l`` (>= 1) sends to the layer below."""
        raise NotImplementedError

    def _learn(self, new: list, pres: list[np.ndarray]) -> None:
        raise NotImplementedError

    def _prepare(self, x: np.ndarray, y: np.ndarray | None):
        """Convert checked float streams into what ``step`` consumes."""
        raise NotImplementedError

    def _var(self, st, var: str) -> np.ndarray:
        """The recorded array of state variable ``var`` (u, u_prosp, r, v, e)."""
        return getattr(st, var)

    def _results(self, rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Recorded arrays in float units plus the final parameters."""
        raise NotImplementedError

    # -- state ------------------------------------------------------------------
    @property
    def batch(self) -> int | None:
        return None if self.state is None else self.state[0].u.shape[0]

    def reset(self, batch: int = 1) -> None:
        """Zero every state variable (the state before step 0), for ``batch`` copies."""
        self.state, self.eps = self._zero_state(batch)
        self.steps_done = 0

    # -- stepping ---------------------------------------------------------------
    def step(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Advance one step with input x [B, in] and target y (or None); return output [B, out].

        The output is the top layer's rate from the end of the previous step. ``x`` and
        ``y`` are in the engine's own units (see ``_prepare``).
        """
        old, eps_old = self.state, self.eps
        n_layers = len(old)
        output = self._rate(old[-1])
        d_top = self._output_error(output, y)
        new = []
        pres: list[np.ndarray] = []
        eps_new: list[np.ndarray] = []
        for l in range(n_layers):
            p = x if l == 0 else self._rate(old[l - 1])
            d = d_top if l == n_layers - 1 else eps_old[l + 1]
            st = self._layer_step(l, old[l], p, d)
            # nothing below the first layer receives its error
            eps_new.append(self._send_down(l, st) if l > 0 else eps_old[0])
            new.append(st)
            pres.append(p)
        self.state, self.eps = new, eps_new
        if self.learning:
            self._learn(new, pres)
        self.steps_done += 1
        return output

    def run(self, inputs, targets=None, record: Record = False, reset: bool = False,
            progress: bool = False) -> dict[str, np.ndarray]:
        """Run ``T`` steps and return the traces (golden key layout, float units).

        Parameters
        ----------
        inputs : array [T, in] or [T, batch, in]
        targets : array, optional
            ``mse``: [T, out] or [T, batch, out]; ``ce``: [T] or [T, batch] class indices.
            Without targets the output error is zero.
        record : bool or iterable of str
            Which per-step variables to record (see :func:`lava_gle.traces.resolve_record`).
            Final ``W.L``, ``b.L`` (and ``tau_m.L`` when learned) are always returned.
        reset : bool
            Start from the zero state; otherwise continue from the last run (the first run
            always starts from zero).
        progress : bool
            Show a progress bar.

        Returns
        -------
        dict of str -> ndarray, float64 copies.
        """
        x, y = prepare_streams(self.net, inputs, targets)
        T, B = x.shape[:2]
        if not (reset or self.state is None) and B != self.batch:
            raise ShapeError(f"inputs have batch {B} but the engine's state has batch "
                             f"{self.batch}; pass reset=True to start over with batch {B}")
        require_memory(self.net, self.backend, steps=T, batch=B, record=record, built=True)
        if reset or self.state is None:
            self.reset(B)
        x, y = self._prepare(x, y)
        names = self.net.layer_names
        keys = resolve_record(record, names)
        rec = {k: np.empty((T, B, self._width(k)), self.record_dtype) for k in sorted(keys)}
        slots = [(k, names.index(k.split(".", 1)[1]), k.split(".", 1)[0])
                 for k in rec if k != "output"]
        out_rec = rec.get("output")
        steps = tqdm(range(T), desc=self.label, unit="step", disable=not progress,
                     mininterval=0.5)
        var = self._var
        for t in steps:
            out = self.step(x[t], None if y is None else y[t])
            if out_rec is not None:
                out_rec[t] = out
            for key, li, name in slots:
                rec[key][t] = var(self.state[li], name)
        return self._results(rec)

    def _width(self, key: str) -> int:
        if key == "output":
            return self.net.output_size
        return self.net.layer(key.split(".", 1)[1]).size


class Engine(SteppedEngine):
    """Simulate (and train) a GLE network with NumPy in floating point.

    Parameters
    ----------
    net : Network
        The validated description; its initial weights are copied.
    dtype : numpy dtype
        ``np.float64`` (default, matches the golden cases to ~1e-12) or ``np.float32``.
    optimizer : object with ``step(params, grads)``, optional
        Applied to the local signals when learning is enabled; default
        ``SGD(learning.eta, learning.eta_tau)``, which is GLE's own rule.
    allow_nan : bool
        A :meth:`run` that produces NaN or inf (diverges) raises
        :class:`~lava_gle.errors.DivergenceError` naming the first layer, variable and
        step (default); True keeps going, warns once and sets :attr:`divergence`. Bare
        :meth:`step` calls are not watched.

    Attributes
    ----------
    weights, biases : list of ndarray
        W_l [n_l, n_{l-1}] and b_l [n_l], updated in place while learning.
    tau_m : list of ndarray [n_l]
        Membrane time constants (learned when ``learning.learn_tau``).
    state : list of NeuronState or None
        Per-layer state [batch, n_l] at the end of the last step.
    divergence : DivergenceError or None
        Where the first NaN or inf appeared (kept when ``allow_nan`` lets the run go on).
    """

    def __init__(self, net: Network, dtype=np.float64, optimizer=None,
                 allow_nan: bool = False):
        super().__init__(net)
        self.allow_nan = allow_nan
        self.divergence: DivergenceError | None = None
        self._fp_errors: set[str] = set()
        self._fp_finite: set[str] = set()
        self.dtype = np.dtype(dtype).type
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.record_dtype = self.dtype
        lrn = net.learning
        self.weights = [net.initial_weights(i).astype(self.dtype) for i in range(len(net.layers))]
        self.biases = [net.initial_biases(i).astype(self.dtype) for i in range(len(net.layers))]
        fb = [net.feedback_weights(i) for i in range(len(net.layers))]
        self.feedback = [None if b is None else b.astype(self.dtype) for b in fb]
        self.consts = [F.NeuronConstants.build(net.dt, l.tau_m, l.tau_r, lrn.gamma,
                                               lrn.prospective_errors, l.phi, l.size, self.dtype)
                       for l in net.layers]
        self.tau_m = [c.tau_m for c in self.consts]  # same arrays: learning tau_m updates them
        self.optimizer = optimizer if optimizer is not None else SGD(lrn.eta, lrn.eta_tau)

    def parameters(self) -> dict[str, np.ndarray]:
        """The learnable arrays by name (``W.L``, ``b.L``, ``tau_m.L``); views, not copies."""
        out = {}
        for layer, w, b, tau in zip(self.net.layers, self.weights, self.biases, self.tau_m):
            out[f"W.{layer.name}"] = w
            out[f"b.{layer.name}"] = b
            out[f"tau_m.{layer.name}"] = tau
        return out

    # -- divergence ---------------------------------------------------------------
    def run(self, inputs, targets=None, record: Record = False, reset: bool = False,
            progress: bool = False) -> dict[str, np.ndarray]:
        """:meth:`SteppedEngine.run`, watching for NaN and inf.

        NumPy reports each overflow, invalid operation or division by zero of the run to
        this engine instead of warning; at the end of such a step the state, the errors
        sent down and the parameters are searched for NaN and inf (a run without such
        reports costs no search). The first one found raises
        :class:`~lava_gle.errors.DivergenceError` (layer, variable, step), or with
        ``allow_nan`` is warned about once and kept in :attr:`divergence`. Reports that
        left everything finite are warned about at the end of the run, as NumPy would.
        """
        before = self.divergence
        self._fp_finite = set()
        with np.errstate(over="call", invalid="call", divide="call", call=self._fp_error):
            traces = super().run(inputs, targets, record=record, reset=reset,
                                 progress=progress)
        if self.divergence is None:
            # a NaN or inf that raised no flag in this thread (BLAS may compute elsewhere)
            found = first_non_finite(traces, self.net.layer_names)
            if found is not None:
                layer, var, t, value = found
                self._diverged(layer, var, None if t is None
                               else self.steps_done - len(inputs) + t, value)
        if self._fp_finite:
            warnings.warn(f"{', '.join(sorted(self._fp_finite))} encountered in the float "
                          "engine (the state stayed finite)", RuntimeWarning, stacklevel=2)
        if self.divergence is not before:
            warnings.warn(f"{self.divergence.describe()}; continuing (allow_nan)",
                          RuntimeWarning, stacklevel=2)
        return traces

    def _fp_error(self, kind: str, flag: int) -> None:
        """NumPy's floating-point error callback (``np.errstate(call=...)``)."""
        self._fp_errors.add(kind)

    def step(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        output = super().step(x, y)
        if self._fp_errors:
            kinds, self._fp_errors = self._fp_errors, set()
            if self.divergence is None and not self._check_finite():
                self._fp_finite |= kinds
        return output

    def _check_finite(self) -> bool:
        """Search the state, the errors sent down and the parameters at the end of this
        step for NaN and inf; False if there is none."""
        names = self.net.layer_names
        arrays = {f"{var}.{name}": getattr(st, var)[None]
                  for name, st in zip(names, self.state) for var in STATE_VARS}
        arrays.update({f"eps.{name}": eps[None] for name, eps in zip(names[1:], self.eps[1:])})
        arrays.update(self.parameters())
        found = first_non_finite(arrays, names)
        if found is None:
            return False
        layer, var, _, value = found
        self._diverged(layer, var, self.steps_done - 1, value)
        return True

    def _diverged(self, layer: str, var: str, step: int | None, value: float) -> None:
        self.divergence = DivergenceError("numpy", layer, var, step, value)
        if not self.allow_nan:
            raise self.divergence

    # -- the float arithmetic ---------------------------------------------------
    def _zero_state(self, batch: int):
        state = [F.zero_state((batch, l.size), self.dtype) for l in self.net.layers]
        eps = [np.zeros((batch, n), self.dtype) for n in self.net.sizes[:-1]]
        return state, eps

    def _rate(self, st: F.NeuronState) -> np.ndarray:
        return st.r

    def _output_error(self, top: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        if y is None:
            return np.zeros_like(top)
        lrn = self.net.learning
        return F.output_error(top, y, lrn.loss, lrn.beta).astype(self.dtype, copy=False)

    def _layer_step(self, l: int, old: F.NeuronState, p: np.ndarray,
                    d: np.ndarray) -> F.NeuronState:
        s = F.forward_drive(self.weights[l], self.biases[l], p)
        return F.neuron_step(old.u, old.v, old.r_prime, s, d, self.consts[l])

    def _send_down(self, l: int, st: F.NeuronState) -> np.ndarray:
        back = self.weights[l] if self.feedback[l] is None else self.feedback[l]
        return F.backward_error(back, st.e)

    def _learn(self, new: list[F.NeuronState], pres: list[np.ndarray]) -> None:
        lrn = self.net.learning
        params, grads = {}, {}
        for layer, st, p, w, b, tau in zip(self.net.layers, new, pres, self.weights,
                                           self.biases, self.tau_m):
            g_w, g_b = F.local_gradients(st.e, p)
            params[f"W.{layer.name}"], grads[f"W.{layer.name}"] = w, g_w
            if layer.bias:
                params[f"b.{layer.name}"], grads[f"b.{layer.name}"] = b, g_b
            if lrn.learn_tau:
                params[f"tau_m.{layer.name}"] = tau
                grads[f"tau_m.{layer.name}"] = F.tau_m_gradient(st.e, st.udot)
        self.optimizer.step(params, grads)
        if lrn.learn_tau:
            for tau in self.tau_m:
                np.maximum(tau, self.net.tau_m_min, out=tau)

    def _prepare(self, x: np.ndarray, y: np.ndarray | None):
        x = x.astype(self.dtype, copy=False)
        if y is not None and y.dtype.kind == "f":
            y = y.astype(self.dtype, copy=False)
        return x, y

    def _results(self, rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = {k: v.astype(np.float64) for k, v in rec.items()}
        for name, w, b, tau in zip(self.net.layer_names, self.weights, self.biases, self.tau_m):
            result[f"W.{name}"] = w.astype(np.float64)
            result[f"b.{name}"] = b.astype(np.float64)
            if self.net.learning.learn_tau:
                result[f"tau_m.{name}"] = tau.astype(np.float64)
        return result
