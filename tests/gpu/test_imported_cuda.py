"""Issue 4 on CUDA: ONNX files (TorchScript exporter) imported with dynashape.onnx.to_torch and built as CUDA
inductor engines, compared with ONNX Runtime (CPU, fp32) at 5 shapes per profile. Skipped without CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
import dynashape  # noqa: E402
from dynashape import Profile, zoo  # noqa: E402
from dynashape._data import make_inputs  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

# model -> (example dims for the export, profile min/opt/max dims, 5 test shapes as dims)
CASES = {
    "segmentation": ({"image_height": 64, "image_width": 64}, ((32, 32), (64, 64), (128, 128)),
                     [(32, 32), (40, 96), (64, 64), (127, 33), (128, 128)]),
    "resnet_like": ({"batch": 2, "height": 32, "width": 32}, ((1, 16, 16), (4, 32, 32), (8, 64, 64)),
                    [(1, 16, 16), (3, 20, 44), (4, 32, 32), (8, 64, 64), (5, 17, 61)]),
    "bert_like": ({"batch": 2, "seq": 16}, ((1, 4), (2, 16), (8, 64)), [(1, 4), (2, 16), (3, 7), (8, 64), (5, 33)]),
    "gpt2_like": ({"batch": 2, "seq": 16}, ((1, 4), (2, 16), (8, 64)), [(1, 4), (2, 16), (3, 7), (8, 64), (5, 33)]),
    "unet_like": ({"batch": 2, "height": 32, "width": 32}, ((1, 16, 16), (2, 32, 32), (4, 64, 64)),
                  [(1, 16, 16), (2, 32, 32), (3, 24, 40), (4, 64, 64), (2, 48, 16)]),
    "vit_like": ({"batch": 2}, ((1,), (4,), (16,)), [(1,), (2,), (5,), (9,), (16,)]),
    "superres": ({"batch": 2, "height": 24, "width": 24}, ((1,), (2,), (8,)), [(1,), (2,), (3,), (5,), (8,)]),
}


def _shape_of(z: zoo.ZooModel, dims: tuple[int, ...], example: dict) -> dict[str, tuple[int, ...]]:
    """Input shapes with the model's dynamic axes set from ``dims`` (in the order the axes' names first appear)."""
    names = list(dict.fromkeys(n for axes in z.dynamic_axes.values() for n in axes.values()))
    values = dict(zip(names, dims, strict=True))
    out = {}
    for inp, t in example.items():
        s = list(t.shape)
        for axis, name in z.dynamic_axes.get(inp, {}).items():
            s[axis] = values[name]
        out[inp] = tuple(s)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_imported_onnx_builds_as_cuda_engine(name: str, tmp_path) -> None:
    z = zoo.get(name)
    ex_dims, (lo, opt, hi), test_dims = CASES[name]
    example = z.example_inputs(**ex_dims)
    path = tmp_path / f"{name}.onnx"
    dynashape.export(z.make(), example, path, dynamic_axes=z.dynamic_axes, output_names=list(z.output_names))
    profile = Profile({n: (_shape_of(z, lo, example)[n], _shape_of(z, opt, example)[n], _shape_of(z, hi, example)[n]) for n in example})
    engine = dynashape.build(str(path), profile, backend="inductor", device="cuda")  # validated against ORT in a child
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    specs = engine.inputs
    for i, dims in enumerate(test_dims):
        feed = make_inputs(specs, _shape_of(z, dims, example), seed=i)
        if name in ("bert_like", "gpt2_like"):
            feed["input_ids"] = np.random.default_rng(i).integers(0, 100, feed["input_ids"].shape).astype(np.int64)
        expected = sess.run([o.name for o in engine.outputs], feed)
        got = engine.run({k: torch.from_numpy(v).cuda() for k, v in feed.items()})
        for o, e in zip(engine.outputs, expected, strict=True):
            g = got[o.name].cpu().numpy()
            err = float(np.abs(g - e).max()) / max(1.0, float(np.abs(e).max()))
            print(name, dims, o.name, f"{err:.2e}")
            assert err < 1e-4, (name, dims, err)
