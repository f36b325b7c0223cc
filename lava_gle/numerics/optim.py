"""The optimiser applied on top of GLE's local plasticity signals.

GLE's own rule is plain SGD on the local signals ``gW = e p^T`` (``W += eta * gW``; the
kernels run it when no optimiser is given); the paper's larger experiments run Adam on
the same local signals instead. Signals are
*ascent* directions here: an optimiser moves each parameter along ``+g``.
Parameters are updated in place and keyed by name (``W.hidden``, ``tau_m.out``).
"""
from __future__ import annotations

import numpy as np

from lava_gle.errors import LavaGleError


class Adam:
    """Adam (Kingma & Ba 2015) on the local signals, with bias correction.

    ``lr_tau`` (default ``lr``) is the learning rate of ``tau_m.*`` parameters.
    """

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, lr_tau: float | None = None):
        for name, value in (("lr", lr), ("lr_tau", lr_tau)):
            if value is not None and not (np.isfinite(value) and value > 0):
                raise LavaGleError(f"Adam {name} must be a finite number > 0, got {value!r}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or not eps > 0:
            raise LavaGleError(f"Adam betas must lie in [0, 1) and eps be > 0, got betas "
                               f"{betas!r}, eps {eps!r}")
        self.lr = lr
        self.lr_tau = lr if lr_tau is None else lr_tau
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        for key, g in grads.items():
            if key not in self.m:
                self.m[key] = np.zeros_like(g)
                self.v[key] = np.zeros_like(g)
            m, v = self.m[key], self.v[key]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * g * g
            lr = self.lr_tau if key.startswith("tau_m.") else self.lr
            params[key] += lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Rates, step count and moments as flat named arrays (``m.<param>``, ``v.<param>``)."""
        out = {"t": np.array(self.t), "lr": np.array(self.lr), "lr_tau": np.array(self.lr_tau)}
        for key in self.m:
            out[f"m.{key}"], out[f"v.{key}"] = self.m[key].copy(), self.v[key].copy()
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.t, self.lr, self.lr_tau = int(state["t"]), float(state["lr"]), float(state["lr_tau"])
        self.m = {k[2:]: np.array(v) for k, v in state.items() if k.startswith("m.")}
        self.v = {k[2:]: np.array(v) for k, v in state.items() if k.startswith("v.")}
