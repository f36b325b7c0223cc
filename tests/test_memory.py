"""The memory guard: networks that would not fit are refused before anything is allocated.

The command-line cases run in a subprocess under a small address-space limit
(RLIMIT_AS), so an allocation of the refused size would fail loudly (MemoryError,
a traceback, exit status 1) instead of the one-line refusal (exit status 2).
"""
from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lava_gle import memory
from lava_gle.backends import simulate
from lava_gle.description import network_from_dict
from lava_gle.numerics.engine import Engine
from lava_gle.errors import MemoryLimitError, ShapeError
from lava_gle.memory import WORK, available_memory, estimate_memory, require_memory
from lava_gle.network import InitSpec

REPO = Path(__file__).resolve().parents[1]
#: Address space of the command-line subprocesses: Python, NumPy and lava-gle fit, a
#: billion-neuron layer's weights (tens of GiB) do not.
ADDRESS_LIMIT = 2 * 2 ** 30
BILLION = 1_000_000_000


def description(inputs: int, sizes: list[int], learning: bool = True) -> dict:
    return {"gle_network": 1, "dt": 0.1, "name": "huge", "input": {"size": inputs},
            "layers": [{"name": f"l{i}", "size": s, "tau_m": 1.0, "tau_r": 1.0, "phi": "tanh"}
                       for i, s in enumerate(sizes)],
            "learning": {"enabled": learning, "eta": 0.01}}


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``lava-gle ARGS`` in a subprocess limited to ADDRESS_LIMIT bytes of address space."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))

    return subprocess.run([sys.executable, "-m", "lava_gle.cli", *args], cwd=tmp_path,
                          capture_output=True, text=True, preexec_fn=limit, timeout=300)


def write(tmp_path: Path, d: dict) -> str:
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def refusal(result: subprocess.CompletedProcess) -> str:
    """The one error line of a refused command (no traceback, exit status 2)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


# -- the estimate -------------------------------------------------------------------

def test_estimate_counts_each_part_by_its_shape():
    net = network_from_dict(description(3, [4, 2]))
    small = estimate_memory(net, "numpy")
    # one more step, one more batch element, one more recorded variable: each adds its
    # own shape's worth of bytes, nothing else changes
    run = estimate_memory(net, "numpy", steps=10, batch=2, record=["r"], built=True)
    longer = estimate_memory(net, "numpy", steps=11, batch=2, record=["r"], built=True)
    more = estimate_memory(net, "numpy", steps=10, batch=2, record=["r", "e"], built=True)
    assert longer.layers["l0"]["traces"] - run.layers["l0"]["traces"] == \
        WORK["numpy"].trace_copies * 8 * 2 * 4
    assert more.layers["l1"]["traces"] == 2 * run.layers["l1"]["traces"]
    assert longer.shared["input stream"] - run.shared["input stream"] == 2 * 8 * 2 * 3
    assert "weights" not in run.layers["l0"]  # built: the parameters exist already
    # the weights scale with [size, size below] (+ biases), per copy of the work
    assert small.layers["l0"]["weights"] == WORK["numpy"].weight_copies * 8 * (4 * 3 + 4)
    assert small.layers["l1"]["weights"] == WORK["numpy"].weight_copies * 8 * (2 * 4 + 2)
    fixed = estimate_memory(net, "numpy-fixed")
    assert fixed.shared["activation tables"] > 0 and "activation tables" not in small.shared
    mapped = estimate_memory(net, "map", blocks=[3, 1])
    assert mapped.layers == {"l0": {"blocks": 3 * WORK["map"].block_bytes},
                             "l1": {"blocks": WORK["map"].block_bytes}}


# the peak resident size of this process image (VmHWM; ru_maxrss would carry the forking
# parent's peak across exec)
MEASURE = """
import warnings
from pathlib import Path
import numpy as np
warnings.simplefilter("ignore")
from lava_gle.backends import simulate
from lava_gle.description import network_from_dict
from lava_gle.memory import _read_kib_fields, estimate_memory
from lava_gle.quantize import quantize_network
def peak():
    return _read_kib_fields(Path("/proc/self/status"))["VmHWM"]
net = network_from_dict({d!r})
x = np.zeros((3, 2, net.input.size))
before = peak()
if {work!r} == "quantize":
    quantize_network(net)
    est = estimate_memory(net, "quantize")
