"""Fingerprints of integer arithmetic, recorded in the checkpoints of fixed-point runs.

An integer run resumed under another arithmetic (a rounding changed between lava-gle
versions) would continue with numbers neither arithmetic produces. Two fingerprints
guard against that:

- :func:`continuation`, the one checkpoints record: the hash of the integers a copy of
  the run's own engine reaches after :data:`CONTINUATION_STEPS` steps from the saved
  state. A resumed run recomputes it, so it is refused exactly when this lava-gle would
  continue *its* integers otherwise, and not for a change of a feature it does not use.
- :func:`fixed_arithmetic`, which checkpoints recorded before :func:`continuation`
  existed (config key ``integer_arithmetic``): the hash of a few dozen steps of two
  small learning networks that between them use every integer feature (biases, one on
  a narrower bias payload, weight tags, gains and error normalisers, tau learning, both
  timings and learning-product modes, the default one included) with their saturation
  counters (a checkpoint holds the counts by name). Such a checkpoint resumes only
  where it is today's.

Integer steps give the same numbers on any CPU. The fingerprint networks' activations
are piecewise linear: the segment tables of smooth ones are designed by a float fit
(data the quantiser chooses, not arithmetic), and would make it slow.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import warnings

import numpy as np

#: Steps each fingerprint network runs.
STEPS = 40
#: Steps of a run's continuation that :func:`continuation` hashes (learning epochs of up
#: to this many steps learn at least once).
CONTINUATION_STEPS = 32


def _spec(timing: str, products: str | None, normalised: bool) -> dict:
    """``products`` None: the description names no rule and gets the default."""
    hidden = {"name": "h", "size": 6, "tau_m": [0.8, 1.0, 1.2, 0.8, 1.0, 1.2], "tau_r": 0.4,
              "phi": "relu", "fixed_point": {"weight_tag_bits": 5}}
    if normalised:
        hidden.update(gain_decay=0.9990234375, error_norm_decay=0.9990234375)
    return {"gle_network": 1, "name": "fingerprint", "dt": 0.1, "seed": 3,
            "input": {"size": 3},
            "fixed_point": {"timing": timing, **({} if products is None else
                                                  {"learning_products": products})},
            "layers": [hidden,
                       {"name": "g", "size": 4, "tau_m": 0.7, "tau_r": 0.2, "phi": "relu",
                        "fixed_point": {"bias_exp": -1}},  # exact: a narrower bias payload
                       {"name": "out", "size": 2, "tau_m": 1.0, "tau_r": 1.0,
                        "phi": "linear"}],
            "learning": {"enabled": True, "eta": 0.05, "gamma": 0.3, "beta": 1.0,
                         "loss": "mse", "learn_tau": not normalised, "eta_tau": 0.01}}


@functools.lru_cache(maxsize=1)
def fixed_arithmetic() -> str:
    """16 hex digits that change whenever the integers of a learning run would."""
    from lava_gle.description import network_from_dict
    from lava_gle.numerics.engine import FixedEngine
    from lava_gle.quantize import QuantizationWarning
    from lava_gle.quantize.network import DEFAULT_LEARNING_PRODUCTS

    rng = np.random.default_rng(11)
    x = rng.uniform(-1.0, 1.0, (STEPS, 2, 3))
    y = rng.uniform(0.0, 1.0, (STEPS, 2, 2))
    # the default rule is part of the arithmetic: the first network names none. Its name
    # is hashed too: the integers alone would not tell the exact default from the
    # compensated one of earlier versions, whose first network named exact.
    digest = hashlib.sha256(DEFAULT_LEARNING_PRODUCTS.encode())
    for spec in (_spec("exact", None, True), _spec("chip", "compensated", False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationWarning)
            trace = FixedEngine(network_from_dict(spec), dequantize=False).run(
                x, y, record=True)
        _digest(trace, digest)  # integers, or dyadic dequantised
    return digest.hexdigest()[:16]


def _digest(arrays: dict[str, np.ndarray], digest=None) -> "hashlib._Hash":
    digest = hashlib.sha256() if digest is None else digest
    for key in sorted(arrays):
        digest.update(key.encode())
        values = np.ascontiguousarray(arrays[key])
        digest.update(values.dtype.str.encode() + values.tobytes())
    return digest


def continuation(engine) -> str:
    """16 hex digits that change whenever the integers ``engine`` continues with would.

    A copy of the fixed-point ``engine`` (:class:`~lava_gle.numerics.engine.FixedEngine`;
    ``engine`` itself is untouched) runs :data:`CONTINUATION_STEPS` steps from its present
    state, at its present batch, on an input stream uniform in [-1, 1] and (``mse``) a
    target stream uniform in [0, 1] drawn from a fixed seed, learning as its description
    says at the description's own ``learning.eta`` (so that an epoch schedule, which a
    resumed run sets after the check, does not enter); the digest is the hash of its
    :meth:`~lava_gle.numerics.engine.Engine.state_dict` after them: parameters, state,
    learning-epoch sums, steps and saturation counts.
    """
    from lava_gle.quantize import QuantizationWarning

    probe = copy.deepcopy(engine)
    probe.learning = probe.net.learning.enabled
    batch = 1 if probe.state is None else probe.state[0].u.shape[0]
    rng = np.random.default_rng(17)
    x = rng.uniform(-1.0, 1.0, (CONTINUATION_STEPS, batch, probe.net.input.size))
    y = (rng.uniform(0.0, 1.0, (CONTINUATION_STEPS, batch, probe.net.output_size))
         if probe.net.learning.loss == "mse" else None)
    with warnings.catch_warnings():  # the run warned of its formats and clips already
        warnings.simplefilter("ignore", QuantizationWarning)
        probe.kernels.set_eta(probe.kernels.q.net.learning.eta)
        probe.run(x, y)
    return _digest(probe.state_dict()).hexdigest()[:16]
