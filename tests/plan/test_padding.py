"""Pad values and real-looking requests follow the roles of the one input generator (dynashape._data)."""

from __future__ import annotations

import numpy as np

from dynashape import TensorSpec
from dynashape._data import IDS, MASK, InputHint, role_of
from dynashape._plan.padding import PAD_VALUE, make_real_inputs, pad_array, pad_value

SPECS = [
    TensorSpec("input_ids", "int64", ("batch", "seq")),
    TensorSpec("attention_mask", "int64", ("batch", "seq")),
    TensorSpec("keep", "bool", ("batch", "seq")),  # a mask by dtype, not by name
    TensorSpec("token_type_ids", "int64", ("batch", "seq")),
    TensorSpec("features", "float32", ("batch", "seq", 4)),
]
SHAPES = {"input_ids": (2, 9), "attention_mask": (2, 9), "keep": (2, 9), "token_type_ids": (2, 9), "features": (2, 9, 4)}


def test_real_inputs_follow_the_generators_roles() -> None:
    feed = make_real_inputs(SPECS, SHAPES)
    assert [role_of(s) for s in SPECS][:3] == ["int", MASK, MASK]
    # every mask position is real, whichever way the mask was recognized
    assert feed["attention_mask"].dtype == np.int64 and (feed["attention_mask"] == 1).all()
    assert feed["keep"].dtype == bool and feed["keep"].all()
    # ids never take the pad id, so a padded position differs from every real one
    assert feed["input_ids"].min() >= 1 and feed["input_ids"].max() <= 9
    # segments as the generator makes them (0 then 1), floats in the spec's dtype
    assert set(np.unique(feed["token_type_ids"])) == {0, 1}
    assert feed["features"].dtype == np.float32 and feed["features"].shape == (2, 9, 4)
    # a graph hint (an embedding of 4 rows) bounds the ids
    hinted = make_real_inputs(SPECS, SHAPES, hints={"input_ids": InputHint(IDS, 4)})
    assert hinted["input_ids"].min() >= 1 and hinted["input_ids"].max() <= 3
    again = make_real_inputs(SPECS, SHAPES)
    assert all(np.array_equal(feed[n], again[n]) for n in feed)  # deterministic


def test_pad_values_by_role() -> None:
    assert {s.name: pad_value(s) for s in SPECS} == {s.name: PAD_VALUE[role_of(s)] for s in SPECS}
    assert pad_value(SPECS[1]) == 0.0  # a mask pads with "masked out"
    x = np.ones((1, 3), bool)
    padded = pad_array(x, [1], 5, pad_value(SPECS[2]))
    assert padded.tolist() == [[True, True, True, False, False]]
