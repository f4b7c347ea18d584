"""Child process of build validation: load an engine, run the given inputs, save the outputs.

Usage: python -m dynashape._builder._child ENGINE INPUTS.npz OUTPUTS.npz
"""

from __future__ import annotations

import sys

import numpy as np


def main(engine_path: str, inputs_path: str, outputs_path: str) -> None:
    import dynashape

    engine = dynashape.load(engine_path)
    names = [s.name for s in engine.inputs]
    out = {}
    with np.load(inputs_path) as data:
        profiles = data["__profiles"]
        for i, k in enumerate(profiles):
            feed = {n: data[f"{i}__{n}"] for n in names}
            for o, v in engine.run(feed, profile=int(k)).items():
                out[f"{i}__{o}"] = np.asarray(v)
    np.savez(outputs_path, **out)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


if __name__ == "__main__":
    main(*sys.argv[1:4])
