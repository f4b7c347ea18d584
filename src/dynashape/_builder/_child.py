"""Child process of build validation: load an engine, run the given inputs, save the outputs.

Usage: python -m dynashape._builder._child ENGINE INPUTS.npz OUTPUTS.npz FAILURE.json

A run that raises writes ``{"case": i, "error": "..."}`` to FAILURE.json (the parent names the
shape and the node) and exits 3; a crash while loading shows as the signal in the exit status.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(engine_path: str, inputs_path: str, outputs_path: str, failure_path: str) -> int:
    import dynashape
    from dynashape._reference import runtime_error_text

    engine = dynashape.load(engine_path)
    names = [s.name for s in engine.inputs]
    out = {}
    with np.load(inputs_path) as data:
        profiles = data["__profiles"]
        for i, k in enumerate(profiles):
            feed = {n: data[f"{i}__{n}"] for n in names}
            try:
                result = engine.run(feed, profile=int(k))
            except Exception as e:
                with open(failure_path, "w") as f:
                    json.dump({"case": i, "error": runtime_error_text(e)}, f)
                return 3
            for o, v in result.items():
                out[f"{i}__{o}"] = np.asarray(v)
    np.savez(outputs_path, **out)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
