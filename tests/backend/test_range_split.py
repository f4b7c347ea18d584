"""Range splitting (``build(split=...)``, ``_backend/range_split.py``): one profile compiled as sub-ranges of a
dim, each exported (and so tuned) at its own opt; the user still sees one profile."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from _nets import BenignBatchGuardNet  # noqa: E402  (tests/backend, on the path as the test's folder)

import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402
from dynashape._backend import inductor as inductor_backend  # noqa: E402
from dynashape._backend.guard_split import FreeDim  # noqa: E402
from dynashape._backend.range_split import check_split, cuts_for, sub_profiles  # noqa: E402
from dynashape._errors import BackendError, DynashapeError  # noqa: E402
from dynashape._specs import TensorSpec  # noqa: E402

nn = torch.nn
SPECS = [TensorSpec("x", "float32", ("batch", 3, "H", "W")), TensorSpec("mask", "float32", ("batch", "H"))]


def test_check_split_takes_auto_counts_and_cuts_and_names_the_dims() -> None:
    assert check_split(None, SPECS) == () and check_split({}, SPECS) == ()
    assert check_split("auto", SPECS) == (("*", "auto"),)
    assert check_split({"H": 2, "batch": [16, 4, 16]}, SPECS) == (("H", 2), ("batch", (4, 16)))
    with pytest.raises(BackendError, match=r"split names the dim 'seq', which no input has.*H, W, batch"):
        check_split({"seq": "auto"}, SPECS)
    for bad in (0, 9, True, [0], [], "half", 2.5):
        with pytest.raises(BackendError, match=r"split\['batch'\]"):
            check_split({"batch": bad}, SPECS)
    with pytest.raises(BackendError, match="None, 'auto', or a dict"):
        check_split("yes", SPECS)


def test_auto_cuts_are_geometric_and_cuts_outside_a_range_are_dropped() -> None:
    def dim(lo: int, opt: int, hi: int) -> FreeDim:
        return FreeDim("batch", [(0, 0)], lo, opt, hi)

    assert cuts_for(dim(1, 16, 64), "auto") == [4, 16]  # 1..4, 5..16, 17..64: each at most 4x
    assert cuts_for(dim(16, 64, 512), "auto") == [51, 161]
    assert cuts_for(dim(8, 8, 32), "auto") == []  # 4x: one range
    assert cuts_for(dim(1, 1, 10**6), "auto") == cuts_for(dim(1, 1, 10**6), 8)  # at most MAX_PIECES
    assert cuts_for(dim(2, 2, 3), 4) == [2]  # no more pieces than values
    assert cuts_for(dim(1, 8, 64), [0, 8, 64, 100]) == [8]  # a cut must leave a value above it


def test_sub_profiles_cut_every_input_that_has_the_dim() -> None:
    prof = Profile({"x": ((1, 3, 8, 8), (16, 3, 16, 8), (64, 3, 32, 8)), "mask": ((1, 8), (16, 16), (64, 32))})
    subs = sub_profiles(SPECS, prof, check_split({"batch": [4, 16]}, SPECS))
    assert [[(s.lo, s.hi, s.opt) for s in r] for _, r in subs] == [[(1, 4, 2)], [(5, 16, 16)], [(17, 64, 33)]]
    first = subs[0][0]
    assert first["x"].min == (1, 3, 8, 8) and first["x"].opt == (2, 3, 16, 8) and first["x"].max == (4, 3, 32, 8)
    assert first["mask"].min == (1, 8) and first["mask"].opt == (2, 16) and first["mask"].max == (4, 32)
    # two split dims: every combination; a kept (aligned) dim is not cut
    both = sub_profiles(SPECS, prof, check_split({"batch": 2, "H": 2}, SPECS))
    assert len(both) == 4
    assert len(sub_profiles(SPECS, prof, check_split({"batch": 2, "H": 2}, SPECS), keep=["H"])) == 2
    assert sub_profiles(SPECS, prof, ()) == [(prof, ())]
    with pytest.raises(BackendError, match=r"split makes 64 sub-profiles.*at most 16"):
        sub_profiles(SPECS, prof, check_split({"batch": 8, "H": 8}, SPECS))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((2, 3))).softmax(-1)


@pytest.mark.slow
def test_each_sub_range_is_compiled_at_its_own_opt_and_the_engine_is_one_profile(monkeypatch, tmp_path) -> None:
    exported = []
    real = inductor_backend.export_profile

    def recording(torch_: object, module: object, inputs: object, profile: Profile, *args: object, **kwargs: object) -> object:
        exported.append((profile["x"].min[0], profile["x"].opt[0], profile["x"].max[0]))
        return real(torch_, module, inputs, profile, *args, **kwargs)

    monkeypatch.setattr(inductor_backend, "export_profile", recording)
    m = _Net().eval()
    e = dynashape.build(m, Profile({"x": ((1, 3, 16, 16), (8, 3, 16, 16), (64, 3, 16, 16))}), backend="inductor",
                        example_inputs={"x": torch.rand(8, 3, 16, 16)}, dynamic_axes={"x": {0: "batch"}}, split="auto", quiet=True)
    # NOTE: AOTInductor tunes at the example's sizes (test_alignment.py::test_export_hint_is_opt): each
    # sub-range is traced at its own opt, the user's opt where it lies inside
    assert exported == [(1, 2, 4), (5, 8, 16), (17, 33, 64)]
    assert len(e.manifest.profiles) == 1
    assert [p.describe() for p in e.manifest.parts] == ["batch in 1..4", "batch in 5..16", "batch in 17..64"]
    assert e.manifest.backend_data["split"] == [[[{"name": "batch", "lo": 1, "hi": 4, "opt": 2}],
                                                  [{"name": "batch", "lo": 5, "hi": 16, "opt": 8}],
                                                  [{"name": "batch", "lo": 17, "hi": 64, "opt": 33}]]]
    for b, part in ((1, 0), (4, 0), (5, 1), (16, 1), (17, 2), (64, 2)):
        x = torch.rand(b, 3, 16, 16)
        assert e._runner.part(0, [x]) == part
        with torch.no_grad():
            want = m(x).numpy()
        np.testing.assert_allclose(next(iter(e.run({"x": x.numpy()}).values())), want, atol=1e-5, rtol=1e-4)
    path = str(tmp_path / "split.engine")
    e.save(path)
    text = str(dynashape.inspect(path))
    assert "split into 3 sub-ranges, each compiled for its own opt: batch 1..4 (opt 2) | batch 5..16 (opt 8) | batch 17..64 (opt 33)" in text
    assert "split=[['*', 'auto']]" in text
    again = dynashape.load(path)
    x = np.random.default_rng(0).random((9, 3, 16, 16), dtype=np.float32)
    np.testing.assert_array_equal(next(iter(again.run({"x": x}).values())), next(iter(e.run({"x": x}).values())))


@pytest.mark.slow
def test_a_split_beside_guard_split_parts_and_a_padded_edge_value(tmp_path) -> None:
    m = BenignBatchGuardNet()  # the guard split runs inside each sub-range
    prof = Profile({"x": ((1, 3, 8, 8), (2, 3, 12, 8), (16, 3, 16, 8))})
    e = dynashape.build(m, prof, backend="inductor", example_inputs={"x": torch.rand(2, 3, 12, 8)},
                        dynamic_axes={"x": {0: "batch", 2: "H"}}, split={"batch": [4]}, quiet=True)
    described = sorted(p.describe() for p in e.manifest.parts)
    assert described == ["batch in 2..4, H in 8..16 with H % 2 in {0}", "batch in 2..4, H in 9..15 with H % 2 in {1}",
                         "batch in 5..16, H in 8..16 with H % 2 in {0}", "batch in 5..16, H in 9..15 with H % 2 in {1}"], described
    (edge,) = [d for d in e.manifest.backend_data["alignment"][0]["dims"] if d.get("edge")]
    assert (edge["name"], edge["step"], edge["hi"]) == ("batch", 2, 16)  # the whole profile's max, as the schema wants
    path = str(tmp_path / "e.engine")
    e.save(path)
    loaded = dynashape.load(path)
    for b, h in ((1, 8), (1, 9), (4, 9), (5, 10), (16, 16), (3, 13)):
        x = torch.rand(b, 3, h, 8)
        np.testing.assert_allclose(next(iter(loaded.run({"x": x}).values())), m(x).numpy(), atol=1e-6)


def test_split_needs_the_inductor_backend() -> None:
    m = _Net().eval()
    with pytest.raises(DynashapeError, match="align/split/attention with backend 'onnxruntime'"):
        dynashape.build(m, Profile({"x": ((1, 3, 16, 16), (8, 3, 16, 16), (64, 3, 16, 16))}), backend="onnxruntime",
                        example_inputs={"x": torch.rand(8, 3, 16, 16)}, dynamic_axes={"x": {0: "batch"}}, split="auto", quiet=True)


class _Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(50, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        return self.out(h.softmax(1) * h)


@pytest.mark.slow
def test_a_plan_with_split_is_built_as_its_sub_ranges(tmp_path) -> None:
    """``plan(split=True)`` on a length stream, then ``build(plan=...)``: the plan's sub-ranges (their opts
    from the traffic) are the engine's parts."""
    from dynashape._specs import TensorSpec

    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(4, 16, 300), rng.integers(16, 128, 100)])
    path = tmp_path / "lengths.txt"
    path.write_text("\n".join(map(str, lengths)) + "\n")
    plan = dynashape.plan(dims={"seq": str(path), "batch": "1"}, inputs=[TensorSpec("ids", "int64", ("batch", "seq"))],
                          device="cuda", backend="inductor", calibrate_cost=False, max_profiles=1, ladder=False, split=True)
    triples = plan.details["split"]["seq"]
    assert len(triples) >= 2
    m = _Tokens().eval()
    e = dynashape.build(m, backend="inductor", device="cpu", example_inputs={"ids": torch.randint(0, 50, (1, 16))},
                        dynamic_axes={"ids": {0: "batch", 1: "seq"}}, plan=plan, quiet=True)
    assert e.manifest.build_settings.split == (("seq", tuple(tuple(t) for t in triples)),)
    assert [[(s["lo"], s["opt"], s["hi"]) for s in sub] for sub in e.manifest.backend_data["split"][0]] == [[tuple(t)] for t in triples]
    for n in (4, int(triples[0][2]), int(triples[-1][0]), 127):
        ids = torch.randint(0, 50, (1, n))
        with torch.no_grad():
            want = m(ids).numpy()
        np.testing.assert_allclose(next(iter(e.run({"ids": ids.numpy()}).values())), want, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_an_aligned_dim_named_in_split_is_not_split_and_the_build_says_so(caplog) -> None:
    import logging

    m = _Net().eval()
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        e = dynashape.build(m, Profile({"x": ((1, 3, 16, 16), (1, 3, 32, 32), (1, 3, 96, 96))}), backend="inductor",
                            example_inputs={"x": torch.rand(1, 3, 32, 32)}, dynamic_axes={"x": {2: "H", 3: "W"}},
                            align={"H": 16}, split={"H": 2, "W": 2}, validate=False, quiet=True)
    assert any("split: H is aligned" in r.getMessage() and "align={}" in r.getMessage() for r in caplog.records)
    # W is split into two sub-ranges; H keeps its aligned part in each of them
    assert [[s["name"] for s in sub] for sub in e.manifest.backend_data["split"][0]] == [["W"], ["W"]]


def test_more_packages_than_an_engine_file_holds_is_refused_before_compiling(monkeypatch) -> None:
    """Sub-ranges multiply the guard-split and aligned parts: past the file's bound on a profile's
    packages (256; lowered here to 2) the build stops with the count, before any compile."""
    monkeypatch.setattr(inductor_backend, "MAX_PROFILE_PARTS", 2)
    m = _Net().eval()
    with pytest.raises(BackendError, match=r"would be 3 packages \(3 sub-ranges x .*at most 2 packages per profile"):
        dynashape.build(m, Profile({"x": ((1, 3, 16, 16), (8, 3, 16, 16), (64, 3, 16, 16))}), backend="inductor",
                        example_inputs={"x": torch.rand(8, 3, 16, 16)}, dynamic_axes={"x": {0: "batch"}}, split="auto", quiet=True)
