"""Typed, immutable objects of a layered GLE network description.

A network is an input of ``input.size`` channels followed by ``layers``, ordered
from the input upwards; layer ``l`` receives the rates of layer ``l-1`` (the input
for ``l = 0``) through a plastic projection ``W_l`` of shape ``[size_l, size_{l-1}]``.
Time constants are in the same unit as ``dt``.

Objects are built and validated by :mod:`lava_gle.description`; constructing
them directly skips validation. Parameter arrays are read-only; weights that the
description does not give explicitly are drawn on demand by
:meth:`Network.initial_weights` (so a 10-billion-synapse network can be described,
mapped and counted without allocating its weights).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
import numpy as np

from lava_gle.errors import ShapeError
from lava_gle.numerics.floating import GAIN_MAX

#: Activation functions of the description format (see ``lava_gle.numerics.activations``).
PHI_NAMES = ("linear", "relu", "sigmoid", "tanh", "softplus", "hard_sigmoid")
#: Output losses: mean squared error, or cross-entropy on a linear output layer.
LOSS_NAMES = ("mse", "ce")
#: How the error compartments see the forward weights.
BACKWARD_MODES = ("transpose", "feedback_alignment")
#: Weight initialisation schemes for layers without explicit ``weights``.
INIT_SCHEMES = ("lecun_normal", "lecun_uniform", "normal", "uniform", "zeros")


@dataclass(frozen=True)
class InputSpec:
    """The input stream: ``size`` channels, one value per channel per step."""

    size: int


@dataclass(frozen=True)
class InitSpec:
    """Seeded initialisation of a layer's weights when none are given explicitly.

    ``lecun_normal``: N(0, scale^2 / fan_in); ``lecun_uniform``: U(+-scale*sqrt(3/fan_in));
    ``normal``: N(0, scale^2); ``uniform``: U(-scale, scale); ``zeros``.
    The generator is ``numpy.random.default_rng([seed, layer_index])``.
    """

    scheme: str = "lecun_normal"
    scale: float = 1.0
    seed: int = 0

    def draw(self, shape: tuple[int, int], layer_index: int, salt: int = 0) -> np.ndarray:
        """Draw a float64 matrix of ``shape`` ([size, fan_in])."""
        rng = np.random.default_rng([self.seed, layer_index, salt])
        fan_in = max(shape[1], 1)
        if self.scheme == "lecun_normal":
            return rng.normal(0.0, self.scale / np.sqrt(fan_in), size=shape)
        if self.scheme == "lecun_uniform":
            lim = self.scale * np.sqrt(3.0 / fan_in)
            return rng.uniform(-lim, lim, size=shape)
        if self.scheme == "normal":
            return rng.normal(0.0, self.scale, size=shape)
        if self.scheme == "uniform":
            return rng.uniform(-self.scale, self.scale, size=shape)
        return np.zeros(shape)


@dataclass(frozen=True, eq=False)
class NormaliserState:
    """Where a layer's neuron-local normalisers stand (``docs/model.md``, "Neuron-local
    normalisers"): ``steps`` updates so far (>= 1), and the running mean squares of the
    neurons' rates ``gain_ms`` [n] (with ``gain_decay``) and errors ``error_ms`` [n] (with
    ``error_norm_decay``), in float units (rate^2, error^2); None where the layer has no
    such normaliser. A layer without a state starts from the prior (``g = n = 1``)."""

    steps: int
    gain_ms: np.ndarray | None = None
    error_ms: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The state by the kinds a layer kernel's ``load`` takes: ``norm_steps`` and the
        mean squares it has."""
        out = {"norm_steps": np.array(self.steps, np.int64)}
        for kind in ("gain_ms", "error_ms"):
            if getattr(self, kind) is not None:
                out[kind] = getattr(self, kind)
        return out


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """One layer of GLE neurons and the projection into it.

    Attributes
    ----------
    name : str
        Unique name, used in trace keys (``u.<name>`` ...).
    size : int
        Number of neurons ``n``.
    tau_m, tau_r : float or ndarray [n]
        Membrane and prospective time constants (units of ``dt``), each >= ``dt``.
    phi : str
        Activation function, one of :data:`PHI_NAMES`.
    bias : bool
        Whether the layer has a (learnable) bias.
    weights : ndarray [n, n_below] or None
        Explicit initial weights; ``None`` draws them from ``init``.
    biases : ndarray [n] or None
        Explicit initial biases; ``None`` means zeros (or no bias).
    init : InitSpec
        How weights are drawn when ``weights`` is ``None``.
    fixed_point : dict
        Per-layer overrides of the fixed-point quantisation (see ``docs/fixed-point.md``).
    eta_scale : float
        The projection into this layer learns at ``learning.eta * eta_scale`` (>= 0): a rate
        per projection, as each projection has its own learning rule on a chip. 0: the
        projection does not learn (its weights and bias stay as given; a chip runs no
        learning rule there), :meth:`Network.plastic`.
    error_bound : float or None
        Bound on the layer's error: ``e`` is clipped to ``[-error_bound, error_bound]`` as
        the neurons form it, so the layer learns from, sends down and feeds back (gamma)
        a bounded error. ``None``: unbounded (the model of ``docs/model.md``).
    gain_decay : float or None
        Hidden layers: the neurons send ``g r`` with a gain ``g`` per neuron, the inverse
        RMS of their rate (at most ``gain_max``) from a running mean square of r over
        learning steps that settles to an exponential average with this decay (in (0, 1)),
        and scale the error they receive by ``g``. ``None``: g = 1.
    error_norm_decay : float or None
        The projection into the layer learns from ``n e`` per neuron instead of ``e``,
        ``n`` the inverse RMS of e (running mean square as for the gain). ``None``: from
        ``e``. Both: ``docs/model.md``, "Neuron-local normalisers".
    gain_max : float
        With ``gain_decay``: the largest gain (>= 1; default
        :data:`lava_gle.numerics.floating.GAIN_MAX`, 1000), the gain of a nearly silent
        neuron. A lower cap keeps such a neuron from sending ``g r`` at 1000x when it
        starts to fire (``docs/model.md``, "Neuron-local normalisers").
    normaliser_state : NormaliserState or None
        With normalisers: where they stand (e.g. after training), instead of the prior.
    """

    name: str
    size: int
    tau_m: float | np.ndarray
    tau_r: float | np.ndarray
    phi: str = "linear"
    bias: bool = True
    weights: np.ndarray | None = None
    biases: np.ndarray | None = None
    init: InitSpec = field(default_factory=InitSpec)
    fixed_point: dict = field(default_factory=dict)
    eta_scale: float = 1.0
    error_bound: float | None = None
    gain_decay: float | None = None
    error_norm_decay: float | None = None
    gain_max: float = GAIN_MAX
    normaliser_state: NormaliserState | None = None

    def tau_m_array(self) -> np.ndarray:
        """tau_m as a float64 array of shape [n]."""
        return np.broadcast_to(np.asarray(self.tau_m, dtype=np.float64), (self.size,)).copy()

    def tau_r_array(self) -> np.ndarray:
        """tau_r as a float64 array of shape [n]."""
        return np.broadcast_to(np.asarray(self.tau_r, dtype=np.float64), (self.size,)).copy()