else:
    simulate(net, x, backend={work!r}, record=True)
    est = estimate_memory(net, {work!r}, steps=3, batch=2, record=True)
print(peak() - before, est.total,
      est.shared.get("activation tables", 0))
"""


@pytest.mark.parametrize("work", ["numpy", "numpy-fixed", "quantize"])
def test_estimate_covers_the_measured_peak(work):
    # 1500 x 4000 synapses: 48 MB per float64 copy of the weights
    d = description(4000, [1500])
    out = subprocess.run([sys.executable, "-c", MEASURE.format(d=d, work=work)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    grown, estimate, tables = (int(v) for v in out.stdout.split())
    # errs on the large side, by at most 3x (the tables are a worst case of their own)
    assert grown <= estimate <= 3 * grown + tables


# -- the refusal ----------------------------------------------------------------------

def test_refusal_names_the_layer_and_the_bytes(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: (10 * 2 ** 20, "a test limit"))
    net = network_from_dict(description(3000, [2000, 5]))
    with pytest.raises(MemoryLimitError) as info:
        Engine(net)
    err = info.value
    assert err.layer == "l0" and err.available == 10 * 2 ** 20
    assert err.needed == estimate_memory(net, "numpy").total > err.available
    msg = str(err)
    assert "\n" not in msg and "layer 'l0' needs" in msg and "weights [2,000, 3,000]" in msg
    assert f"{memory.format_bytes(err.needed)} of memory but 10.0 MiB are available " \
           "(a test limit)" in msg
    # what fits is not refused
    monkeypatch.setattr(memory, "available_memory", lambda: (err.needed, "a test limit"))
    assert require_memory(net, "numpy").total == err.needed


def test_available_memory_honours_the_address_space_limit():
    code = ("import resource\nfrom lava_gle.memory import available_memory, _read_kib_fields\n"
            "from pathlib import Path\n"
            "used = _read_kib_fields(Path('/proc/self/status'))['VmSize']\n"
            "resource.setrlimit(resource.RLIMIT_AS, (used + 2**28, resource.RLIM_INFINITY))\n"
            "print(*available_memory(), sep='|')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    room, source = out.stdout.strip().split("|")
    assert 0 < int(room) <= 2 ** 28 and source.startswith("RLIMIT_AS")


def test_available_memory_reads_meminfo():
    room, source = available_memory()
    assert room > 0 and source


# -- the commands, under an address-space limit --------------------------------------

def test_microcode_of_a_billion_neuron_layer_is_refused_up_front(tmp_path):
    net = write(tmp_path, description(10, [BILLION, 2]))
    line = refusal(run_cli(tmp_path, "microcode", net))
    assert "fixed-point quantisation of network 'huge'" in line
    assert "layer 'l0' needs" in line and "weights [1,000,000,000, 10]" in line
    assert "GiB of memory but" in line and "available (" in line


def test_simulate_of_a_billion_neuron_layer_is_refused_up_front(tmp_path):
    net = write(tmp_path, description(10, [BILLION]))
    np.save(tmp_path / "x.npy", np.zeros((5, 10)))
    line = refusal(run_cli(tmp_path, "simulate", net, "--inputs", "x.npy", "--out", "t.npz"))
    assert "the numpy engine of network 'huge'" in line and "layer 'l0' needs" in line
    assert not (tmp_path / "t.npz").exists()


def test_simulate_reports_the_input_shape_before_drawing_a_billion_inputs(tmp_path):
    net = write(tmp_path, description(BILLION, [4]))
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    line = refusal(run_cli(tmp_path, "simulate", net, "--inputs", "x.npy", "--out", "t.npz"))
    assert "inputs have shape [5, 2]" in line and "input.size = 1000000000" in line


def test_shape_error_comes_before_the_weights_are_drawn(monkeypatch):
    def no_draw(*args, **kwargs):
        raise AssertionError("weights drawn before the inputs were checked")

    monkeypatch.setattr(InitSpec, "draw", no_draw)
    net = network_from_dict(description(BILLION, [4]))
    for backend in ("numpy", "numpy-fixed"):
        with pytest.raises(ShapeError, match="input.size = 1000000000"):
            simulate(net, np.zeros((5, 2)), backend=backend)
