"""Weights shared across the profiles of one inductor engine, checked on the CPU.

TensorRT keeps one copy of the weights for all profiles of an engine; dynashape's inductor engines
store them once (weights.pt) and point every profile's package at the same tensors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402

pytestmark = pytest.mark.slow


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 2048), torch.nn.ReLU(),
                               torch.nn.Linear(2048, 1024)).eval()


def _rss_after_load(path: str) -> int:
    code = ("import json, resource, dynashape; import torch; "
            "b = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"e = dynashape.load({path!r}); "
            "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - b))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1])) * 1024


def test_three_profiles_cost_at_most_1_15x_one(tmp_path) -> None:
    model = _mlp()
    one = [Profile({"x": ((1, 1024), (4, 1024), (8, 1024))})]
    three = [*one, Profile({"x": ((8, 1024), (16, 1024), (32, 1024))}), Profile({"x": ((32, 1024), (64, 1024), (128, 1024))})]
    paths = {}
    for name, ps in (("one", one), ("three", three)):
        e = dynashape.build(model, ps, backend="inductor", example_inputs={"x": torch.rand(4, 1024)})
        assert e.manifest.backend_data["shared_weights"] is True
        paths[name] = str(tmp_path / f"{name}.engine")
        e.save(paths[name])
        # every profile computes the right thing with the shared tensors
        for b in (1, 8, 100)[: len(ps) if name == "three" else 1]:
            x = torch.rand(b, 1024)
            assert torch.allclose(e.run({"x": x})["output"], model(x), atol=1e-4, rtol=1e-4)
    size_one, size_three = os.path.getsize(paths["one"]), os.path.getsize(paths["three"])
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert size_one > weights  # the weights are in the file once...
    assert size_three <= 1.15 * size_one, (size_one, size_three)  # ...and not once per profile
    rss_one, rss_three = _rss_after_load(paths["one"]), _rss_after_load(paths["three"])
    assert rss_three <= rss_one + 0.15 * weights + 16 * 2**20, (rss_one, rss_three)


def test_unshared_engine_carries_weights_per_profile(tmp_path) -> None:
    """The control: with share_weights off each package embeds its own copy, which is what sharing saves."""
    from dynashape._builder.builder import build

    model = torch.nn.Linear(512, 512).eval()
    ps = [Profile({"x": ((1, 512), (2, 512), (4, 512))}), Profile({"x": ((4, 512), (8, 512), (16, 512))})]
    shared = build(model, ps, backend="inductor", example_inputs={"x": torch.rand(2, 512)})
    assert "weights.pt" in shared._payloads
    sizes = {k: len(v) for k, v in shared._payloads.items()}
    assert all(sizes[f"profile{k}.pt2"] < sizes["weights.pt"] * 2 + 4 * 2**20 for k in range(2))