@dataclass(frozen=True)
class LearningSpec:
    """Learning and error settings, shared by the whole network.

    Attributes
    ----------
    enabled : bool
        Whether W and b follow the local rule (errors flow either way).
    eta : float
        Learning rate per step: ``W += eta * mean_batch(e p^T)``.
    gamma : float
        How strongly the prospective error feeds back into the membrane.
    beta : float
        Nudging strength of the output error.
    loss : str
        ``mse`` (``beta (y - r)``) or ``ce`` (``beta (onehot(y) - softmax(r))``).
    prospective_errors : bool
        GLE error compartments (True) or instantaneous errors (False).
    backward : str
        ``transpose`` (errors travel through W^T) or ``feedback_alignment``
        (through a fixed random matrix drawn with ``feedback_seed``).
    feedback_seed : int
        Seed of the feedback-alignment matrices.
    learn_tau : bool
        Whether tau_m learns: ``tau_m -= eta_tau * mean_batch(e * du/dt)``.
    eta_tau : float
        Learning rate of tau_m (per step).
    tau_m_min : float or None
        Lower clamp of learned tau_m; ``None`` means ``10 * dt``.
    epoch_steps : int
        Steps per learning epoch of W and b (Loihi's ``t_epoch``): 1, GLE's rule every
        step; K > 1, once every K steps from the learning error summed over the epoch and
        the presynaptic rate averaged over it, ``W += eta (sum_t l)(mean_t p)^T``, an
        approximation of ``sum_t eta l p^T`` exact where p is constant within an epoch
        (``docs/model.md``, "Learning epochs"). Fixed point: a power of two.
    """

    enabled: bool = False
    eta: float = 0.0
    gamma: float = 0.0
    beta: float = 1.0
    loss: str = "mse"
    prospective_errors: bool = True
    backward: str = "transpose"
    feedback_seed: int = 0
    learn_tau: bool = False
    eta_tau: float = 0.0
    tau_m_min: float | None = None
    epoch_steps: int = 1


