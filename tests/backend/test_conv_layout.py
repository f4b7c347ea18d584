"""One-output-channel 1x1 convolutions computed as channel dot products (``_backend/conv_layout.py``):
the values are the model's, only plain 1x1 convolutions are replaced, and a channels-last build with a
free dim does it (the CPU build is forced channels-last here; CUDA builds are by default)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402
from dynashape._backend.conv_layout import channel_dots, is_channel_dot  # noqa: E402
from dynashape._engine.file import read_engine  # noqa: E402

nn = torch.nn


class Heads(nn.Module):
    """A trunk with the convolutions the rule must tell apart: a 1x1 one-channel head (replaced), one
    without bias (replaced), and one-channel convolutions that are not dot products (kept)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, 1, 1)
        self.nobias = nn.Conv2d(8, 1, 1, bias=False)
        self.k3 = nn.Conv2d(8, 1, 3, padding=1)
        self.strided = nn.Conv2d(8, 1, 1, stride=2)
        self.padded = nn.Conv2d(8, 1, 1, padding=1)
        self.wide = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        t = self.trunk(x)
        return self.head(t), self.nobias(t) * 2, self.k3(t), self.strided(t), self.padded(t), self.wide(t)


def test_only_plain_one_channel_1x1_convolutions_are_replaced_and_values_are_kept() -> None:
    model = Heads().eval()
    rewritten = copy.deepcopy(model)
    assert channel_dots(torch, rewritten) == ["head", "nobias"]
    assert not is_channel_dot(torch, rewritten.k3) and is_channel_dot(torch, model.head)
    x = torch.rand(2, 3, 17, 23)
    with torch.no_grad():
        for want, got in zip(model(x), rewritten(x), strict=True):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_channels_last_build_with_a_free_dim_uses_the_dot_and_returns_a_dense_output() -> None:
    model = Heads().eval()
    prof = Profile({"x": ((1, 3, 16, 16), (1, 3, 24, 24), (1, 3, 32, 32))})
    e = dynashape.build(model, prof, backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 24, 24)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, channels_last=True, quiet=True)
    assert sorted(n.rsplit(".", 1)[-1] for n in e.manifest.backend_data["channel_dots"]) == ["head", "nobias"]
    x = torch.rand(1, 3, 19, 29)
    got = e.run({"x": x})
    with torch.no_grad():
        want = model(x)
    for g, w in zip(got.values(), want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    # every 4-D output is contiguous, as eager's are for a contiguous input: channels-last is the engine's
    # inside (a channels-last output made Inductor write FCN's last kernel with strided stores on CUDA)
    assert all(g.is_contiguous() for g in got.values()), [g.stride() for g in got.values()]
    assert list(got.values())[-1].shape[1] == 2  # the two-channel 1x1 convolution, channels-last inside


def test_a_static_build_keeps_its_convolutions() -> None:
    model = Heads().eval()
    shape = (1, 3, 24, 24)
    e = dynashape.build(model, Profile({"x": (shape, shape, shape)}), backend="inductor", device="cpu",
                        example_inputs={"x": torch.rand(shape)}, channels_last=True, quiet=True)
    assert "channel_dots" not in e.manifest.backend_data


def test_shared_weights_keep_the_compiled_layout_so_no_convolution_copies_its_weight_per_call(tmp_path) -> None:
    """The engine's one copy of the weights (``weights.pt``) holds them in the layout they were compiled
    in. Saved contiguous, every channels-last convolution copied its weight back on every call."""
    import io

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1)).eval()
    prof = Profile({"x": ((1, 3, 16, 16), (1, 3, 24, 24), (1, 3, 32, 32))})
    e = dynashape.build(model, prof, backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 24, 24)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, channels_last=True, quiet=True)
    path = str(tmp_path / "net.dyna")
    e.save(path)
    _, payloads = read_engine(path)  # what the saved file holds
    weights = torch.load(io.BytesIO(payloads["weights.pt"]), weights_only=True)
    kernels = {k: v for k, v in weights.items() if v.dim() == 4}
    assert len(kernels) == 2 and all(v.is_contiguous(memory_format=torch.channels_last) for v in kernels.values()), \
        {k: v.stride() for k, v in kernels.items()}
    loaded = dynashape.load(path)
    x = torch.rand(1, 3, 19, 29)
    loaded.run({"x": x})
    with torch.profiler.profile() as prof_run:
        got = loaded.run({"x": x})
    ops = [ev.name for ev in prof_run.events()]
    assert ops.count("aten::convolution") + ops.count("aten::_convolution") > 0, ops
    assert "aten::clone" not in ops and "aten::contiguous" not in ops, sorted(set(ops))
    with torch.no_grad():
        torch.testing.assert_close(next(iter(got.values())), model(x), rtol=1e-4, atol=1e-4)


def test_a_conv_net_imported_from_onnx_is_a_conv_net_and_runs_channels_last(seg_onnx: str, tmp_path) -> None:
    """The CUDA defaults (channels-last, aligned H/W) follow ``is_conv_net``, which also finds the
    convolutions of a model imported from ONNX (functional calls in an FX graph, no ``nn.Conv2d``)."""
    import onnx

    from dynashape._backend.alignment import is_conv_net
    from dynashape.onnx.importer import to_torch

    assert is_conv_net(torch, to_torch(onnx.load(seg_onnx)))
    mlp_path = str(tmp_path / "mlp.onnx")
    mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    dynashape.export(mlp, {"x": torch.rand(2, 8)}, mlp_path, dynamic_axes={"x": {0: "batch"}})
    assert not is_conv_net(torch, to_torch(onnx.load(mlp_path)))
    # forced on the CPU (a CUDA build does it by default); validation compares with the ONNX model
    prof = Profile({"input_1": ((1, 3, 64, 64), (1, 3, 96, 96), (1, 3, 128, 128))})
    e = dynashape.build(seg_onnx, prof, backend="inductor", device="cpu", channels_last=True, quiet=True)
    assert e.manifest.backend_data["channels_last"] is True
    assert [n.rsplit(":", 1)[-1] for n in e.manifest.backend_data["channel_dots"]] == ["/inner/head/Conv"]
    reference = dynashape.build(seg_onnx, prof, backend="onnxruntime", quiet=True)
    x = torch.rand(1, 3, 77, 101).numpy()
    for got, want in zip(e.run({"input_1": x}).values(), reference.run({"input_1": x}).values(), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)


def test_an_onnx_import_gets_the_same_rewrite_and_keeps_its_values(tmp_path) -> None:
    """In a model imported from ONNX the convolutions are calls in an FX graph: the plain 1x1
    one-channel ones become the dot product there too, and only those."""
    import onnx

    from dynashape.onnx.importer import to_torch

    model = Heads().eval()
    path = str(tmp_path / "heads.onnx")
    dynashape.export(model, {"x": torch.rand(1, 3, 24, 24)}, path, dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True)
    gm = to_torch(onnx.load(path))
    rewritten = copy.deepcopy(gm)
    names = channel_dots(torch, rewritten)
    assert len(names) == 2 and all("Conv" in n for n in names), names  # head and nobias; not k3, strided, padded, wide
    convs = [n for n in rewritten.graph.nodes if n.op == "call_function" and n.meta.get("onnx_node", ("", ""))[1] == "Conv"]
    assert sum(getattr(n.target, "__name__", "") == "conv" for n in convs) == 5  # trunk, k3, strided, padded, wide
    x = torch.rand(1, 3, 19, 29)
    with torch.no_grad():
        for want, got in zip(gm(x), rewritten(x), strict=True):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
