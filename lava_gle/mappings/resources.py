"""The resource model: what a block of GLE neurons costs on one neuro core.

A layer ``l`` of ``n_l`` neurons receives ``m = n_{l-1}`` rates from below (the input for
``l = 0``) and, unless it is the output layer, ``n_{l+1}`` errors from above. A *block* is
``n`` consecutive neurons of one layer placed on one core. Its demand, per resource:

- ``compartments``: ``2 n`` (each GLE neuron is a representation and an error compartment).
- ``neuron_groups``: :data:`GROUPS_PER_BLOCK` (representation and error compartments run
  different neuron programs).
- ``input_axons``: ``m`` (one per presynaptic rate) ``+ n_{l+1}`` (one per error of the layer
  above) ``+ n`` on the output layer (one target value per output neuron) ``+ 1`` when the
  layer has biases (the bias neuron's constant payload, as the fixed-point learning rule
  of :mod:`lava_gle.microcode` learns b through a bias array; the bias neuron itself is
  shared and not counted on the block's core).
- ``output_axons``: each neuron sends its rate to every core that holds a block of layer
  ``l+1`` (``k_up`` cores; the output layer sends it once, to the host) and, when layer
  ``l-1`` is a GLE layer, its error to each of the ``k_down`` cores of that layer:
  ``n (k_up + k_down)``. Axons are not shared between blocks on one core (conservative).
- ``synapse_words``: the forward rows ``W_l[block, :]`` (``n m`` synapses), the backward rows
  ``W_{l+1}^T[block, :]`` or the feedback matrix's (``n n_{l+1}``), one target synapse per
  output neuron and one bias synapse per neuron (layers with biases); each projection packs
  ``synapse_word_bits // weight_bits`` synapses per word.
- ``learning_traces`` (only when learning is enabled), after the rules of
  :mod:`lava_gle.microcode`: one presynaptic trace (x1) per plastic input axon and the
  postsynaptic traces of each neuron: ``m + 2 n`` for ``W_l`` (y2 = e+, y3 = e-), ``+ 1``
  for the bias array's axon, and ``n_{l+1} + n`` for the plastic transpose copy (y2 = rate
  trace; ``backward: transpose``, not the output layer).

Weight and payload widths come from the profile (:func:`layer_widths`), whose defaults are
the widths of the fixed-point formats; ``--weight-bits`` overrides the weight width.
"""
from __future__ import annotations

from dataclasses import dataclass

from lava_gle.errors import LavaGleError
from lava_gle.mappings.profiles import HardwareProfile, ProfileError
from lava_gle.network import Network

#: Resources of one core, in the order every demand tuple uses.
RESOURCES = ("compartments", "neuron_groups", "input_axons", "output_axons",
             "synapse_words", "learning_traces")
#: Profile field holding each resource's per-core capacity.
CAPACITY_FIELDS = {
    "compartments": "compartments_per_core",
    "neuron_groups": "neuron_groups_per_core",
    "input_axons": "input_axons_per_core",
    "output_axons": "output_axons_per_core",
    "synapse_words": "synapse_words_per_core",
    "learning_traces": "learning_traces_per_core",
}
COMPARTMENTS_PER_NEURON = 2
GROUPS_PER_BLOCK = 2


def capacities(profile: HardwareProfile) -> tuple[int, ...]:
    """Per-core capacity of every resource, ordered like :data:`RESOURCES`."""
    return tuple(getattr(profile, CAPACITY_FIELDS[r]) for r in RESOURCES)


@dataclass(frozen=True)
class Widths:
    """Bit widths of one layer: stored forward weights, rate and error payloads."""

    weight_bits: int
    rate_bits: int
    error_bits: int


