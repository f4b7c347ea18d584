"""Engine file size of an inductor engine: one profile against three, and what compression saves.

The model holds about 10 MiB of fp32 weights (an MLP on a dynamic batch). Each profile is its own
AOTInductor package (compiled code, no weights: the weights are stored once, in ``weights.pt``), so
an extra profile should cost little of the weights' size. For each engine this prints the file size,
each payload's size as built and as zlib (levels 1, 6, 9) and lzma (preset 6) would store it, and
the time each takes; BENCHMARKS.md records the numbers and why the engine format picked its codec.

Run:  PYTHONPATH=src python benchmarks/payload_size.py   (4 AOTInductor compiles: 2-4 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import lzma
import os
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_json


def _model(torch: object) -> object:
    nn = torch.nn  # type: ignore[attr-defined]

    class MLP(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(1024, 1024), nn.GELU(), nn.LayerNorm(1024),
                nn.Linear(1024, 1024), nn.GELU(), nn.LayerNorm(1024),
                nn.Linear(1024, 512), nn.GELU(), nn.Linear(512, 256),
            )

        def forward(self, x: object) -> object:
            return self.layers(x).softmax(-1)

    torch.manual_seed(0)  # type: ignore[attr-defined]
    return MLP().eval()


def _codecs(data: bytes) -> dict[str, dict[str, float]]:
    out = {}
    for name, fn in [("zlib1", lambda b: zlib.compress(b, 1)), ("zlib6", lambda b: zlib.compress(b, 6)),
                     ("zlib9", lambda b: zlib.compress(b, 9)), ("lzma6", lambda b: lzma.compress(b, preset=6))]:
        t = time.perf_counter()
        packed = fn(data)
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        (zlib.decompress if name.startswith("zlib") else lzma.decompress)(packed)
        out[name] = {"bytes": len(packed), "seconds": round(seconds, 3), "decompress_seconds": round(time.perf_counter() - t, 3)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "payload_size.json"))
    args = p.parse_args()
    import torch

    import dynashape
    from dynashape._engine.file import read_engine

    model = _model(torch)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    print(f"weights: {weights / 2**20:.2f} MiB, torch {torch.__version__}")
    ranges = [{"batch": (1, 4, 8)}, {"batch": (9, 32, 64)}, {"batch": (65, 128, 256)}]
    results: dict[str, object] = {"weights_bytes": weights, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 3):
            t = time.perf_counter()
            engine = dynashape.build(model, dims=ranges[:n], backend="inductor",
                                     example_inputs={"x": torch.rand(4, 1024)}, dynamic_axes={"x": {0: "batch"}},
                                     validate=False)
            build_s = time.perf_counter() - t
            path = os.path.join(tmp, f"mlp{n}.engine")
            engine.save(path)
            _, payloads = read_engine(path)
            entry = {"file_bytes": os.path.getsize(path), "build_seconds": round(build_s, 1),
                     "payloads": {k: {"bytes": len(v), **_codecs(v)} for k, v in payloads.items()}}
            results[f"profiles_{n}"] = entry
            print(f"{n} profile(s): file {entry['file_bytes'] / 2**20:.3f} MiB, built in {build_s:.0f} s")
            for k, v in entry["payloads"].items():  # type: ignore[attr-defined]
                print(f"  {k}: {v['bytes']} B; " + ", ".join(f"{c} {v[c]['bytes']} B {v[c]['seconds']} s" for c in ("zlib1", "zlib6", "zlib9", "lzma6")))
    one, three = results["profiles_1"]["file_bytes"], results["profiles_3"]["file_bytes"]  # type: ignore[index]
    print(f"3 profiles / 1 profile = {three / one:.3f}; each extra profile costs {(three - one) / 2 / weights:.1%} of the weights")
    write_json(args.out, results)


if __name__ == "__main__":
    main()
