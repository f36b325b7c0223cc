"""lava-gle: Generalized Latent Equilibrium (GLE) networks on Lava and Loihi 2.

The top-level package imports NumPy-only modules; Lava is imported lazily by the
Lava backends (``lava_gle.runtime``), so the network description, the NumPy
engine and the mapper work without starting Lava.
"""
from lava_gle.errors import LavaGleError, NetworkSpecError, ShapeError
from lava_gle.network import InitSpec, InputSpec, LayerSpec, LearningSpec, Network
from lava_gle.description import load_network, network_from_dict, network_to_dict, save_network

__version__ = "0.1.0"

__all__ = [
    "LavaGleError", "NetworkSpecError", "ShapeError",
    "InitSpec", "InputSpec", "LayerSpec", "LearningSpec", "Network",
    "load_network", "network_from_dict", "network_to_dict", "save_network",
]
