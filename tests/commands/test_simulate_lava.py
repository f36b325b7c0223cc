"""``lava-gle simulate --backend lava-float`` writes the engine's file layout and numbers
(bit for bit)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import GoldenCase
from lava_gle.cli import main
from lava_gle.traces import load_traces


@pytest.mark.lava
@pytest.mark.parametrize("backend", ["lava-float", "lava-float-fused"])
def test_simulate_with_lava_backend_matches_numpy_file(tmp_path, backend):
    case = GoldenCase("visible_mlp")
    np.save(tmp_path / "x.npy", case.inputs[:60])
    np.save(tmp_path / "y.npy", case.targets[:60])
    files = {}
    for name in ("numpy", backend):
        out = tmp_path / f"{name}.npz"
        assert main(["simulate", str(case.dir / "network.json"),
                     "--inputs", str(tmp_path / "x.npy"), "--targets", str(tmp_path / "y.npy"),
                     "--backend", name, "--out", str(out), "--quiet"]) == 0
        files[name] = load_traces(out)
    assert files[backend].keys() == files["numpy"].keys()
    for key, value in files["numpy"].items():  # the engine's own kernels: the same bits
        np.testing.assert_array_equal(files[backend][key], value, err_msg=key)
