"""Choosing lava-gle's ProcessModels for a run.

Lava's compiler looks for a Process's models only in the folder of the module that
defines the Process (it executes every module there). lava-gle keeps its models in
``lava_gle/models/`` instead, so :func:`run_config` names the model of every Process
*instance* in ``exception_proc_model_map``. The compiler checks that map per instance
before it searches any folder, so no folder is scanned and nothing is executed.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterable

from lava_gle.runtime.fork_safety import prepare_for_lava

prepare_for_lava()  # before the first Lava import (see lava_gle.runtime.fork_safety)

from lava.magma.core.model.py.model import AbstractPyProcessModel
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_configs import Loihi2SimCfg

from lava_gle.errors import BackendUnavailableError

#: Model tags a lava-gle backend can ask for.
TAGS = ("floating_pt", "fixed_pt")


def find_models(tag: str) -> dict[type, type]:
    """Process class -> ProcessModel class, for every model in ``lava_gle.models`` with ``tag``.

    Raises BackendUnavailableError if two models of one Process carry the same tag.
    """
    import lava_gle.models as package
    found: dict[type, type] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if not (inspect.isclass(obj) and issubclass(obj, AbstractPyProcessModel)
                    and obj.__module__ == module.__name__
                    and getattr(obj, "implements_process", None) is not None
                    and tag in getattr(obj, "tags", ())):
                continue
            proc = obj.implements_process
            if proc in found and found[proc] is not obj:
                raise BackendUnavailableError(
                    f"two {tag} models implement {proc.__name__}: {found[proc].__qualname__} "
                    f"and {obj.__qualname__}; keep one per tag")
            found[proc] = obj
    return found


def model_map(processes: Iterable[AbstractProcess], tag: str) -> dict[AbstractProcess, type]:
    """Each Process instance -> its ``tag`` ProcessModel; a clear error if one is missing."""
    models = find_models(tag)
    chosen = {}
    for proc in processes:
        model = models.get(type(proc))
        if model is None:
            have = sorted(p.__name__ for p in models) or ["none"]
            raise BackendUnavailableError(
                f"no {tag!r} ProcessModel for {type(proc).__name__} in lava_gle.models "
                f"(models with this tag exist for: {', '.join(have)})")
        chosen[proc] = model
    return chosen


def run_config(processes: Iterable[AbstractProcess], tag: str,
               config_class: type = Loihi2SimCfg):
    """A run config that uses lava-gle's ``tag`` model for every Process.

    ``config_class`` is Lava's ``Loihi2SimCfg`` (CPU simulation, the default) or, on a
    system with lava-loihi, ``Loihi2HwCfg``; either takes ``select_tag`` and
    ``exception_proc_model_map``.
    """
    if tag not in TAGS:
        raise BackendUnavailableError(f"unknown model tag {tag!r}; choose one of {list(TAGS)}")
    return config_class(select_tag=tag, exception_proc_model_map=model_map(processes, tag))
