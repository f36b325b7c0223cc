"""Model selection by tag: lava_gle.models is found without Lava scanning any folder."""
from __future__ import annotations

import pytest

from lava_gle.errors import BackendUnavailableError
from lava_gle.runtime.selection import find_models, model_map, run_config
from lava_gle.processes.gle.process import GleNeurons, GleProjection
from lava_gle.processes.network.process import GleNetworkProcess
from lava_gle.processes.stream.process import StreamSource
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU


def test_every_process_has_one_floating_pt_cpu_model():
    models = find_models("floating_pt")
    for proc in (GleNeurons, GleProjection, StreamSource, GleNetworkProcess):
        model = models[proc]
        assert model.implements_process is proc
        assert "floating_pt" in model.tags
        assert CPU in model.required_resources
        assert model.__module__.startswith("lava_gle.models.")


def test_run_config_maps_each_instance():
    source = StreamSource(x=[[1.0, 2.0]])
    cfg = run_config([source], "floating_pt")
    assert cfg.exception_proc_model_map[source] is find_models("floating_pt")[StreamSource]


class Orphan(AbstractProcess):
    """A Process without any model."""


def test_missing_model_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="no 'floating_pt' ProcessModel for Orphan"):
        model_map([Orphan()], "floating_pt")
    with pytest.raises(BackendUnavailableError, match="unknown model tag"):
        run_config([], "double_pt")
