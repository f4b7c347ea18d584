"""AOTInductor compiles of several exported programs at once, in child processes.

A dynamic profile often becomes several packages: an aligned one and a general one
(:mod:`.alignment`), or one per class of the model's guards (:mod:`.guard_split`); FCN- and
DeepLabV3-ResNet50 with free H/W are five. Each package is compiled by
``torch._inductor.aoti_compile_and_package``, which is mostly single-threaded Python (lowering,
scheduling, code generation) followed by one C++ compile of the wrapper. The first package of a model
compiles its kernels cold; the later ones find most of them in Inductor's cache and take a third of
the time, one after the other. Those later ones are what can run side by side. Inductor's compile
state is global (its config, its graph handlers), so the compiles cannot share a process: each one is
a child that loads the program saved with ``torch.export.save``.

NOTE (why it is not the default): measured on an H200 machine (32 cores, the other GPU's shard building
beside it), it helped one model and hurt another: DeepLabV3-ResNet50 (5 packages, BENCHMARKS.md run 5)
178.5 s against 201.4 s one by one, but FCN-ResNet50 (5 packages, run 6) 222.6 s against 184.3 s. The
children are slower than the same compiles one by one in a warm process (83 s for four together against
24-30 s each): each starts Python, torch and CUDA, and they share the cores and Inductor's own compile
workers. So ``jobs=None`` compiles one by one in the build's process, and ``jobs="auto"`` (or a count)
is for machines where it has been measured to help.

NOTE: compiles side by side also share the GPU while Inductor benchmarks its Triton configs, and a config
chosen under that load can be a bad one. Measured on the H200 (2026-12-01, BENCHMARKS.md run 9): a
DeepLabV3-ResNet50 build made while three other builds ran beside it (separate processes) had one
BatchNorm+ReLU kernel at 428.7 us a call at 517x611 (14 launches; 38.3 us in the static engine). The
same build made alone had no such kernel (all its BatchNorm+ReLU kernels together: 103.3 us a call, the
static engine's 125.2), and its call took 1.70-1.75 ms against 2.30 ms.

Where a child cannot do it (a program that does not serialize, an op the child does not know, a
crash), the package is compiled in this process instead, as a one-at-a-time build would have: a
real compile error is then raised here, with its real traceback and the same handling as before.

Usage (child): python -m dynashape._backend.aoti_jobs PROGRAM.pt2 PACKAGE.pt2 SETTINGS.json
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import _progress
from .._torch_compat import exact_shape_arithmetic

log = logging.getLogger("dynashape")

#: above this many bytes of weights per program, automatic jobs stay at 1: every child holds its own
#: copy of the weights on the device and in memory, and each program is written to disk first
AUTO_MAX_WEIGHT_BYTES = 1 << 30


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_jobs(programs: int, weight_bytes: int) -> int:
    """How many compiles to run at once for ``jobs="auto"``: one per 4 cores (each compile also
    starts Inductor's own Triton/C++ compile workers), at most 8, and 1 for large models."""
    if programs <= 2 or weight_bytes > AUTO_MAX_WEIGHT_BYTES:
        return 1
    return max(1, min(programs, cpu_count() // 4, 8))


def side_by_side(jobs: int, programs: int) -> int:
    """How many compiles run at once: after the first package (compiled alone, see compile_all),
    up to ``jobs`` of the others; 1 where fewer than two are left (a child would only add its start)."""
    return min(jobs, programs - 1) if programs >= 3 and jobs >= 2 else 1


def program_bytes(ep: Any) -> int:
    return sum(int(v.numel()) * int(v.element_size()) for v in {**ep.state_dict, **ep.constants}.values() if hasattr(v, "numel"))


def compile_here(torch: Any, ep: Any, path: str, configs: dict[str, Any]) -> None:
    # NOTE: the compile runs the meta functions again on the program's symbolic sizes; under the
    # same arithmetic as the export (see _torch_compat), or torch 2.11's pooling guards come back
    with exact_shape_arithmetic(torch):
        torch._inductor.aoti_compile_and_package(ep, package_path=path, inductor_configs=configs)


def compile_all(torch: Any, programs: Sequence[Any], paths: Sequence[str], configs: Sequence[dict[str, Any]], *, tf32: bool,
                jobs: int, tmp: str) -> list[float]:
    """Compile ``programs[i]`` into the package file ``paths[i]`` with the Inductor settings ``configs[i]``,
    ``jobs`` at a time; the seconds each took.

    ``jobs <= 1`` (or fewer than three programs) compiles here, one after the other, as before this
    module existed.
    """
    seconds = [0.0] * len(programs)

    def here(i: int) -> None:
        t = time.perf_counter()
        if len(programs) > 1:
            _progress.say(f"build: AOTInductor package {i + 1} of {len(programs)}")
        compile_here(torch, programs[i], paths[i], configs[i])
        seconds[i] = round(time.perf_counter() - t, 2)

    if side_by_side(jobs, len(programs)) <= 1:
        for i in range(len(programs)):
            here(i)
        return seconds
    # NOTE: the first package is compiled here, alone, and the others side by side after it. They are
    # the same model's kernels in other shapes, and most of them come out of Inductor's cache once one
    # package has compiled them: on an H200 (DeepLabV3-ResNet50, 5 packages, 2026-11-30), one after
    # the other the first took 62 s and each later one 21-23 s; all five started together, cold, took
    # 107 s each and the build was slower than one by one (216 s against 182 s).
    here(0)
    for i in _compile_in_children(torch, programs, paths, configs, tf32, jobs, tmp, seconds, range(1, len(programs))):
        here(i)
    return seconds


def _compile_in_children(torch: Any, programs: Sequence[Any], paths: Sequence[str], configs: Sequence[dict[str, Any]], tf32: bool,
                         jobs: int, tmp: str, seconds: list[float], which: Sequence[int]) -> list[int]:
    """Compile ``programs[i]`` for each ``i`` in ``which`` in child processes, ``jobs`` at a time, filling
    ``seconds[i]``; the indices of the ones that must be compiled here instead."""
    pending: list[tuple[int, str]] = []
    fallback: list[int] = []  # compiled in this process instead
    for i in which:
        saved = os.path.join(tmp, f"program{i}.pt2")
        try:
            torch.export.save(programs[i], saved)
            with open(os.path.join(tmp, f"program{i}.json"), "w") as f:
                json.dump({"configs": configs[i], "tf32": tf32}, f)
        except Exception as e:  # a program torch cannot serialize: compiled here
            log.info("package %d is compiled in this process: torch.export.save failed (%s)", i, first_line(e))
            fallback.append(i)
            continue
        pending.append((i, saved))
    if not pending:
        return fallback
    jobs = min(jobs, len(pending))
    # NOTE: each child's Inductor starts its own pool of compile workers (Triton kernels, C++); the
    # cores are divided between the children instead of each taking them all (unless the user set it)
    env = {"TORCHINDUCTOR_COMPILE_THREADS": str(max(1, cpu_count() // jobs)), **os.environ}
    _progress.say(f"build: compiling {len(pending)} more AOTInductor packages, {jobs} at a time (child processes)")
    running: dict[int, tuple[subprocess.Popen[bytes], float, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, saved = pending.pop(0)
                err = open(os.path.join(tmp, f"program{i}.log"), "wb")  # closed when the child ends (below)
                try:
                    proc = subprocess.Popen([sys.executable, "-m", "dynashape._backend.aoti_jobs", saved, paths[i],
                                             os.path.join(tmp, f"program{i}.json")],
                                            stdout=err, stderr=subprocess.STDOUT, env=env)
                except OSError as e:
                    err.close()
                    log.info("package %d is compiled in this process: no child process (%s)", i, e)
                    fallback.append(i)
                    continue
                running[i] = (proc, time.perf_counter(), err)
            time.sleep(0.05)
            for i, (proc, t0, err) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                err.close()
                del running[i]
                if rc == 0 and os.path.isfile(paths[i]):
                    seconds[i] = round(time.perf_counter() - t0, 2)
                    log.info("package %d compiled in a child process in %.1f s", i, seconds[i])
                    continue
                with open(err.name, "rb") as f:
                    tail = [x for x in f.read()[-4000:].decode(errors="replace").strip().splitlines() if x.strip()]
                log.warning("package %d: its compile in a child process failed (exit %s: %s); compiling it in this process",
                            i, rc, " | ".join(tail[-3:]) if tail else "no output")
                fallback.append(i)
    finally:
        for proc, _, err in running.values():
            proc.kill()
            proc.wait()
            err.close()
    return sorted(fallback)


def first_line(e: BaseException) -> str:
    """An exception's first line (at most 300 characters), or its type's name where it has no text."""
    text = str(e).strip()
    return (text.splitlines()[0][:300] if text else type(e).__name__)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    saved, package, settings_path = argv
    import torch

    with open(settings_path) as f:
        settings = json.load(f)
    torch.backends.cuda.matmul.allow_tf32 = bool(settings["tf32"])
    torch.backends.cudnn.allow_tf32 = bool(settings["tf32"])
    ep = torch.export.load(saved)
    # AOTInductor wants a name ending in .pt2
    partial = os.path.join(os.path.dirname(package), "partial-" + os.path.basename(package))
    with torch.no_grad():
        compile_here(torch, ep, partial, settings["configs"])
    os.replace(partial, package)  # the parent takes the package only from a compile that finished
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
