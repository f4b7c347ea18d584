"""Packages compiled side by side in child processes (``_backend/aoti_jobs.py``): the engine is the
same as one compiled package by package in this process, a child that fails falls back to this
process, and ``jobs`` is checked."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402
from dynashape._backend import aoti_jobs  # noqa: E402
from dynashape._errors import DynashapeError  # noqa: E402

nn = torch.nn
# three profiles, three packages: the first is compiled in this process, the other two side by side
PROFILES = [Profile({"x": ((1, 3, 16, 16), (1, 3, 24, 24), (1, 3, 32, 32))}),
            Profile({"x": ((1, 3, 33, 33), (1, 3, 40, 40), (1, 3, 64, 64))}),
            Profile({"x": ((1, 3, 65, 65), (1, 3, 80, 80), (1, 3, 96, 96))})]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1)).eval()


def _build(model: nn.Module, jobs: int | str | None, validate: bool = True) -> dynashape.Engine:
    return dynashape.build(model, PROFILES, backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 24, 24)},
                           dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True, jobs=jobs, validate=validate)


def test_packages_compiled_in_child_processes_give_the_same_engine(tmp_path, monkeypatch) -> None:
    # NOTE: the default (jobs=None) is one by one even where "auto" would use children (many cores):
    # side by side helped one model and hurt another on the GPU machine (see aoti_jobs)
    monkeypatch.setattr(aoti_jobs, "cpu_count", lambda: 64)
    model = _model()
    side_by_side, one_by_one = _build(model, 2), _build(model, None)
    assert side_by_side.manifest.backend_data["compile_jobs"] == 2
    assert "compile_jobs" not in one_by_one.manifest.backend_data
    assert "jobs" not in side_by_side.manifest.build_settings.to_json()  # the build's speed, not the engine
    path = str(tmp_path / "net.dyna")
    side_by_side.save(path)
    assert "2 packages compiled at a time, so they overlap" in str(dynashape.inspect(path))
    loaded = dynashape.load(path)
    for shape in ((1, 3, 19, 29), (1, 3, 50, 64), (1, 3, 70, 90)):
        x = torch.rand(shape)
        with torch.no_grad():
            want = model(x)
        a, b = next(iter(loaded.run({"x": x}).values())), next(iter(one_by_one.run({"x": x}).values()))
        torch.testing.assert_close(a, want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_failing_child_falls_back_to_compiling_in_this_process(monkeypatch, caplog) -> None:
    """A child that exits with an error (here: ``false`` in place of the Python interpreter) costs a
    warning, not the build: the package is compiled here, as a one-by-one build would."""
    false = subprocess.run(["which", "false"], capture_output=True, text=True).stdout.strip() or "/bin/false"
    monkeypatch.setattr(sys, "executable", false)
    model = _model()
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        e = _build(model, 2, validate=False)  # validation's own child would be ``false`` too
    assert sum("compiling it in this process" in r.getMessage() for r in caplog.records) == 2, [r.getMessage() for r in caplog.records]
    assert e.manifest.backend_data["compile_jobs"] == 2  # what was asked; the packages are the same either way
    for shape in ((1, 3, 20, 30), (1, 3, 40, 50), (1, 3, 90, 70)):
        x = torch.rand(shape)
        with torch.no_grad():
            torch.testing.assert_close(next(iter(e.run({"x": x}).values())), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("jobs", [0, -1, 2.0, "2", "many", True])
def test_jobs_must_be_a_positive_count(jobs) -> None:
    with pytest.raises(DynashapeError, match="jobs"):
        dynashape.build(_model(), PROFILES, backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 24, 24)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True, jobs=jobs)


def test_automatic_jobs_follow_cores_programs_and_model_size(monkeypatch) -> None:
    monkeypatch.setattr(aoti_jobs, "cpu_count", lambda: 16)
    assert aoti_jobs.auto_jobs(5, 100 << 20) == 4
    assert aoti_jobs.auto_jobs(3, 100 << 20) == 3
    assert aoti_jobs.auto_jobs(2, 0) == 1  # the second package would wait for the first anyway
    assert aoti_jobs.side_by_side(4, 5) == 4 and aoti_jobs.side_by_side(8, 3) == 2 and aoti_jobs.side_by_side(4, 2) == 1
    assert aoti_jobs.auto_jobs(5, aoti_jobs.AUTO_MAX_WEIGHT_BYTES + 1) == 1  # every child would hold the weights
    monkeypatch.setattr(aoti_jobs, "cpu_count", lambda: 2)  # the CI machines: one after the other
    assert aoti_jobs.auto_jobs(5, 0) == 1
    monkeypatch.setattr(aoti_jobs, "cpu_count", lambda: 128)
    assert aoti_jobs.auto_jobs(20, 0) == 8


def test_the_child_entry_point_names_its_usage() -> None:
    p = subprocess.run([sys.executable, "-m", "dynashape._backend.aoti_jobs"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "PROGRAM.pt2" in p.stderr


def test_each_package_is_compiled_with_its_own_profiles_settings(monkeypatch) -> None:
    """The builder's additions (ND tiling, for the CUDA profiles with a free H/W) are per profile: a
    static profile beside a dynamic one keeps Inductor's own choices. ND tiling never applies on the
    CPU, so the rule is replaced here by one that marks every profile with a free dim."""
    from dynashape._backend import inductor

    def marked(torch, source, profiles, settings, channels_last):
        free = any(r.min != r.max for p in profiles for _, r in p.items())
        return {"triton.max_tiles": 3} if free else {}  # a Triton key: no effect on a CPU compile

    seen: list[tuple[str, dict]] = []
    real = aoti_jobs.compile_here

    def record(torch, ep, path, configs):
        seen.append((path, dict(configs)))
        real(torch, ep, path, configs)

    monkeypatch.setattr(inductor, "default_configs", marked)
    monkeypatch.setattr(aoti_jobs, "compile_here", record)
    static = Profile({"x": ((1, 3, 48, 48),) * 3})
    e = dynashape.build(_model(), [PROFILES[0], static], backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 24, 24)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True, validate=False, inductor_config={"max_autotune": False})
    assert [c.get("triton.max_tiles") for _, c in seen] == [3, None]  # profile 0's package, then the static one's
    assert all(c["max_autotune"] is False for _, c in seen)  # the user's keys go to every package
    assert e.manifest.backend_data["inductor_defaults"] == [["triton.max_tiles", 3]]


def test_a_compile_that_the_builds_own_settings_break_is_done_again_without_them(monkeypatch, caplog) -> None:
    """ND tiling's 3 tiles are experimental in Inductor: where the compile fails with the settings the
    build added (not the user), it is compiled again without them, said in a warning, and not recorded."""
    from dynashape._backend import inductor

    monkeypatch.setattr(inductor, "default_configs", lambda *a, **k: {"triton.max_tiles": 3})
    real = aoti_jobs.compile_here

    def breaks_with_the_marker(torch, ep, path, configs):
        if "triton.max_tiles" in configs:
            raise RuntimeError("an Inductor failure with three tiles")
        real(torch, ep, path, configs)

    monkeypatch.setattr(aoti_jobs, "compile_here", breaks_with_the_marker)
    model = _model()
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        e = dynashape.build(model, PROFILES[0], backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 24, 24)},
                            dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True)
    assert any("compiling again without them" in r.getMessage() and "three tiles" in r.getMessage() for r in caplog.records)
    assert "inductor_defaults" not in e.manifest.backend_data
    x = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        torch.testing.assert_close(next(iter(e.run({"x": x}).values())), model(x), rtol=1e-4, atol=1e-4)


def test_a_compile_failure_without_the_builds_own_settings_is_not_retried(monkeypatch) -> None:
    def broken(torch, ep, path, configs):
        raise RuntimeError("a compile failure of the user's own")

    monkeypatch.setattr(aoti_jobs, "compile_here", broken)
    calls = []
    monkeypatch.setattr(aoti_jobs, "compile_all", lambda *a, **k: calls.append(1) or aoti_jobs.compile_here(None, None, "", {}))
    with pytest.raises(Exception, match="of the user's own"):
        dynashape.build(_model(), PROFILES[0], backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 24, 24)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True)
    assert calls == [1]
