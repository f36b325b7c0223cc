"""``benchmarks/mnist1d_record.py``, the batch-by-batch record of an integer run: it
changes none of the run's integers, writes one line per training batch whose accuracies
average to the epoch's, and counts each clip once."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import benchmark_module
from lava_gle.experiments import mnist1d, training


def test_the_record_changes_no_integer_and_sums_to_the_run(tmp_path, monkeypatch,
                                                           tiny_mnist1d):
    config = tiny_mnist1d(normalizer_decay=0.9990234375)
    plain = mnist1d.run_mnist1d(config, tmp_path / "plain", backend="numpy-fixed-chip",
                                quiet=True)
    out = tmp_path / "record.jsonl"
    recorder = benchmark_module("mnist1d_record").Recorder(out, neurons_from=4, steps=None)
    monkeypatch.setattr(training, "stream_batch", recorder)
    recorded = mnist1d.run_mnist1d(config, tmp_path / "recorded", backend="numpy-fixed-chip",
                                   quiet=True)
    a, b = (np.load(tmp_path / d / "checkpoint.npz") for d in ("plain", "recorded"))
    trained = sorted(k for k in a if k.startswith("train."))
    assert trained and sorted(k for k in b if k.startswith("train.")) == trained
    for key in trained:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["batch"] for r in lines] == list(range(6))  # 3 batches of 4, 2 epochs
    for epoch in range(2):
        accs = [r["acc"] for r in lines[3 * epoch:3 * epoch + 3]]
        assert np.mean(accs) == pytest.approx(recorded["history"]["train_acc"][epoch], abs=1e-12)
    clipped = {}
    for r in lines:
        for name, n in r["clipped"].items():
            clipped[name] = clipped.get(name, 0) + n
    assert clipped == {k: v for k, v in recorded["saturation"].items() if v}
    assert "gamma" in lines[0]["layers"]["h0"] and "gamma" not in lines[0]["layers"]["out"]
    assert "peak_all" in lines[4]["layers"]["h0"] and "peak_all" not in lines[3]["layers"]["h0"]
    assert plain["test_accuracy"] == recorded["test_accuracy"]
