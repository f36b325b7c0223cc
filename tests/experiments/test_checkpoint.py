"""The checkpoint file and the checks before a resume: the run record is read without the
arrays, a damaged array still stops the resume itself, and a changed schedule is named."""
from __future__ import annotations

import io
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from lava_gle.experiments.checkpoint import Checkpoint, CheckpointDamagedError
from lava_gle.errors import LavaGleError
from lava_gle.experiments.training import (
    TrainConfig, check_resumed_epochs, check_resumed_schedule,
)


@pytest.mark.parametrize("garbled, reason", [
    (b"\x93NUMPY\x01\x00 not a header", "ValueError"),
    (b"not an array", "member 'train.W.0' is not an array"),
])
def test_record_reads_the_run_record_without_the_arrays(tmp_path, garbled, reason):
    ckpt = Checkpoint(tmp_path, {"epochs": 4, "halve_every": 0})
    assert ckpt.record() is None and ckpt.recorded_config() is None
    ckpt.save({"train.W.0": np.arange(6.0).reshape(2, 3)}, {"epoch": 2, "batch": 17})
    # garble the array's member and keep the run record: only a read of the arrays notices
    with zipfile.ZipFile(ckpt.path) as zf:
        meta = zf.read("__meta__.npy")
    with zipfile.ZipFile(ckpt.path, "w") as zf:
        zf.writestr("__meta__.npy", meta)
        zf.writestr("train.W.0.npy", garbled)
    config, progress = ckpt.record()
    assert config == {"epochs": 4, "halve_every": 0} == ckpt.recorded_config()
    assert (progress["epoch"], progress["batch"]) == (2, 17)
    with pytest.raises(CheckpointDamagedError, match="no progress record 'elapsed_s'"):
        progress["elapsed_s"]
    with pytest.raises(CheckpointDamagedError) as caught:
        ckpt.load()
    assert f"is damaged ({reason}" in str(caught.value)


def test_record_of_a_file_without_a_run_record_is_damaged(tmp_path):
    ckpt = Checkpoint(tmp_path, {})
    buffer = io.BytesIO()
    np.savez(buffer, W=np.zeros(3))
    ckpt.path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointDamagedError, match="no valid run record"):
        ckpt.record()


def test_a_resumed_schedule_names_the_rates_of_the_epochs_still_to_run(tmp_path):
    """A run stopped in epoch 22 of a constant rate, resumed to anneal after epoch 32."""
    Checkpoint(tmp_path, {"halve_every": 0}).save({}, {"epoch": 21, "batch": 2243})
    cfg = TrainConfig(epochs=40, lr=4e-6, optimizer="sgd", halve_every=32)
    note = check_resumed_schedule(Checkpoint(tmp_path, {"halve_every": 32}), cfg)
    assert note == ("the schedule changes from --halve-every 0 to 32: epochs 22-32 at eta "
                    "4e-06, epochs 33-40 at eta 2e-06")
    ended = TrainConfig(epochs=6, lr=0.5, optimizer="sgd", halve_every=1)
    Checkpoint(tmp_path, {"halve_every": 0}).save({}, {"epoch": 1, "batch": 0})
    assert check_resumed_schedule(Checkpoint(tmp_path, {}), ended).endswith(
        "epoch 2 at eta 0.25, epoch 3 at eta 0.125, epoch 4 at eta 0.0625, epoch 5 at eta "
        "0.03125, epoch 6 at eta 0.015625")
    assert check_resumed_schedule(Checkpoint(tmp_path, {}), replace(ended, halve_every=0)) \
        is None


def test_an_ended_run_resumes_only_with_its_epochs_and_their_settings(tmp_path):
    """A run that has begun 20 epochs holds them in its weights: fewer are refused. A run
    that has ended may be resumed with its own settings (its results written again) or
    extended, but a change of the settings that act on epochs still to run would rewrite
    only its record (found by a new-user audit: --epochs 5 and --epoch-steps 3 on an
    ended 20-epoch run were accepted and reported)."""
    ran = {"epochs": 20, "halve_every": 0, "epoch_steps": 1}
    Checkpoint(tmp_path, ran).save({}, {"epoch": 20, "batch": 0})
    cfg = TrainConfig(epochs=20, lr=0.5, optimizer="sgd")
    check_resumed_epochs(Checkpoint(tmp_path, ran), cfg)
    check_resumed_epochs(Checkpoint(tmp_path, {**ran, "epoch_steps": 4}),
                         replace(cfg, epochs=21))
    with pytest.raises(LavaGleError, match="--epochs 5: the run in .* has begun 20 epochs"):
        check_resumed_epochs(Checkpoint(tmp_path, ran), replace(cfg, epochs=5))
    with pytest.raises(LavaGleError, match=r"^--epoch-steps 3 \(it ran with 1\): the run in "
                       r".* has trained all its 20 epochs.*--epochs 21 or more"):
        check_resumed_epochs(Checkpoint(tmp_path, {**ran, "epoch_steps": 3}), cfg)
    Checkpoint(tmp_path, ran).save({}, {"epoch": 19, "batch": 7})  # inside epoch 20
    check_resumed_epochs(Checkpoint(tmp_path, {**ran, "halve_every": 4}), cfg)
    with pytest.raises(LavaGleError, match="--epochs 19: .* has begun 20 epochs"):
        check_resumed_epochs(Checkpoint(tmp_path, ran), replace(cfg, epochs=19))


def test_a_checkpoint_of_another_experiment_is_named_as_such(tmp_path):
    """Found by a new-user audit: a Yin-Yang --out reused for MNIST-1D listed twenty
    differing settings instead of saying whose run it is."""
    Checkpoint(tmp_path, {"experiment": "yinyang", "backend": "numpy", "hidden": 120}).save(
        {}, {"epoch": 1, "batch": 0})
    with pytest.raises(LavaGleError, match=r"checkpoint.npz belongs to a run of experiment "
                                           r"'yinyang', not 'mnist1d'; choose another --out"):
        Checkpoint(tmp_path, {"experiment": "mnist1d", "backend": "numpy", "model": "42k"}
                   ).check()
