"""Exceptions of lava-gle. Every message names the offending field and the fix."""


class LavaGleError(Exception):
    """Base class of every error lava-gle raises on purpose."""


class LavaGleWarning(UserWarning):
    """Base class of every warning lava-gle raises on purpose (the command line prints
    them as one ``warning: ...`` line each)."""


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


class NonFiniteError(LavaGleError, ValueError):
    """An array holds NaN where a finite number is needed (a fixed-point conversion)."""


class DivergenceError(LavaGleError, FloatingPointError):
    """A float run produced NaN or infinity: it diverged.

    Attributes
    ----------
    backend : str
        The backend that diverged (``numpy``, ``lava-float``, ...).
    layer, variable : str
        Where the first non-finite value appeared: a state variable (``v``, ``e``, ``u``,
        ``u_prosp``, ``r``), the error the layer sends down (``eps``) or a parameter
        (``W``, ``b``, ``tau_m``) of that layer.
    step : int or None
        The step (from the start of the run) at whose end it was first seen; None when
        only the final parameters show it (the state was not recorded).
    value : float
        That value (nan, inf or -inf).
    """

    def __init__(self, backend: str, layer: str, variable: str, step: int | None,
                 value: float):
        self.backend, self.layer, self.variable = backend, layer, variable
        self.step, self.value = step, value
        super().__init__(f"{self.describe()}; lower learning.eta or the scale of the "
                         "inputs, or pass --allow-nan (allow_nan=True) to keep going")

    def describe(self) -> str:
        """``float run diverged: <backend> produced <value> in <var>.<layer> at step <t>``."""
        when = "by the end of the run" if self.step is None else f"at step {self.step}"
        return (f"float run diverged: {self.backend} produced {self.value} in "
                f"{self.variable}.{self.layer} {when}")

    def where(self) -> dict:
        """JSON-ready ``{backend, layer, variable, step, value, message}`` (the value as a
        string, the message from :meth:`describe`)."""
        return {"backend": self.backend, "layer": self.layer, "variable": self.variable,
                "step": self.step, "value": str(self.value), "message": self.describe()}


class MemoryLimitError(LavaGleError):
    """A network would need more memory than this machine has available.

    Attributes
    ----------
    layer : str or None
        The layer that needs the most (None when a part shared by the network does).
    needed, available : int
        Bytes the work would need and bytes available.
    """

    def __init__(self, message: str, layer: str | None, needed: int, available: int):
        super().__init__(message)
        self.layer, self.needed, self.available = layer, needed, available
