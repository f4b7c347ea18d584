"""What the build learned about the inputs' data travels in the engine file, so that data generated
for a saved engine (bench, run without data, the plan's timing) stays valid for the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import dynashape
from dynashape._data import IDS, MASK, make_inputs


def test_hints_survive_save_and_load_and_feed_bench(tmp_path: Path, bert_onnx: str) -> None:
    engine = dynashape.build(bert_onnx, dims={"batch": (1, 2, 4), "seq": (4, 16, 32)}, backend="onnxruntime", quiet=True)
    hints = engine.manifest.input_hints
    assert hints["input_ids"].role == IDS and hints["input_ids"].vocab and hints["input_ids"].vocab > 2
    assert hints["attention_mask"].role == MASK
    path = tmp_path / "bert.engine"
    engine.save(path)
    loaded = dynashape.load(path)
    assert loaded.manifest.input_hints == hints
    vocab = hints["input_ids"].vocab
    feed = make_inputs(loaded.inputs, {"input_ids": (2, 32), "attention_mask": (2, 32)}, hints=loaded.manifest.input_hints)
    ids = feed["input_ids"]
    assert ids.max() < vocab and len(np.unique(ids)) > 2  # the whole table, not 0/1
    # bench on the saved engine runs on those feeds
    report = dynashape.bench(loaded, {"input_ids": (2, 32), "attention_mask": (2, 32)}, iterations=3, warmup_ms=0)
    assert report is not None
