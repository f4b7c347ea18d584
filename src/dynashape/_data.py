"""Input data for verification, comparison and benchmarks (Polygraphy's data loader, in short)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._specs import TensorSpec


def make_inputs(
    specs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]], *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random inputs at ``shapes``: floats in [0, 1), integers in {0, 1}, random booleans.

    NOTE: integer inputs are usually token ids, masks or indices; 0 and 1 are valid for all three,
    so random data never indexes out of range. Pass real data (``--input-data``) to go beyond.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for spec in specs:
        shape = tuple(int(d) for d in shapes[spec.name])
        dt = spec.dtype
        if dt == "bool":
            out[spec.name] = rng.integers(0, 2, shape).astype(bool)
        elif dt.startswith(("int", "uint")):
            out[spec.name] = rng.integers(0, 2, shape).astype(dt)
        elif dt == "bfloat16":
            out[spec.name] = rng.random(shape, dtype=np.float32)  # numpy has no bf16; backends cast
        else:
            out[spec.name] = rng.random(shape).astype(dt)
    return out


def max_diffs(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(largest absolute difference, largest relative difference) in float64."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0, 0.0
    diff = np.abs(a - e)
    rel = diff / np.maximum(np.abs(e), 1e-12)
    return float(diff.max()), float(rel.max())


def allclose(actual: np.ndarray, expected: np.ndarray, *, atol: float, rtol: float) -> bool:
    return bool(np.allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), atol=atol, rtol=rtol, equal_nan=True))
