"""Alignment (dims stepping by a multiple), attention="sdpa" and the tuning options of the inductor backend.

The fast tests run the pieces on eager PyTorch (the padding verdict, the derived-dim export, the
run-time pad/crop, the attention swap); the two ``slow`` ones build engines (about 40 s and 75 s
on 2 CPU cores).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

import dynashape
from dynashape import Profile
from dynashape._backend.alignment import Aligner, aligned_dims, check_align, export_aligned, padding_verdict
from dynashape._backend.attention import swap_attention, use_sdpa
from dynashape._errors import BackendError, DynashapeError
from dynashape._records import Source
from dynashape._specs import TensorSpec
from dynashape._torchio import IOAdapter


class Encoder(nn.Module):
    """LayerNorm + nn.MultiheadAttention self-attention (as torchvision's ViT calls it) + a head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.ln = nn.LayerNorm(32)
        self.att = nn.MultiheadAttention(32, 4, batch_first=True)
        self.fc = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln(x)
        y, _ = self.att(y, y, y, need_weights=False)
        return self.fc(x + y)


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1)).eval()


ENC_SPEC = [TensorSpec("x", "float32", ("batch", 6, 32))]
ENC_PROFILE = Profile({"x": ((1, 6, 32), (8, 6, 32), (20, 6, 32))})
CONV_SPEC = [TensorSpec("x", "float32", (1, 3, "H", 16))]
CONV_PROFILE = Profile({"x": ((1, 3, 30, 16), (1, 3, 36, 16), (1, 3, 41, 16))})


def _source(module: nn.Module, specs: list[TensorSpec], example: torch.Tensor) -> Source:
    with torch.no_grad():
        out = module(example)
    return Source("module", specs, [TensorSpec("output", "float32", tuple(out.shape))], module=IOAdapter(module, ["x"], False).eval(),
                  example_inputs=[example])


# -- fast: the pieces --------------------------------------------------------------------------------


def test_check_align_names_the_valid_dims() -> None:
    assert check_align({"H": 8}, CONV_SPEC) == (("H", 8),)
    with pytest.raises(BackendError, match=r"'height', which no input has \| one of the model's named dims: H"):
        check_align({"height": 8}, CONV_SPEC)
    with pytest.raises(BackendError, match="an integer from 2 to 1024"):
        check_align({"H": 1}, CONV_SPEC)


def test_padding_verdict_safe_for_batch_refused_for_conv_borders() -> None:
    enc = _source(Encoder().eval(), ENC_SPEC, torch.rand(8, 6, 32))
    (batch,) = aligned_dims(ENC_SPEC, ENC_PROFILE, {"batch": 8})
    v = padding_verdict(torch, enc, ENC_PROFILE, batch)
    assert v.safe, v.reason
    assert v.crop == {"output": ((0, 1, 0),)}
    conv = _source(conv_net(), CONV_SPEC, torch.rand(1, 3, 36, 16))
    (h,) = aligned_dims(CONV_SPEC, CONV_PROFILE, {"H": 8})
    v = padding_verdict(torch, conv, CONV_PROFILE, h)
    assert not v.safe
    assert "changes when H=30 is padded to 32" in v.reason


def test_aligned_dims_range() -> None:
    (h,) = aligned_dims(CONV_SPEC, CONV_PROFILE, {"H": 8})
    assert h.k_range == (4, 5)  # 32 and 40 lie in 30..41
    assert aligned_dims(CONV_SPEC, Profile({"x": ((1, 3, 33, 16), (1, 3, 36, 16), (1, 3, 39, 16))}), {"H": 8}) == []


def test_export_aligned_uses_a_derived_dim() -> None:
    src = _source(conv_net(), CONV_SPEC, torch.rand(1, 3, 36, 16))
    dims = aligned_dims(CONV_SPEC, CONV_PROFILE, {"H": 8})
    planned = export_aligned(torch, src.module, CONV_SPEC, CONV_PROFILE, dims, lambda i, shape: torch.rand(shape))
    (c,) = planned.part.dims
    assert (c.lo, c.hi, c.modulus, c.residues) == (32, 40, 8, (0,))
    ph = next(n for n in planned.program.graph.nodes if n.op == "placeholder" and n.name in planned.program.graph_signature.user_inputs)
    h = ph.meta["val"].shape[2]
    coeff, root = h.node.expr.as_coeff_Mul()
    assert coeff == 8 and len(root.free_symbols) == 1  # Inductor sees H = 8 * k
    x = torch.rand(1, 3, 40, 16)
    torch.testing.assert_close(planned.program.module()(x)[0], src.module(x)[0])


