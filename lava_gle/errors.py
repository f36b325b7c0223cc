"""Exceptions of lava-gle. Every message names the offending field and the fix."""


class LavaGleError(Exception):
    """Base class of every error lava-gle raises on purpose."""


class NetworkSpecError(LavaGleError, ValueError):
    """A network description is malformed.

    Attributes
    ----------
    path : str
        Where in the description the problem is, e.g. ``layers[1].tau_r``.
    problem : str
        What is wrong and, where there is one, how to fix it.
    """

    def __init__(self, path: str, problem: str, source: str | None = None):
        self.path = path
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {problem}" if path else f"{where}{problem}")


class ShapeError(LavaGleError, ValueError):
    """Input, target or parameter arrays do not fit the network."""


class BackendUnavailableError(LavaGleError, RuntimeError):
    """A requested backend (e.g. Loihi 2 hardware) is not installed here."""
