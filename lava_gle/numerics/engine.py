"""The vectorised NumPy GLE engine (batch axis): one loop over layer kernels.

It follows the discrete-time semantics of ``tests/data/golden/README.md`` exactly:
all layers update synchronously from the previous step's state (one step per layer
hop, forwards and backwards), the first layer sees the current input, the output
error is formed from the output layer's previous rate, and learning is applied
after the step with the batch mean of the local signals.

The arithmetic lives in the layer kernels of :mod:`lava_gle.numerics.kernels`, which the Lava
ProcessModels call too: :class:`Engine` runs float kernels (``--backend numpy``) and
:class:`FixedEngine` the same loop with Loihi-2-style integer kernels
(``--backend numpy-fixed``).

Example
-------
>>> import numpy as np
>>> from lava_gle import load_network
>>> from lava_gle.numerics.engine import Engine, FixedEngine
>>> net = load_network("tests/data/golden/visible_mlp/network.json")
>>> traces = Engine(net).run(np.zeros((10, 1, 2)), record=["r"])
>>> traces["r.hidden"].shape
(10, 1, 4)
>>> traces = FixedEngine(net).run(np.zeros((10, 1, 2)), record=["r"])
>>> traces["r.hidden"].shape, int(traces["sat.u.hidden"])
((10, 1, 4), 0)
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from lava_gle.errors import DivergenceError, LavaGleError, ShapeError
from lava_gle.numerics.kernels import FixedKernels, FloatKernels
from lava_gle.description import check_network
from lava_gle.counts import is_count
from lava_gle.memory import require_memory
from lava_gle.network import Network
from lava_gle.quantize import QuantizationWarning, QuantizedNetwork, quantize_network
from lava_gle.numerics.streams import prepare_streams
from lava_gle.traces import STATE_VARS, Record, first_non_finite, resolve_record


class Engine:
    """Simulate (and train) a GLE network with NumPy.

    Parameters
    ----------
    net : Network
        The validated description; its initial weights are copied.
    dtype : numpy dtype
        Float kernels: ``np.float64`` (default, matches the golden cases to ~1e-12) or
        ``np.float32``.
    optimizer : object with ``step(params, grads)``, optional
        Applied to the local signals (keys ``W.L``, ``b.L``, ``tau_m.L``) when learning
        is enabled; default None: GLE's own rule (``W += eta e p^T``, SGD). Float only.
    allow_nan : bool
        A :meth:`run` that produces NaN or inf (diverges) raises
        :class:`~lava_gle.errors.DivergenceError` naming the first layer, variable and
        step (default); True keeps going, warns once and sets :attr:`divergence`. Bare
        :meth:`step` calls are not watched.
    kernels : FloatKernels or FixedKernels, optional
        The network's layer kernels (default: float kernels of ``net`` in ``dtype``).

    Attributes
    ----------
    kernels : FloatKernels or FixedKernels
        The layers' parameters (native dtype) and arithmetic.
    state : list of per-layer state tuples [batch, n_l] or None
        The state at the end of the last step (``None`` before the first run).
    eps : list of ndarray
        Error each layer sent down at the end of the last step.
    steps_done : int
        Steps since the last reset.
    divergence : DivergenceError or None
        Where the first NaN or inf appeared (kept when ``allow_nan`` lets the run go on).
    """

    #: progress-bar label.
    label = "numpy engine"
    #: backend name in messages, the key of its memory use in :data:`lava_gle.memory.WORK`.
    backend = "numpy"

    def __init__(self, net: Network, dtype=np.float64, optimizer=None,
                 allow_nan: bool = False, *, kernels: FloatKernels | FixedKernels | None = None):
        self.net = check_network(net)
        require_memory(net, self.backend)  # before the kernels draw the weights
        self.kernels = FloatKernels(net, dtype) if kernels is None else kernels
        if optimizer is not None and self.kernels.arithmetic != "float":
            raise LavaGleError(f"the {self.kernels.arithmetic}-point kernels learn with the "
                               f"learning engine's own rule (dW = eta e r^T, learning.eta); "
                               f"they cannot run the optimizer {type(optimizer).__name__}")
        normalised = [k.name for k in self.kernels.layers
                      if getattr(k, "error_scale", None) is not None]
        if optimizer is not None and normalised:
            raise LavaGleError(f"layers {normalised} set error_norm_decay, which normalises "
                               f"the error of GLE's own rule; the optimizer "
                               f"{type(optimizer).__name__} normalises its own way: drop "
                               "error_norm_decay or learn with GLE's rule (no optimizer)")
        scaled = {layer.name: layer.eta_scale for layer in net.layers
                  if layer.eta_scale not in (0.0, 1.0)}
        if optimizer is not None and scaled:
            raise LavaGleError(f"layers set eta_scale {scaled}, a factor of GLE's own rate "
                               f"(learning.eta); the optimizer {type(optimizer).__name__} "
                               "sets its own step sizes: give eta_scale 1 (or 0 to freeze "
                               "a projection) or learn with GLE's rule (no optimizer)")
        if optimizer is not None and net.learning.epoch_steps != 1:
            raise LavaGleError(f"learning.epoch_steps {net.learning.epoch_steps} sums the "
                               f"local signals of GLE's own rule over a learning epoch; the "
                               f"optimizer {type(optimizer).__name__} steps every step: give "
                               "epoch_steps 1 or learn with GLE's rule (no optimizer)")
        self.optimizer = optimizer
        self.learning = net.learning.enabled
        self.allow_nan = allow_nan
        self.divergence: DivergenceError | None = None
        self._fp_errors: set[str] = set()
        self._fp_finite: set[str] = set()
        self.state: list | None = None
        self.eps: list[np.ndarray] | None = None
        self.steps_done = 0

    # -- parameters (float units) ---------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        """W_l [n_l, n_{l-1}] in float units: the live arrays of float kernels (updated in
        place while learning), dequantised copies of fixed ones. Where layer l-1 has gains
        ``g`` (``gain_decay``), a copy ``W_l diag(g)``: the weights of the plain GLE
        network that computes the same with the gains as they are now."""
        layers = self.kernels.layers
        out = [k.decode("W", k.W) for k in layers]
        for l in range(1, len(out)):
            if layers[l - 1].gain is not None:
                out[l] = out[l] * layers[l - 1].gain
        return out

    @property
    def biases(self) -> list[np.ndarray]:
        """b_l [n_l] in float units (as :attr:`weights`)."""
        return [k.decode("b", k.b) for k in self.kernels.layers]

    @property
    def tau_m(self) -> list[np.ndarray]:
        """Membrane time constants [n_l] in the unit of dt (learned when ``learn_tau``)."""
        return [k.tau_m for k in self.kernels.layers]

    @property
    def network(self) -> Network:
        """The description with the engine's current parameters, to continue from: W (not
        folded with the gains, unlike :attr:`weights`), b, tau_m where it learns, and the
        normalisers' state (``normaliser_state``). Fixed point: the integers dequantised,
        with the formats they are in pinned (so the description quantises back to them
        however it was given; weight tags, the bits below the weights' LSB, are not
        kept)."""
        layers = self.kernels.layers
        net = self.net.with_parameters([k.decode("W", k.W) for k in layers], self.biases)
        net = replace(net, layers=tuple(
            replace(layer, tau_m=np.array(k.tau_m, np.float64)) if k.reports_tau_m else layer
            for layer, k in zip(net.layers, layers)))
        return self.kernels.describe(net)

    def parameters(self) -> dict[str, np.ndarray]:
        """The learnable arrays by name (``W.L``, ``b.L``, ``tau_m.L``) in float units."""
        out = {}
        for k, w, b, tau in zip(self.kernels.layers, self.weights, self.biases, self.tau_m):
            out[f"W.{k.name}"], out[f"b.{k.name}"], out[f"tau_m.{k.name}"] = w, b, tau
        return out

    def set_epoch_steps(self, steps: int) -> None:
        """Learning epochs of ``steps`` steps from now on (``learning.epoch_steps`` of
        :attr:`net` as well): a schedule's change between training epochs, as
        ``kernels.set_eta`` is the rate's. Refused (:class:`~lava_gle.errors.LavaGleError`)
        with an optimizer, or where a learning epoch is begun (its sums would be dropped).
        Saturation counts the new length has no counter for (fixed point:
        ``esum.<layer>`` when epochs of one step follow longer ones) are kept."""
        check_network(self.net.with_learning(epoch_steps=steps))
        if self.optimizer is not None and steps != 1:
            raise LavaGleError(f"learning epochs of {steps} steps sum the local signals of "
                               f"GLE's own rule; the optimizer {type(self.optimizer).__name__}"
                               " steps every step")
        self.kernels.set_epoch_steps(steps)
        self.net = self.net.with_learning(epoch_steps=steps)

    # -- state ------------------------------------------------------------------------
    @property
    def batch(self) -> int | None:
        return None if self.state is None else self.state[0].u.shape[0]

    def reset(self, batch: int = 1) -> None:
        """Zero every state variable (the state before step 0), for ``batch`` copies."""
        if not is_count(batch):
            raise ShapeError(f"reset: batch must be a whole number of copies >= 1, got "
                             f"{batch!r}")
        self.state = [k.zero_state((batch,)) for k in self.kernels.layers]
        # eps[l]: the error layer l sends down (input-sized for l = 0, never sent)
        self.eps = [np.zeros((batch, n), self.kernels.record_dtype) for n in self.net.sizes[:-1]]
        self.steps_done = 0
        for k in self.kernels.layers:
            if k.epoch is not None:  # the neurons' epoch sums are state too
                k.epoch.reset()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything that evolves, as named copies in native dtype: parameters
        ``W.l``/``b.l``/``tau_m.l`` (l the layer index; fixed: integer T, only where it
        learns; chip timing: ``B.l`` and its ``drift.l`` figures), state
        ``state.l.<field>``, errors sent down ``eps.l``,
        the begun learning epoch's sums ``epoch.l.count`` / ``.l`` / ``.p`` (with
        ``epoch_steps`` > 1), ``steps_done``,
        saturation counts ``sat.<key>`` (fixed) and the optimiser's ``optim.<key>``."""
        out: dict[str, np.ndarray] = {}
        for l, k in enumerate(self.kernels.layers):
            for kind, arr in k.parameters().items():
                out[f"{kind}.{l}"] = arr.copy()
            if getattr(k, "B", None) is not None:  # chip timing: the drift figures so far
                out[f"drift.{l}"] = k.drift.copy()
        if self.state is not None:
            for l, st in enumerate(self.state):
                for field, value in st._asdict().items():
                    out[f"state.{l}.{field}"] = value.copy()
            for l, eps in enumerate(self.eps):
                out[f"eps.{l}"] = eps.copy()
            for l, k in enumerate(self.kernels.layers):
                if k.epoch is not None:
                    out.update(k.epoch.state(f"epoch.{l}."))
        out["steps_done"] = np.array(self.steps_done)
        if self.kernels.saturation is not None:
            for key, n in self.kernels.saturation.counts.items():
                out[f"sat.{key}"] = np.array(n)
        if self.optimizer is not None:
            for key, value in self.optimizer.state_dict().items():
                out[f"optim.{key}"] = value
        return out

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Put the arrays of :meth:`state_dict` back (in place). A state of another network
        or arithmetic is refused before anything changes: a missing parameter raises the
        mapping's KeyError naming it; one of another shape, float where this engine holds
        integers or the other way round, or neuron states of other layer sizes, a
        :class:`~lava_gle.errors.ShapeError`. Saturation
        counts without a counter here (``esum.<layer>`` of longer learning epochs before,
        :meth:`set_epoch_steps`) are put back as well."""
        self._check_state(arrays)
        for l, k in enumerate(self.kernels.layers):
            k.load({kind: arrays[f"{kind}.{l}"] for kind in k.parameters()})
            if getattr(k, "B", None) is not None:
                k.drift[...] = arrays[f"drift.{l}"]
        if "state.0.u" in arrays:
            self.reset(arrays["state.0.u"].shape[0])
            self.state = [st._replace(**{f: arrays[f"state.{l}.{f}"].copy() for f in st._fields})
                          for l, st in enumerate(self.state)]
            self.eps = [arrays[f"eps.{l}"].copy() for l in range(len(self.eps))]
            for l, k in enumerate(self.kernels.layers):
                if k.epoch is not None:
                    k.epoch.load(arrays, f"epoch.{l}.")
        self.steps_done = int(arrays["steps_done"])
        if self.kernels.saturation is not None:
            counts = self.kernels.saturation.counts
            for key in counts:
                counts[key] = int(arrays[f"sat.{key}"])
            counts.update({k[len("sat."):]: int(v) for k, v in arrays.items()
                           if k.startswith("sat.") and k[len("sat."):] not in counts})
        if self.optimizer is not None:
            self.optimizer.load_state_dict({k[len("optim."):]: v for k, v in arrays.items()
                                            if k.startswith("optim.")})

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Refuse ``arrays`` unless its parameters match this engine's kernels in key,
        shape and integer-ness, and its neuron states the layers' sizes."""
        arith = "fixed-point" if self.kernels.arithmetic == "fixed" else "float"
        mine = f"this {arith} engine of {self.net.name!r}"
        for l, k in enumerate(self.kernels.layers):
            for kind, own in k.parameters().items():
                key = f"{kind}.{l}"  # a missing one raises the mapping's KeyError
                got, own = np.asarray(arrays[key]), np.asarray(own)
                if got.shape != own.shape or (np.issubdtype(got.dtype, np.integer)
                                              != np.issubdtype(own.dtype, np.integer)):
                    raise ShapeError(f"the state's {key!r} is {got.dtype} {list(got.shape)} "
                                     f"where {mine} holds {own.dtype} {list(own.shape)}: it "
                                     "is the state of another network or arithmetic")
            u = arrays.get(f"state.{l}.u")
            if u is not None and np.shape(u)[1:] != (k.size,):
                raise ShapeError(f"the state's 'state.{l}.u' is {list(np.shape(u))} where "
                                 f"layer {k.name!r} of {mine} has {k.size} neurons: it is the "
                                 "state of another network")

    # -- stepping -----------------------------------------------------------------------
    def step(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Advance one step with input x [B, in] and target y (or None); return output [B, out].

        The output is the top layer's rate from the end of the previous step. ``x`` and
        ``y`` are in the kernels' own units (:meth:`FloatKernels.encode`).
        """
        layers, old, eps_old = self.kernels.layers, self.state, self.eps
        top = len(layers) - 1
        output = layers[top].rate(old[top])
        d_top = self.kernels.output_error(output, y)
        new, pres = [], []
        eps_new = list(eps_old)
        for l, k in enumerate(layers):
            p = x if l == 0 else layers[l - 1].rate(old[l - 1])
            st = k.step(old[l], k.drive(p), d_top if l == top else eps_old[l + 1])
            if l > 0:  # nothing below the first layer receives its error
                eps_new[l] = k.error_down(st.e)
            new.append(st)
            pres.append(p)
        self.state, self.eps = new, eps_new
        if self.learning:
            self.kernels.learn(new, old, pres, self.steps_done, self.optimizer)
        self.steps_done += 1
        if self._fp_errors:
            kinds, self._fp_errors = self._fp_errors, set()
            if self.divergence is None and not self._check_finite():
                self._fp_finite |= kinds
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

        NumPy reports each overflow, invalid operation or division by zero of the run to
        the engine instead of warning; at the end of such a step the state, the errors
        sent down and the parameters are searched for NaN and inf (a run without such
        reports costs no search). The first one found raises
        :class:`~lava_gle.errors.DivergenceError` (layer, variable, step), or with
        ``allow_nan`` is warned about once and kept in :attr:`divergence`. Reports that
        left everything finite are warned about at the end of the run, as NumPy would.
        """
        before = self.divergence
        self._fp_finite = set()
        with np.errstate(over="call", invalid="call", divide="call", call=self._fp_error):
            traces = self._run(inputs, targets, record, reset, progress)
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

    def _run(self, inputs, targets, record: Record, reset: bool,
             progress: bool) -> dict[str, np.ndarray]:
        x, y = prepare_streams(self.net, inputs, targets)
        T, B = x.shape[:2]
        if not (reset or self.state is None) and B != self.batch:
            raise ShapeError(f"inputs have batch {B} but the engine's state has batch "
                             f"{self.batch}; pass reset=True to start over with batch {B}")
        require_memory(self.net, self.backend, steps=T, batch=B, record=record, built=True)
        if reset or self.state is None:
            self.reset(B)
        x, y = self.kernels.encode(x, y)
        layers = self.kernels.layers
        names = self.net.layer_names
        keys = resolve_record(record, names)
        rec = {k: np.empty((T, B, self._width(k)), self.kernels.record_dtype)
               for k in sorted(keys)}
        slots = [(rec[k], names.index(k.split(".", 1)[1]), k.split(".", 1)[0])
                 for k in rec if k != "output"]
        out_rec = rec.get("output")
        steps = tqdm(range(T), desc=self.label, unit="step", disable=not progress,
                     mininterval=0.5)
        for t in steps:
            out = self.step(x[t], None if y is None else y[t])
            if out_rec is not None:
                out_rec[t] = out
            for buf, li, name in slots:
                buf[t] = layers[li].var(self.state[li], name)
        return self._results(rec)

    def _width(self, key: str) -> int:
        if key == "output":
            return self.net.output_size
        return self.net.layer(key.split(".", 1)[1]).size

    def _decode(self, key: str, raw: np.ndarray) -> np.ndarray:
        if key == "output":
            return self.kernels.decode_output(raw)
        var, name = key.split(".", 1)
        return self.kernels.layers[self.net.index(name)].decode(var, raw)

    def _results(self, rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Recorded arrays and the final parameters as float64 copies."""
        out = {key: np.array(self._decode(key, arr), dtype=np.float64)
               for key, arr in rec.items()}
        for k in self.kernels.layers:
            out[f"W.{k.name}"] = np.array(k.decode("W", k.W), dtype=np.float64)
            out[f"b.{k.name}"] = np.array(k.decode("b", k.b), dtype=np.float64)
            if k.reports_tau_m:
                out[f"tau_m.{k.name}"] = np.array(k.tau_m, dtype=np.float64)
        return out

    # -- divergence -----------------------------------------------------------------------
    def _fp_error(self, kind: str, flag: int) -> None:
        """NumPy's floating-point error callback (``np.errstate(call=...)``)."""
        self._fp_errors.add(kind)

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
        self.divergence = DivergenceError(self.backend, layer, var, step, value)
        if not self.allow_nan:
            raise self.divergence


def backward_results(k, dequantize: bool = True) -> dict[str, np.ndarray]:
    """What a chip-timing layer kernel ``k`` (:class:`~lava_gle.numerics.kernels.FixedLayer`
    with a backward array) adds to a run's results: ``W_back.L``, its backward array in
    W's orientation [n, m] (float units, or the integers), and the transpose drift
    ``drift_max.L`` / ``drift_rms.L`` in weight LSBs
    (:meth:`~lava_gle.numerics.kernels.FixedLayer.transpose_drift`)."""
    drift = k.transpose_drift()
    back = k.decode("W", k.B) if dequantize else k.B
    return {f"W_back.{k.name}": np.array(back, dtype=np.float64 if dequantize else np.int64),
            f"drift_max.{k.name}": np.array(drift["max_lsb"]),
            f"drift_rms.{k.name}": np.array(drift["rms_lsb"])}


class FixedEngine(Engine):
    """The engine with Loihi-2-style integer kernels (``--backend numpy-fixed``).

    Traces come back in the golden key layout, dequantised to float units (or as the
    raw integers with ``dequantize=False``), plus one ``sat.<var>.<layer>`` count per
    saturating variable (also warned about at the end of a run, never silent). Under chip
    timing (``fixed_point.timing: chip``) they also hold each backward array and its
    transpose drift (:func:`backward_results`).

    Parameters
    ----------
    net : Network
        The float description (quantised with :func:`quantize_network`), or pass ``qnet``.
    qnet : QuantizedNetwork, optional
        A quantisation to use instead of the default one (e.g. a deployment bundle's).
    dequantize : bool
        Return traces in float units (default) or as the raw integers.

    Attributes
    ----------
    q : QuantizedNetwork
    saturation : dict of str -> int
        ``<var>.<layer>`` (and ``input``, ``target``) -> values clipped so far.
    """

    label = "numpy-fixed engine"
    backend = "numpy-fixed"

    def __init__(self, net: Network, qnet: QuantizedNetwork | None = None,
                 dequantize: bool = True):
        if qnet is not None:
            qnet.check_quantizes(check_network(net))
        q = quantize_network(net) if qnet is None else qnet
        super().__init__(net, kernels=FixedKernels(q))
        self.dequantize = dequantize

    @property
    def q(self) -> QuantizedNetwork:
        return self.kernels.q

    @property
    def saturation(self) -> dict[str, int]:
        return self.kernels.saturation.counts

    def _decode(self, key: str, raw: np.ndarray) -> np.ndarray:
        return super()._decode(key, raw) if self.dequantize else raw

    def _results(self, rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = super()._results(rec)
        if not self.dequantize:
            for k in self.kernels.layers:
                out[f"W.{k.name}"], out[f"b.{k.name}"] = k.W.copy(), k.b.copy()
                if k.t is not None:
                    out[f"tau_m.{k.name}"] = k.t.copy()
        for k in self.kernels.layers:
            if k.B is not None:
                out.update(backward_results(k, self.dequantize))
        for key, n in self.saturation.items():
            out[f"sat.{key}"] = np.array(n)
        warn_saturation(self.saturation, stacklevel=5)
        return out


def warn_saturation(counts: dict[str, int], stacklevel: int) -> None:
    """One :class:`~lava_gle.quantize.QuantizationWarning` listing the nonzero saturation
    counts of a fixed-point run (values clipped so far), from the engine or from the
    counters a Lava run's processes share with the host."""
    clipped = {k: int(n) for k, n in counts.items() if n}
    if clipped:
        warnings.warn("fixed-point saturation (values clipped so far): " +
                      ", ".join(f"{k}={n}" for k, n in sorted(clipped.items())),
                      QuantizationWarning, stacklevel=stacklevel)