def layer_widths(net: Network, profile: HardwareProfile,
                 weight_bits: int | None = None) -> list[Widths]:
    """Widths of every layer: the profile's defaults, ``weight_bits`` overriding the weights.

    The fixed-point formats (:mod:`lava_gle.arithmetic.fixed`) use one width per network:
    8-bit weights (sign included), 8-bit rate payloads and errors sent in the 24-bit state
    format; the shipped Loihi 2 profile carries these numbers. ``weight_bits`` (e.g.
    ``--weight-bits``) overrides the weight width of every layer.
    """
    bits = profile.weight_bits if weight_bits is None else weight_bits
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ProfileError(f"weight width must be a positive integer number of bits, got {bits!r}")
    return [Widths(bits, profile.rate_payload_bits, profile.error_payload_bits)
            for _ in net.layers]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class LayerCost:
    """The cost model of one layer; :meth:`demand` prices a block of it.

    Attributes
    ----------
    index, name, size
        The layer (``size`` neurons).
    fan_in : int
        ``m``, rates received per neuron (size of the layer or input below).
    fan_back : int
        ``n_{l+1}``, errors received per neuron (0 on the output layer).
    is_output : bool
        The output layer receives targets and sends its rates to the host.
    sends_errors_down : bool
        Layer ``l-1`` is a GLE layer (``l >= 1``).
    per_word_forward, per_word_backward, per_word_target : int
        Synapses per memory word of ``W_l``, of the backward matrix and of the target synapses.
    has_bias : bool
        The layer has biases (a bias axon and one bias synapse per neuron).
    learning, plastic_backward : bool
        Traces for ``W_l`` (learning enabled) and for the transpose copy.
    widths : Widths
        The layer's widths (rate payloads set the traffic it sends).
    """

    index: int
    name: str
    size: int
    fan_in: int
    fan_back: int
    is_output: bool
    sends_errors_down: bool
    per_word_forward: int
    per_word_backward: int
    per_word_target: int
    has_bias: bool
    learning: bool
    plastic_backward: bool
    widths: Widths

    def demand(self, n: int, k_up: int, k_down: int) -> tuple[int, ...]:
        """Demand of a block of ``n`` neurons, ordered like :data:`RESOURCES`.

        ``k_up`` / ``k_down``: cores holding blocks of layer ``l+1`` / ``l-1``.
        """
        m, back, bias = self.fan_in, self.fan_back, int(self.has_bias)
        in_axons = m + back + (n if self.is_output else 0) + bias
        out_axons = n * (1 if self.is_output else k_up)
        if self.sends_errors_down:
            out_axons += n * k_down
        words = _ceil_div(n * m, self.per_word_forward)
        if back:
            words += _ceil_div(n * back, self.per_word_backward)
        if self.is_output:
            words += _ceil_div(n, self.per_word_target)
        if bias:
            words += _ceil_div(n, self.per_word_forward)
        traces = 0
        if self.learning:
            traces = m + 2 * n + bias
            if self.plastic_backward:
                traces += back + n
        return (COMPARTMENTS_PER_NEURON * n, GROUPS_PER_BLOCK, in_axons, out_axons, words, traces)

    def synapses(self, n: int) -> tuple[int, int, int, int]:
        """(forward, backward, target, bias) synapses held by a block of ``n`` neurons."""
        return (n * self.fan_in, n * self.fan_back, n if self.is_output else 0,
                n if self.has_bias else 0)

    def traffic_up(self, n: int) -> int:
        """Bits per step that a block of ``n`` neurons sends to each core of layer ``l+1``."""
        return n * self.widths.rate_bits

    def traffic_down(self, n: int) -> int:
        """Bits per step that a block of ``n`` neurons sends to each core of layer ``l-1``."""
        return n * self.widths.error_bits if self.sends_errors_down else 0


def layer_costs(net: Network, profile: HardwareProfile,
                weight_bits: int | None = None) -> list[LayerCost]:
    """The cost model of every layer of ``net`` (no weight array is touched).

    ``weight_bits`` overrides every layer's weight width (see :func:`layer_widths`).
    """
    widths = layer_widths(net, profile, weight_bits)
    sizes = net.sizes
    last = len(net.layers) - 1
    learning = net.learning.enabled
    transpose = net.learning.backward == "transpose"
    costs = []
    for i, layer in enumerate(net.layers):
        above = widths[i + 1].weight_bits if i < last else widths[i].weight_bits
        costs.append(LayerCost(
            index=i, name=layer.name, size=layer.size, fan_in=sizes[i],
            fan_back=sizes[i + 2] if i < last else 0,
            is_output=i == last, sends_errors_down=i >= 1,
            per_word_forward=profile.synapses_per_word(widths[i].weight_bits),
            per_word_backward=profile.synapses_per_word(above),
            per_word_target=profile.synapses_per_word(widths[i].weight_bits),
            has_bias=layer.bias, learning=learning,
            plastic_backward=learning and transpose and i < last,
            widths=widths[i]))
    return costs


#: What to try when a resource runs out, per resource.
SUGGESTIONS = {
    "compartments": "use smaller blocks (--block-size) or a profile with more compartments",
    "neuron_groups": "use a profile with more neuron groups per core",
    "input_axons": "narrow the layer below or the layer above (each block receives every rate "
                   "from below and every error from above)",
    "output_axons": "use smaller blocks (--block-size) so each core sends fewer axons, or "
                    "narrow the neighbouring layers",
    "synapse_words": "lower the weight width (--weight-bits) or use smaller blocks",
    "learning_traces": "disable learning or narrow the neighbouring layers",
}


class DoesNotFitError(LavaGleError, ValueError):
    """A network cannot be mapped: names the layer, the resource, the overshoot and a fix.

    Attributes
    ----------
    layer : str or None
        The layer that does not fit (None when the whole network exceeds the system).
    resource : str
        A name of :data:`RESOURCES`, or ``chips``.
    demand, capacity : int
        What is needed and what there is (overshoot = demand - capacity).
    suggestion : str
        What to change.
    """

    def __init__(self, layer: str | None, resource: str, demand: int, capacity: int,
                 suggestion: str, detail: str = ""):
        self.layer, self.resource = layer, resource
        self.demand, self.capacity, self.suggestion = demand, capacity, suggestion
        where = f"layer {layer!r}" if layer is not None else "the network"
        pct = 100.0 * (demand - capacity) / capacity if capacity else float("inf")
        super().__init__(f"{where} does not fit: {resource} needs {demand:,} but the limit is "
                         f"{capacity:,} (over by {demand - capacity:,}, {pct:.1f}%)"
                         f"{detail}; {suggestion}")
