"""The LagLine experiment: input stream, networks, learning towards the teacher, resume,
damaged checkpoints and the run lock."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lava_gle.experiments.checkpoint import CheckpointDamagedError, ExperimentInterrupted
from lava_gle.experiments.lagline import (
    LaglineConfig, SmoothedSteps, make_inputs, run_lagline, student_initial, student_network,
    teacher_network,
)


def test_stream_windows_equal_the_whole_signal():
    stream = SmoothedSteps(seed=3, batch=4, total_steps=1000, sigma_steps=5.0)
    whole = stream.window(0, 1000)
    parts = np.concatenate([stream.window(a, min(a + 137, 1000)) for a in range(0, 1000, 137)])
    np.testing.assert_array_equal(parts, whole)
    assert whole.shape == (1000, 4, 1)
    assert np.all(np.abs(whole) <= 1.5)
    # smooth: no jump larger than a Gaussian of sigma 5 steps allows for a level change of 3
    assert np.max(np.abs(np.diff(whole, axis=0))) < 3.0 / (5.0 * np.sqrt(2 * np.pi)) * 1.01
    # streams differ from each other and hold levels for >= 100 steps
    assert not np.allclose(whole[:, 0], whole[:, 1])


def test_networks_carry_the_paper_parameters():
    config = LaglineConfig(learn_tau=True)
    teacher = teacher_network(config)
    assert [float(l.weights[0, 0]) for l in teacher.layers] == [1.0, 2.0]
    assert [float(l.tau_m) for l in teacher.layers] == [1.0, 2.0]
    assert not teacher.learning.enabled
    gle = student_network(config, prospective_errors=True)
    inst = student_network(config, prospective_errors=False)
    w0, tau0 = student_initial(config)
    assert gle.learning.prospective_errors and not inst.learning.prospective_errors
    assert gle.learning.learn_tau and gle.learning.gamma == 1.0 and gle.learning.beta == 0.01
    for net in (gle, inst):
        np.testing.assert_array_equal([l.weights[0, 0] for l in net.layers], w0)
        np.testing.assert_array_equal([float(l.tau_m) for l in net.layers], tau0)
    assert np.all(tau0 >= 10 * config.dt) and np.all(tau0 <= 1.0)
    assert config.total_steps == 405_000
    assert make_inputs(LaglineConfig.quick(), steps=10).shape == (10, 20, 1)


def test_quick_run_learns_the_teacher_weights(tmp_path):
    metrics = run_lagline(LaglineConfig.quick(), tmp_path, quiet=True)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["w_learned"] == metrics["w_learned"]
    for key in ("w_learned", "w_teacher", "tau_m_learned", "tau_m_teacher", "final_loss"):
        assert key in saved
    assert (tmp_path / "lagline.png").stat().st_size > 10_000
    w0, w, wt = (np.array(metrics[k]) for k in ("w_initial", "w_learned", "w_teacher"))
    # GLE moves both weights most of the way to the teacher's
    assert np.all(np.abs(w - wt) < 0.05 * np.abs(w0 - wt))
    gle, inst = metrics["variants"]["gle"], metrics["variants"]["instantaneous"]
    assert gle["final_loss"] < 1e-6 < inst["final_loss"]
    # the loss curve falls by orders of magnitude
    history = np.load(tmp_path / "checkpoint.npz")
    loss = history["history.loss.gle"]
    assert loss[-1] < 1e-4 * loss[:3].max()


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed"])
def test_interrupted_run_resumes_to_the_same_result(tmp_path, stop_after, backend):
    config = LaglineConfig.quick(train_time=30.0, chunk_steps=500, learn_tau=True,
                                 optimizer="sgd" if backend == "numpy-fixed" else "adam")
    whole = run_lagline(config, tmp_path / "whole", backend=backend, quiet=True)
    with pytest.raises(ExperimentInterrupted, match="rerun"):
        run_lagline(config, tmp_path / "cut", backend=backend, quiet=True,
                    guard=stop_after(3))
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = run_lagline(config, tmp_path / "cut", backend=backend, quiet=True)
    for key in ("w_learned", "tau_m_learned", "final_loss", "variants"):
        assert resumed[key] == whole[key]
    assert "resuming at step 2000" in (tmp_path / "cut" / "log.txt").read_text()


def test_checkpoint_of_another_configuration_is_refused(tmp_path, stop_after):
    from lava_gle.errors import LavaGleError
    config = LaglineConfig.quick(train_time=5.0)
    with pytest.raises(ExperimentInterrupted):
        run_lagline(config, tmp_path, quiet=True, guard=stop_after(1))
    with pytest.raises(LavaGleError, match="different settings.*seed"):
        run_lagline(LaglineConfig.quick(train_time=5.0, seed=1), tmp_path, quiet=True)
    assert run_lagline(LaglineConfig.quick(train_time=5.0, seed=1), tmp_path, quiet=True,
                       fresh=True)["seed"] == 1


def test_simulate_lagline_learns_with_the_sgd_rule():
    from lava_gle.experiments.lagline import simulate_lagline
    config = LaglineConfig.quick(batch=4)
    runs = simulate_lagline(config, "numpy", steps=3000)
    w0, _ = student_initial(config)
    w = np.array([runs["gle"]["W.l0"][0, 0], runs["gle"]["W.l1"][0, 0]])
    assert runs["gle"]["output"].shape == (3000, 4, 1)
    assert np.all(np.abs(w - [1.0, 2.0]) < 0.1 * np.abs(w0 - [1.0, 2.0]))


@pytest.mark.lava
def test_simulate_lagline_through_lava_float_equals_the_engine():
    from lava_gle.experiments.lagline import simulate_lagline
    config = LaglineConfig.quick(batch=1)
    engine = simulate_lagline(config, "numpy", steps=300)
    lava = simulate_lagline(config, "lava-float", steps=300)
    for name in ("gle", "instantaneous"):  # the engine's kernels at batch 1: the same bits
        np.testing.assert_array_equal(lava[name]["output"], engine[name]["output"])
        np.testing.assert_array_equal(lava[name]["W.l1"], engine[name]["W.l1"])


def _rewritten(meta_change=None, drop: str | None = None):
    """A damage that rewrites the archive: change its run record, or drop an array."""
    def damage(path):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != drop}
        if meta_change is not None:
            arrays["__meta__"] = np.array(meta_change(json.loads(str(arrays["__meta__"]))))
        np.savez(path, **arrays)
    return damage


def _bytes(change):
    def damage(path):
        path.write_bytes(change(path.read_bytes()))
    return damage


def _single_array(path):
    with open(path, "wb") as fh:
        np.save(fh, np.arange(3.0))


@pytest.mark.parametrize("damage, reason", [
    (_bytes(lambda b: b""), "EOFError"),
    (_bytes(lambda b: b[:len(b) // 2]), "BadZipFile"),
    (_bytes(lambda b: b"not a checkpoint\n"), "ValueError"),
    (_single_array, "a single array"),
    (_rewritten(drop="__meta__"), "no valid run record"),
    (_rewritten(lambda meta: "{broken"), "no valid run record"),
    (_rewritten(lambda meta: json.dumps({"config": meta["config"]})), "no valid run record"),
    (_rewritten(lambda meta: json.dumps({**meta, "progress": {"elapsed_s": 0.0}})),
     "no progress record 't_done'"),
    (_rewritten(drop="teacher.W.1"), "no array 'teacher.W.1'"),
])
def test_damaged_checkpoint_is_one_clear_error_pointing_to_fresh(tmp_path, stop_after, damage,
                                                                 reason):
    config = LaglineConfig.quick(train_time=5.0)
    with pytest.raises(ExperimentInterrupted):
        run_lagline(config, tmp_path, quiet=True, guard=stop_after(0))
    path = tmp_path / "checkpoint.npz"
    damage(path)
    with pytest.raises(CheckpointDamagedError) as caught:
        run_lagline(config, tmp_path, quiet=True)
    message = str(caught.value)
    assert message.startswith(f"checkpoint {path} is damaged (") and reason in message
    assert "pass --fresh" in message and "\n" not in message
    assert run_lagline(config, tmp_path, quiet=True, fresh=True)["steps"] == config.total_steps


def test_lock_of_a_dead_run_is_taken_over(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    (tmp_path / "run.lock").write_text(finished.stdout)  # left by a killed run

    class ReadLock:  # a guard that records who holds the lock while the run trains
        def __init__(self):
            self.holders: list[str] = []

        @property
        def requested(self) -> bool:
            self.holders.append((tmp_path / "run.lock").read_text().strip())
            return False
    guard = ReadLock()
    run_lagline(LaglineConfig.quick(train_time=5.0), tmp_path, quiet=True, guard=guard)
    assert guard.holders and set(guard.holders) == {str(os.getpid())}
    assert not (tmp_path / "run.lock").exists()
