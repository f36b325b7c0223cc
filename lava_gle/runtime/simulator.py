"""``LavaNetwork``: run a GLE network in Lava's CPU simulation from Python.

Example
-------
>>> import numpy as np
>>> from lava_gle import load_network
>>> from lava_gle.runtime import LavaNetwork
>>> net = load_network("tests/data/golden/visible_mlp/network.json")
>>> with LavaNetwork(net, backend="float") as sim:            # doctest: +SKIP
...     traces = sim.run(np.load("tests/data/golden/visible_mlp/inputs.npy"),
...                      np.load("tests/data/golden/visible_mlp/targets.npy"))
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from lava_gle.description import check_network
from lava_gle.errors import DivergenceError, LavaGleError
from lava_gle.numerics.engine import backward_results, warn_saturation
from lava_gle.numerics.kernels import FixedKernels, FloatKernels, with_normaliser_states
from lava_gle.runtime.builder import BuiltNetwork, build_fused, build_structural
from lava_gle.runtime.control import run_in_chunks, stop_runtime
from lava_gle.runtime.selection import run_config
from lava_gle.memory import require_memory
from lava_gle.network import Network
from lava_gle.runtime.shared_memory import remove_directory, shared_directory
from lava_gle.numerics.streams import prepare_streams
from lava_gle.traces import Record, first_non_finite, resolve_record

#: ``backend`` argument -> Lava model tag.
BACKEND_TAGS = {"float": "floating_pt", "fixed": "fixed_pt"}


class LavaNetwork:
    """A GLE network simulated as Lava Processes on the CPU; a context manager.

    Each :meth:`run` builds the Processes around the network's layer kernels
    (:mod:`lava_gle.numerics.kernels`; fixed point: quantised once, at the first run), starts from
    the zero state (as the engine does on its first run), runs in chunks with an optional
    progress bar, reads every recorded trace once from shared memory, and stops the
    Lava runtime, also when an exception or Ctrl-C interrupts the run. Learned
    parameters carry over to the next :meth:`run` exactly (in the kernels' own units);
    the neuron state does not.

    Parameters
    ----------
    net : Network
    backend : ``"float"`` (``floating_pt`` models) or ``"fixed"`` (``fixed_pt`` models)
    fused : bool
        False: one Lava Process per neuron population and per projection (plus the
        streams). True: the whole network in one Process (fast; identical traces).
    chunk : int or None
        Steps per blocking ``run`` call (progress granularity); default ~1/50 of the run,
        at least 100.
    allow_nan : bool
        A float run whose traces or parameters come back with NaN or inf raises
        :class:`~lava_gle.errors.DivergenceError` naming the first layer, variable and
        step (default); True returns them, warns once and sets :attr:`divergence`.
    qnet : QuantizedNetwork, optional
        For ``backend="fixed"``: the integer formats and parameters to run (e.g. a
        deployment bundle's) instead of ``quantize_network(net)``.

    Lava has no batch axis: inputs with batch B > 1 run the B sequences one after the
    other (state reset between them) when learning is off, and are refused when it is on.
    """

    def __init__(self, net: Network, backend: str = "float", fused: bool = False,
                 chunk: int | None = None, allow_nan: bool = False, qnet=None) -> None:
        if backend not in BACKEND_TAGS:
            raise LavaGleError(f"backend={backend!r}: choose one of {sorted(BACKEND_TAGS)}")
        if chunk is not None and chunk < 1:
            raise LavaGleError(f"chunk={chunk}: must be a positive number of steps")
        self.net = check_network(net)
        self.backend = backend
        self.tag = BACKEND_TAGS[backend]
        self.fused = fused
        self.chunk = chunk
        self.allow_nan = allow_nan
        self.divergence: DivergenceError | None = None
        self._work = f"lava-{backend}{'-fused' if fused else ''}"
        require_memory(net, self._work)
        n = len(net.layers)
        self._weights = [net.initial_weights(i) for i in range(n)]
        self._biases = [net.initial_biases(i) for i in range(n)]
        self._tau_m = [layer.tau_m_array() for layer in net.layers]
        self.built: BuiltNetwork | None = None
        if qnet is not None:
            qnet.check_quantizes(net)
        self.qnet = qnet
        #: built at the first run, kept with the learned parameters for the next
        self._kernels: FloatKernels | FixedKernels | None = None
        self._running = False  # True while run() executes: parameters live in shared memory
        self._directory: str | None = None

    # -- context manager ------------------------------------------------------------
    def __enter__(self) -> "LavaNetwork":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def close(self) -> None:
        """Stop the Lava runtime (if running) and delete the shared arrays. Idempotent."""
        try:
            stop_runtime(self.built.root if self.built is not None else None)
        finally:
            remove_directory(self._directory)
            self._directory = None

    # -- parameters -----------------------------------------------------------------
    def _index(self, name: str) -> int:
        try:
            return self.net.index(name)
        except KeyError:
            raise LavaGleError(f"no layer named {name!r}; layers are "
                               f"{self.net.layer_names}") from None

    def get_weights(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of (W [n, m], b [n]) of layer ``name``, in float units.

        During a run (from a ``run`` callback) they are the live values the models hold
        in shared memory; otherwise the values after the last run.
        """
        i = self._index(name)
        if self._running:
            handle, k = self.built.layers[name], self._kernels.layers[i]
            return (np.array(k.decode("W", handle.arrays["W"].read()), np.float64),
                    np.array(k.decode("b", handle.arrays["b"].read()), np.float64))
        return self._weights[i].copy(), self._biases[i].copy()

    def set_weights(self, name: str, weights, biases=None) -> None:
        """Set W (and b) of layer ``name`` for the next run; shapes must match."""
        i = self._index(name)
        w = np.array(weights, dtype=np.float64)
        if w.shape != self.net.weight_shape(i):
            raise LavaGleError(f"set_weights({name!r}): weights have shape {list(w.shape)}, "
                               f"layer needs {list(self.net.weight_shape(i))}")
        self._weights[i] = w
        if biases is not None:
            b = np.array(biases, dtype=np.float64)
            if b.shape != (self.net.layers[i].size,):
                raise LavaGleError(f"set_weights({name!r}): biases have shape {list(b.shape)},"
                                   f" layer needs [{self.net.layers[i].size}]")
            if not self.net.layers[i].bias and np.any(b != 0):
                raise LavaGleError(f"set_weights({name!r}): layer has bias: false, so its "
                                   f"biases must stay zero")
            self._biases[i] = b
        if self._kernels is not None:  # the normalisers go on from where they stand
            self.net = with_normaliser_states(self.net, self._kernels)
        self._kernels = None  # the next run builds (quantises) them from these values
        self.qnet = None

    def parameters(self) -> dict[str, np.ndarray]:
        """Copies of every learnable array after the last run, in the kernels' own units and
        dtypes, named as :meth:`lava_gle.numerics.engine.Engine.state_dict` names them
        (``W.l``, ``b.l``, l the layer index; fixed point: integers, with ``B.l``,
        ``tag_W.l``, ``tag_b.l``, ``tag_B.l`` and ``tau_m.l`` where the kernels have them).
        Empty before the first run."""
        if self._kernels is None:
            return {}
        return {f"{kind}.{l}": arr.copy() for l, k in enumerate(self._kernels.layers)
                for kind, arr in k.parameters().items()}

    @property
    def network(self) -> Network:
        """The description with the current parameters (weights, biases, learned tau_m,
        and after a run the normalisers' state)."""
        net = self.net.with_parameters(self._weights, self._biases)
        if self.net.learning.learn_tau:
            net = replace(net, layers=tuple(replace(l, tau_m=t.copy())
                                            for l, t in zip(net.layers, self._tau_m)))
        return net if self._kernels is None else self._kernels.describe(net)

    # -- running --------------------------------------------------------------------
    def run(self, inputs, targets=None, record: Record = True, progress: bool = False,
            callback: Callable[[int], None] | None = None,
            config_class: type | None = None) -> dict[str, np.ndarray]:
        """Run the network on ``inputs`` and return its traces (golden key layout).

        Parameters
        ----------
        inputs : array [T, in] or [T, batch, in]
        targets : array, optional
            ``mse``: [T, (batch,) out]; ``ce``: [T, (batch)] class indices.
        record : bool or iterable of str
            Per-step keys to record, as for the engine; final ``W.L``/``b.L`` (and
            ``tau_m.L`` when learned) are always returned.
        progress : bool
            Show a progress bar (advances per chunk).
        callback : callable(steps_done), optional
            Called after every chunk.
        config_class : Lava run-config class, optional
            ``Loihi2SimCfg`` (default: CPU simulation) or ``Loihi2HwCfg`` (Loihi 2, needs
            lava-loihi; see :mod:`lava_gle.mappings.deploy`).

        Returns
        -------
        dict of str -> float64 ndarray, per-step keys [T, batch, size].
        """
        net = self.net
        x, y = prepare_streams(net, inputs, targets)
        T, B = x.shape[:2]
        if B > 1 and net.learning.enabled:
            raise LavaGleError(
                f"inputs have batch {B} with learning enabled: Lava processes have no batch "
                f"axis and GLE learning averages over the batch, so this cannot run in "
                f"Lava; pass batch 1 (inputs [T, {net.input.size}]), or set "
                f"learning.enabled: false to run the {B} sequences one after another")
        # one Lava step per row: the B streams run one after another
        require_memory(net, self._work, steps=B * T, record=record, built=True)
        rows_x = x.transpose(1, 0, 2).reshape(B * T, -1)
        rows_y = None
        if y is not None:
            rows_y = (y.T.reshape(B * T, 1) if net.learning.loss == "ce"
                      else y.transpose(1, 0, 2).reshape(B * T, -1)).astype(np.float64)
        keys = resolve_record(record, net.layer_names)
        self.close()  # a previous run's runtime and files, if any
        self._directory = shared_directory()
        build = build_fused if self.fused else build_structural
        if self._kernels is None:
            self._kernels = self._build_kernels()  # fixed point: quantised here, once
        try:
            self.built = build(self._kernels, rows_x, rows_y, directory=self._directory,
                               record=keys, reset_interval=T if B > 1 else 0)
            cfg = run_config(self.built.processes, self.tag,
                             **({} if config_class is None else {"config_class": config_class}))
            chunk = self.chunk or max(100, -(-B * T // 50))
            self._running = True
            run_in_chunks(self.built.root, cfg, B * T, chunk=chunk, progress=progress,
                          desc=f"lava {self.backend}{' fused' if self.fused else ''}",
                          callback=callback, directory=self._directory)
            traces = self._collect(T, B)
        finally:
            self._running = False
            self.close()
        if self.tag == "floating_pt":
            self._check_finite(traces)
        return traces

    def _check_finite(self, traces: dict[str, np.ndarray]) -> None:
        """Raise (or with ``allow_nan`` warn about) the first NaN or inf of a float run."""
        found = first_non_finite(traces, self.net.layer_names)
        if found is None:
            return
        backend = f"lava-{self.backend}{'-fused' if self.fused else ''}"
        self.divergence = DivergenceError(backend, *found)
        if not self.allow_nan:
            raise self.divergence
        warnings.warn(f"{self.divergence.describe()}; continuing (allow_nan)", RuntimeWarning,
                      stacklevel=3)

    def _build_kernels(self):
        """The layer kernels of the current parameters, in the selected arithmetic."""
        if self.backend == "float":
            return FloatKernels(self.network)
        if self.qnet is not None:
            return FixedKernels(self.qnet)
        from lava_gle.quantize import quantize_network
        return FixedKernels(quantize_network(self.network))  # warns before the run

    def _collect(self, T: int, B: int) -> dict[str, np.ndarray]:
        traces: dict[str, np.ndarray] = {}
        kernels = self._kernels
        for name, handle in self.built.layers.items():
            i, k = handle.index, kernels.layers[handle.index]
            learned = {kind: a.read() for kind, a in handle.arrays.items()}
            drift = learned.pop("drift", None)  # chip timing: the backward array's figures
            k.load(learned)  # the next run starts from them, exactly
            if drift is not None:
                k.drift[...] = drift
                traces.update(backward_results(k))
            self._weights[i] = np.array(k.decode("W", k.W), np.float64)
            self._biases[i] = np.array(k.decode("b", k.b), np.float64)
            if "tau_m" in learned:
                self._tau_m[i] = np.array(k.tau_m, np.float64)
            if handle.recording is not None:
                buf = handle.recording.buffer.read()
                for j, var in enumerate(handle.recording.names):
                    key = "output" if var == "output" else f"{var}.{name}"
                    raw = buf[:, j, :].reshape(B, T, -1).transpose(1, 0, 2)
                    values = (kernels.decode_output(raw) if var == "output"
                              else k.decode(var, raw))
                    traces[key] = np.ascontiguousarray(values, dtype=np.float64)
        if self.built.saturation is not None:
            counts = self.built.saturation.read()
            traces.update({f"sat.{k}": np.array(n) for k, n in counts.items()})
            warn_saturation(counts, stacklevel=4)
        for i, name in enumerate(self.net.layer_names):
            traces[f"W.{name}"] = self._weights[i].copy()
            traces[f"b.{name}"] = self._biases[i].copy()
            if self.net.learning.enabled and self.net.learning.learn_tau:
                traces[f"tau_m.{name}"] = self._tau_m[i].copy()
        return traces
