"""Run ONNX's backend node tests against the ONNX -> PyTorch importer and regenerate docs/onnx_coverage.md.

    python scripts/onnx_conformance.py                 # all node tests, eagerly; rewrite the doc
    python scripts/onnx_conformance.py --export 40     # also 40 passing core tests through torch.export
    python scripts/onnx_conformance.py --aoti 2        # also compile 2 of them with AOTInductor (slow)
    python scripts/onnx_conformance.py --op Resize -v  # one op, print every failure and skip
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", action="append", help="only tests of this op (repeatable); the doc is not rewritten")
    parser.add_argument("--export", type=int, default=40, help="passing core tests also run through torch.export (default 40)")
    parser.add_argument("--aoti", type=int, default=0, help="of those, compile this many with AOTInductor (10-40 s each)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "onnx_coverage.md"), help="the markdown file to write")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each failing or skipped test")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")
    import torch

    from dynashape.onnx.importer import conformance as conf

    start = time.perf_counter()
    cases = conf.node_tests(args.op)
    results = conf.run_all(cases)
    samples: list[conf.Result] = []
    passing = {r.name for r in results if r.status == "pass" and r.op in conf.CORE_OPS}
    picked = _spread([c for c in cases if c.name in passing], args.export)
    for case in picked:
        samples.append(conf.run_case(case, export=True))
    for case in picked[: args.aoti]:
        samples.append(_aoti(conf, case, torch))
    rows = conf.table(results)
    if args.verbose:
        for r in results:
            if r.status != "pass":
                print(f"{r.status:4} {r.op:24} {r.name}: {r.reason}")
    seconds = time.perf_counter() - start
    text = conf.render(rows, samples=samples, seconds=seconds)
    print("\n".join(text.splitlines()[4:8]))
    if not args.op:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    return 0


def _spread(cases: list, count: int) -> list:
    """Up to ``count`` cases, one op at a time round-robin so every core op is sampled."""
    by_op: dict[str, list] = {}
    from dynashape.onnx.importer.conformance import op_of

    for c in cases:
        by_op.setdefault(op_of(c), []).append(c)
    out: list = []
    while len(out) < count and any(by_op.values()):
        for op in sorted(by_op):
            if by_op[op] and len(out) < count:
                out.append(by_op[op].pop(0))
    return out


def _aoti(conf, case, torch):  # type: ignore[no-untyped-def]
    """Compile one test with AOTInductor, load it and compare with the expected outputs."""
    from dynashape.onnx import to_torch

    inputs, expected = case.data_sets[0]
    args = tuple(conf.numpy_to_torch(conf._as_array(a)) for a in inputs)
    try:
        ep = torch.export.export(to_torch(case.model), args, strict=False)
        with tempfile.TemporaryDirectory() as tmp:
            path = torch._inductor.aoti_compile_and_package(ep, package_path=os.path.join(tmp, "m.pt2"))
            got = torch._inductor.aoti_load_package(path)(*args)
    except Exception as e:  # reported in the doc, not raised: this is a survey
        return conf.Result(case.name + " (AOTInductor)", conf.op_of(case), "fail", f"{type(e).__name__}: {e}"[:200])
    r = conf._compare(case, conf.op_of(case), tuple(got), [conf._as_array(w) for w in expected])
    r.name += " (AOTInductor)"
    return r


if __name__ == "__main__":
    sys.exit(main())