def test_aligner_pads_to_the_next_multiple_and_crops() -> None:
    record = {"dims": [{"name": "batch", "step": 8, "lo": 1, "hi": 20, "aligned": [8, 24],
                        "padding": {"safe": True, "reason": "r", "pad_values": {"x": 0.0}, "crop": {"output": [[0, 1, 0]]}}}]}
    out_spec = [TensorSpec("output", "float32", ("batch", 6, 5))]
    al = Aligner(ENC_SPEC, out_spec, [record])
    x = torch.rand(13, 6, 32)
    (padded,), crop = al.pad(0, [x])
    assert padded.shape == (16, 6, 32) and torch.equal(padded[:13], x) and not padded[13:].any()
    assert crop is not None and crop([torch.ones(16, 6, 5)])[0].shape == (13, 6, 5)
    assert al.pad(0, [torch.rand(16, 6, 32)])[1] is None  # a multiple is not padded
    refused = {"dims": [{**record["dims"][0], "padding": {**record["dims"][0]["padding"], "safe": False}}]}
    assert not Aligner(ENC_SPEC, out_spec, [refused])


def test_export_keeps_fused_sdpa_under_a_symbolic_batch() -> None:
    """The graph AOTInductor compiles holds the fused attention op, with the module as it is and swapped."""
    from torch._inductor.decomposition import select_decomp_table

    enc = Encoder().eval()
    swapped, n = swap_attention(torch, enc)
    assert n == 1 and swapped is not enc and isinstance(enc.att, nn.MultiheadAttention)  # the user's model is untouched
    x = torch.rand(8, 6, 32)
    for m in (enc, swapped):
        with torch.no_grad():
            ep = torch.export.export(m, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},))
        ops = Counter(str(node.target) for node in ep.run_decompositions(select_decomp_table()).graph.nodes)
        assert any("_scaled_dot_product" in k for k in ops), ops
        assert not any("softmax" in k for k in ops), ops
    with torch.no_grad():
        torch.testing.assert_close(swapped(x), enc(x), atol=1e-5, rtol=1e-5)
        y = enc.ln(x)
        # calls the swap does not cover go to the original module (attention weights asked for)
        a, w = swapped.att(y, y, y)
        b, w2 = enc.att(y, y, y)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(w, w2)


def test_use_sdpa_checks_outputs() -> None:
    enc = Encoder().eval()
    new, n, why = use_sdpa(torch, enc, [torch.rand(4, 6, 32)], "cpu", "fp32")
    assert n == 1 and new is not enc and why is None
    plain = nn.Linear(3, 3)
    assert use_sdpa(torch, plain, [torch.rand(2, 3)], "cpu", "fp32") == (plain, 0, None)


class _OddAttention(nn.MultiheadAttention):
    """An attention module whose own forward is not plain self-attention: the swap would change it."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: object) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return super().forward(q, k, v, **kw)[0] * 2.0, None


class _HiddenAttention(nn.Module):
    """The attention's output never reaches the model's output (a zero head, as in a randomly initialized
    torchvision ViT): only a check of each module's own output sees a wrong swap."""

    def __init__(self) -> None:
        super().__init__()
        self.att = _OddAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.att(x, x, x, need_weights=False)[0] * 0.0 + x


def test_use_sdpa_checks_each_module_not_only_the_output() -> None:
    m = _HiddenAttention().eval()
    x = [torch.rand(2, 6, 32)]
    with pytest.raises(DynashapeError, match="changes attention module 0"):
        use_sdpa(torch, m, x, "cpu", "fp32")
    kept, n, why = use_sdpa(torch, m, x, "cpu", "fp32", strict=False)
    assert kept is m and n == 0 and why is not None and "kept the model's own attention" in why


def test_build_refuses_bad_options() -> None:
    m = conv_net()
    ex = {"x": torch.rand(1, 3, 36, 16)}
    with pytest.raises(DynashapeError, match="the inductor backend for these options"):
        dynashape.build(m, CONV_PROFILE, backend="onnxruntime", example_inputs=ex, dynamic_axes={"x": {2: "H"}}, align={"H": 8})
    with pytest.raises(DynashapeError, match="attention 'flash'"):
        dynashape.build(m, CONV_PROFILE, backend="inductor", example_inputs=ex, dynamic_axes={"x": {2: "H"}}, attention="flash")
    with pytest.raises(DynashapeError, match="tuning 'fast'"):
        dynashape.build(m, CONV_PROFILE, backend="inductor", example_inputs=ex, dynamic_axes={"x": {2: "H"}}, tuning="fast",
                        validate=False)


