"""Reduced-precision validation on CUDA: a fp16 engine is judged against the source in fp16 on the
same device, with the fp32 difference reported as information. Skipped without a CUDA device.

Run on the GPU machine:
CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python -m pytest -q tests/builder/test_validation_gpu.py -m gpu
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import dynashape  # noqa: E402
from dynashape._data import InputHint, make_inputs  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


class _LastHidden(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _gpt2() -> torch.nn.Module:
    cfg = transformers.GPT2Config(vocab_size=1000, n_positions=128, n_embd=64, n_layer=2, n_head=4)
    torch.manual_seed(0)
    return _LastHidden(transformers.GPT2Model(cfg)).eval()


def test_fp16_gpt2_is_validated_against_fp16_eager_on_cuda(caplog: pytest.LogCaptureFixture) -> None:
    """A random {0, 1} mask had fully masked rows and compared fp16 CUDA with fp32 CPU: refused at 3.48.
    With right-padded masks, ids across the vocabulary and the fp16 reference, it builds."""
    model = _gpt2()
    ex = {"input_ids": torch.randint(0, 1000, (2, 16)), "attention_mask": torch.ones(2, 16, dtype=torch.long)}
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    with caplog.at_level(logging.INFO, logger="dynashape"):
        engine = dynashape.build(model, example_inputs=ex, dims={"batch": (1, 2, 4), "seq": (4, 16, 64)},
                                 dynamic_axes=axes, backend="inductor", device="cuda", precision="fp16", quiet=True)
    assert any("against the fp32 source (information)" in r.getMessage() for r in caplog.records)
    feed = make_inputs(engine.inputs, {"input_ids": (3, 37), "attention_mask": (3, 37)}, seed=5,
                       hints={"input_ids": InputHint("ids", 1000)})
    got = engine.run(feed)["output"]
    with torch.no_grad():
        ref = model.half().cuda()(*(torch.from_numpy(feed[n]).cuda() for n in ("input_ids", "attention_mask"))).float().cpu().numpy()
    assert np.abs(got.astype(np.float64) - ref).max() <= 1e-2 + 2e-2 * np.abs(ref).max()
