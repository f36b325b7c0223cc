"""The vectorised NumPy GLE engine (batch axis), the reference backend of lava-gle.

It follows the discrete-time semantics of ``tests/data/golden/README.md`` exactly:
all layers update synchronously from the previous step's state (one step per layer
hop, forwards and backwards), the first layer sees the current input, the output
error is formed from the output layer's previous rate, and learning is applied
after the step with the batch mean of the local signals. The arithmetic itself is
in :mod:`lava_gle.arithmetic.floating`, shared with the Lava ProcessModels.

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

import numpy as np
from tqdm.auto import tqdm

from lava_gle.arithmetic import floating as F
from lava_gle.errors import ShapeError
from lava_gle.network import Network
from lava_gle.optim import SGD
from lava_gle.streams import prepare_streams
from lava_gle.traces import Record, resolve_record


class Engine:
    """Simulate (and train) a GLE network with NumPy.

    Parameters
    ----------
    net : Network
        The validated description; its initial weights are copied.
    dtype : numpy dtype
        ``np.float64`` (default, matches the golden cases to ~1e-12) or ``np.float32``.
    optimizer : object with ``step(params, grads)``, optional
        Applied to the local signals when learning is enabled; default
        ``SGD(learning.eta, learning.eta_tau)``, which is GLE's own rule.

    Attributes
    ----------
    weights, biases : list of ndarray
        W_l [n_l, n_{l-1}] and b_l [n_l], updated in place while learning.
    tau_m : list of ndarray [n_l]
        Membrane time constants (learned when ``learning.learn_tau``).
    state : list of NeuronState or None
        Per-layer state [batch, n_l] at the end of the last step.
    """

    def __init__(self, net: Network, dtype=np.float64, optimizer=None):
        self.net = net
        self.dtype = np.dtype(dtype).type
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
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
        self.learning = lrn.enabled
        self.state: list[F.NeuronState] | None = None
        self.eps: list[np.ndarray] | None = None
        self.steps_done = 0

    # -- state ------------------------------------------------------------------
    @property
    def batch(self) -> int | None:
        return None if self.state is None else self.state[0].u.shape[0]

    def reset(self, batch: int = 1) -> None:
        """Zero every state variable (the state before step 0), for ``batch`` copies."""
        self.state = [F.zero_state((batch, l.size), self.dtype) for l in self.net.layers]
        self.eps = [np.zeros((batch, n), self.dtype) for n in self.net.sizes[:-1]]
        self.steps_done = 0

    def parameters(self) -> dict[str, np.ndarray]:
        """The learnable arrays by name (``W.L``, ``b.L``, ``tau_m.L``); views, not copies."""
        out = {}
        for layer, w, b, tau in zip(self.net.layers, self.weights, self.biases, self.tau_m):
            out[f"W.{layer.name}"] = w
            out[f"b.{layer.name}"] = b
            out[f"tau_m.{layer.name}"] = tau
        return out

    # -- stepping ---------------------------------------------------------------
    def step(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Advance one step with input x [B, in] and target y (or None); return output [B, out].

        The output is the top layer's rate from the end of the previous step.
        """
        net, lrn = self.net, self.net.learning
        old, eps_old = self.state, self.eps
        n_layers = len(old)
        top = old[-1].r
        output = top
        if y is None:
            d_top = np.zeros_like(top)
        else:
            d_top = F.output_error(top, y, lrn.loss, lrn.beta).astype(self.dtype, copy=False)
        new: list[F.NeuronState] = []
        pres: list[np.ndarray] = []
        eps_new: list[np.ndarray] = []
        for l in range(n_layers):
            p = x if l == 0 else old[l - 1].r
            d = d_top if l == n_layers - 1 else eps_old[l + 1]
            s = F.forward_drive(self.weights[l], self.biases[l], p)
            st = F.neuron_step(old[l].u, old[l].v, old[l].r_prime, s, d, self.consts[l])
            if l > 0:
                back = self.weights[l] if self.feedback[l] is None else self.feedback[l]
                eps_new.append(F.backward_error(back, st.e))
            else:
                eps_new.append(eps_old[0])  # nothing below the first layer receives it
            new.append(st)
            pres.append(p)
        self.state, self.eps = new, eps_new
        if self.learning:
            self._learn(new, pres)
        self.steps_done += 1
        return output

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

    def run(self, inputs, targets=None, record: Record = False, reset: bool = False,
            progress: bool = False) -> dict[str, np.ndarray]:
        """Run ``T`` steps and return the traces (golden key layout).

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
        if reset or self.state is None:
            self.reset(B)
        elif B != self.batch:
            raise ShapeError(f"inputs have batch {B} but the engine's state has batch "
                             f"{self.batch}; pass reset=True to start over with batch {B}")
        x = x.astype(self.dtype, copy=False)
        if y is not None and y.dtype.kind == "f":
            y = y.astype(self.dtype, copy=False)
        names = self.net.layer_names
        keys = resolve_record(record, names)
        rec = {k: np.empty((T, B, self._width(k)), self.dtype) for k in sorted(keys)}
        slots = [(k, names.index(k.split(".", 1)[1]), k.split(".", 1)[0])
                 for k in rec if k != "output"]
        out_rec = rec.get("output")
        steps = tqdm(range(T), desc="numpy engine", unit="step", disable=not progress,
                     mininterval=0.5)
        for t in steps:
            out = self.step(x[t], None if y is None else y[t])
            if out_rec is not None:
                out_rec[t] = out
            for key, li, var in slots:
                rec[key][t] = getattr(self.state[li], var)
        result = {k: v.astype(np.float64) for k, v in rec.items()}
        for name, w, b, tau in zip(names, self.weights, self.biases, self.tau_m):
            result[f"W.{name}"] = w.astype(np.float64)
            result[f"b.{name}"] = b.astype(np.float64)
            if self.net.learning.learn_tau:
                result[f"tau_m.{name}"] = tau.astype(np.float64)
        return result

    def _width(self, key: str) -> int:
        if key == "output":
            return self.net.output_size
        return self.net.layer(key.split(".", 1)[1]).size