def test_export_hint_is_opt() -> None:
    """AOTInductor tunes at the size hint of each symbolic dim: the value it was traced with, the profile's opt."""
    from dynashape._backend.inductor import export_profile

    src = _source(conv_net(), CONV_SPEC, torch.rand(1, 3, 36, 16))
    (part,) = export_profile(torch, src.module, CONV_SPEC, CONV_PROFILE, "cpu", src.example_inputs)
    ph = next(n for n in part.program.graph.nodes if n.op == "placeholder" and n.name in part.program.graph_signature.user_inputs)
    h = ph.meta["val"].shape[2]
    assert h.node.shape_env.var_to_val[h.node.expr] == 36


# -- slow: engines -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_alignment_pads_one_package(tmp_path: object) -> None:
    enc = Encoder().eval()
    e = dynashape.build(enc, ENC_PROFILE, backend="inductor", example_inputs={"x": torch.rand(8, 6, 32)},
                        dynamic_axes={"x": {0: "batch"}}, align={"batch": 8}, align_pad=True, attention="sdpa", validate=False)
    bd = e.manifest.backend_data
    assert bd["attention"] == {"mode": "sdpa", "modules_swapped": 1}
    (rec,) = bd["alignment"]
    assert rec["general_part"] is False and rec["dims"][0]["aligned"] == [8, 24]
    assert [p.describe() for p in e.manifest.parts] == ["batch in 8..24 with batch % 8 in {0}"]
    assert e.manifest.outputs[0].shape == ("batch", 6, 5)
    for b in (1, 3, 8, 13, 20):
        x = np.random.default_rng(b).random((b, 6, 32), dtype=np.float32)
        with torch.no_grad():
            want = enc(torch.from_numpy(x)).numpy()
        got = e.run({"x": x})["output"]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
    path = f"{tmp_path}/enc.engine"
    e.save(path)
    text = str(dynashape.inspect(path))
    assert "aligned: batch by 8 (package for 8..24), other values pad up" in text
    assert "align=[['batch', 8]], align_pad=True, attention=sdpa" in text
    again = dynashape.load(path)
    x = np.random.default_rng(0).random((5, 6, 32), dtype=np.float32)
    np.testing.assert_allclose(again.run({"x": x})["output"], e.run({"x": x})["output"], atol=0, rtol=0)


@pytest.mark.slow
def test_conv_alignment_refuses_padding_and_keeps_a_general_part() -> None:
    m = conv_net()
    e = dynashape.build(m, CONV_PROFILE, backend="inductor", example_inputs={"x": torch.rand(1, 3, 36, 16)},
                        dynamic_axes={"x": {2: "H"}}, align={"H": 8}, align_pad=True, tuning="coordinate-descent", validate=False)
    (rec,) = e.manifest.backend_data["alignment"]
    assert rec["general_part"] is True and rec["dims"][0]["padding"]["safe"] is False
    assert e.manifest.build_settings.tuning == "coordinate-descent"
    assert [p.describe() for p in e.manifest.parts] == ["H in 32..40 with H % 8 in {0}", "the whole profile"]
    for h, part in ((30, 1), (32, 0), (33, 1), (40, 0), (41, 1)):
        x = torch.rand(1, 3, h, 16)
        assert e._runner.part(0, [x]) == part
        with torch.no_grad():
            want = m(x)
        torch.testing.assert_close(e.run({"x": x})["output"], want, atol=1e-5, rtol=1e-4)


def test_auto_align_picks_the_spatial_dims_of_conv_nets() -> None:
    """align=None on CUDA: H and W of a conv net's NCHW input by 32, where the range holds two multiples."""
    from dynashape._backend.alignment import auto_align

    spec = [TensorSpec("x", "float32", ("batch", 3, "H", "W"))]
    wide = Profile({"x": ((1, 3, 256, 200), (2, 3, 512, 210), (4, 3, 1024, 220))})  # W: 200..220 holds no multiple of 32
    src = _source(conv_net(), spec, torch.rand(2, 3, 512, 210))
    assert auto_align(torch, src, [wide]) == {"H": 32}
    assert auto_align(torch, _source(Encoder().eval(), ENC_SPEC, torch.rand(8, 6, 32)), [ENC_PROFILE]) == {}  # no conv
    narrow = Profile({"x": ((1, 3, 30, 200), (2, 3, 36, 210), (4, 3, 41, 220))})  # H: one multiple of 32 only
    assert auto_align(torch, src, [narrow]) == {}