@dataclass(frozen=True, eq=False)
class Network:
    """A validated layered GLE network description (see ``docs/network-format.md``)."""

    dt: float
    input: InputSpec
    layers: tuple[LayerSpec, ...]
    learning: LearningSpec = field(default_factory=LearningSpec)
    name: str = "network"
    fixed_point: dict = field(default_factory=dict)

    # -- shapes ---------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """[input size, layer 0 size, ..., output size]."""
        return [self.input.size] + [layer.size for layer in self.layers]

    @property
    def output_size(self) -> int:
        return self.layers[-1].size

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def weight_shape(self, index: int) -> tuple[int, int]:
        """Shape [size_l, size_{l-1}] of the projection into layer ``index``."""
        return (self.layers[index].size, self.sizes[index])

    def layer(self, name: str) -> LayerSpec:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers are {self.layer_names}")

    def index(self, name: str) -> int:
        return self.layer_names.index(self.layer(name).name)

    @property
    def tau_m_min(self) -> float:
        """The lower clamp of learned tau_m (``learning.tau_m_min`` or ``10 dt``)."""
        m = self.learning.tau_m_min
        return 10.0 * self.dt if m is None else m

    # -- parameters -----------------------------------------------------------
    def _layer_at(self, index: int) -> LayerSpec:
        """Layer ``index`` (0-based), or an error naming the valid range."""
        if not -len(self.layers) <= index < len(self.layers):
            raise IndexError(f"network {self.name!r} has layers 0..{len(self.layers) - 1} "
                             f"({', '.join(self.layer_names)}), not {index}")
        return self.layers[index]

    def initial_weights(self, index: int) -> np.ndarray:
        """Initial W of layer ``index`` (explicit, or drawn from its InitSpec), float64 copy."""
        layer = self._layer_at(index)
        if layer.weights is not None:
            return np.array(layer.weights, dtype=np.float64)
        return layer.init.draw(self.weight_shape(index), index)

    def initial_biases(self, index: int) -> np.ndarray:
        """Initial b of layer ``index`` (zeros when the layer has no bias), float64 copy."""
        layer = self._layer_at(index)
        if layer.biases is None:
            return np.zeros(layer.size)
        return np.array(layer.biases, dtype=np.float64)

    def feedback_weights(self, index: int) -> np.ndarray | None:
        """The fixed feedback matrix [size_l, size_{l-1}] of layer ``index``.

        ``None`` when ``learning.backward == "transpose"`` (the error compartments use W^T).
        """
        if self.learning.backward != "feedback_alignment":
            return None
        init = replace(self.layers[index].init, seed=self.learning.feedback_seed)
        if init.scheme == "zeros":
            init = replace(init, scheme="lecun_normal")
        return init.draw(self.weight_shape(index), index, salt=1)

    @property
    def learns(self) -> bool:
        """Whether the network learns at all: learning on and ``learning.eta`` > 0."""
        return self.learning.enabled and self.learning.eta > 0

    def plastic(self, index: int) -> bool:
        """Whether the projection into layer ``index`` (its W and b) learns: the network
        learns (:attr:`learns`) and the layer's ``eta_scale`` is > 0."""
        return self.learns and self.layers[index].eta_scale > 0

    def with_learning(self, **changes: Any) -> "Network":
        """A copy of this network with the given fields of :attr:`learning` changed (e.g.
        ``eta``, ``enabled``, ``epoch_steps``)."""
        return replace(self, learning=replace(self.learning, **changes))

    def with_parameters(self, weights: list[np.ndarray], biases: list[np.ndarray]) -> "Network":
        """A copy of this network whose layers carry the given W and b explicitly: one
        W [size, size below] and one b [size] (None without a bias) per layer."""
        if len(weights) != len(self.layers) or len(biases) != len(self.layers):
            raise ShapeError(f"with_parameters takes one W and one b per layer: "
                             f"{len(self.layers)} layers, got {len(weights)} W and "
                             f"{len(biases)} b")
        layers = []
        for layer, w, b in zip(self.layers, weights, biases):
            w = np.array(w, dtype=np.float64)
            w.setflags(write=False)
            b_arr = None
            if layer.bias:
                b_arr = np.array(b, dtype=np.float64)
                b_arr.setflags(write=False)
            layers.append(replace(layer, weights=w, biases=b_arr))
        return replace(self, layers=tuple(layers))

    # -- graph ----------------------------------------------------------------
    def to_graph(self) -> nx.DiGraph:
        """The network as a DiGraph for the builder and the mapper.

        Nodes are integers: ``0`` is the input (attributes ``kind="input"``, ``name``,
        ``size``), ``l + 1`` is layer ``l`` (``kind="layer"``, ``name``, ``size``,
        ``phi``, ``bias``, ``index=l``). Edges ``(l, l + 1)`` are the projections, with
        ``shape`` ([post, pre]), ``synapses`` (post * pre) and ``layer`` (the index of
        the receiving layer). No weight array is allocated.
        """
        g = nx.DiGraph(name=self.name, dt=self.dt)
        g.add_node(0, kind="input", name="input", size=self.input.size)
        for i, layer in enumerate(self.layers):
            g.add_node(i + 1, kind="layer", name=layer.name, size=layer.size,
                       phi=layer.phi, bias=layer.bias, index=i)
            shape = self.weight_shape(i)
            g.add_edge(i, i + 1, shape=shape, synapses=shape[0] * shape[1], layer=i)
        return g

    def describe(self) -> str:
        """One line, e.g. ``lagline: 1 -> 1 (softplus) -> 1 (softplus), dt=0.01``."""
        parts = [str(self.input.size)] + [f"{l.size} ({l.phi})" for l in self.layers]
        return f"{self.name}: {' -> '.join(parts)}, dt={self.dt:g}"


def as_dict_value(value: Any) -> Any:
    """A JSON-ready copy of a parameter value (ndarray -> nested lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
