"""Padding along the ladder's dim: pad values per input, and the build's safety check.

Input roles (mask, token ids, segments, positions, float features) come from the one input
generator, :func:`dynashape._data.role_of`; this module only says what each role pads with and
what a *real* request looks like. A mask pads with 0 (padded positions are masked out), token ids
with the pad id 0, every other role with 0.

A model is safe to pad when its outputs at the real positions are equal with and without padding:
masked encoders and right-padded causal decoders are; a conv net with global pooling is not (the
padded zeros enter the average). :func:`check_padding` runs the built engine both ways and decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._data import FLOAT, IDS, IMAGE, INT, MASK, POSITIONS, SEGMENTS, Hints, make_inputs, role_of
from .._specs import TensorSpec, format_shape
from .record import Ladder, Padding

# NOTE: 0 for every role today (masks: masked out; ids: the pad id 0; segments, positions and
# floats: 0): the values at padded positions only matter where they reach the real ones, which the
# build's check measures. Named per role so that a model with another pad id can override it in
# the plan's padding record.
PAD_VALUE = {MASK: 0.0, IDS: 0.0, SEGMENTS: 0.0, POSITIONS: 0.0, INT: 0.0, IMAGE: 0.0, FLOAT: 0.0}


def pad_value(spec: TensorSpec, hints: Hints | None = None) -> float:
    """The value ``spec`` pads with, by its role (:data:`PAD_VALUE`)."""
    return PAD_VALUE[role_of(spec, (hints or {}).get(spec.name))]


def make_real_inputs(specs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]], *, seed: int = 0,
                     hints: Hints | None = None) -> dict[str, np.ndarray]:
    """Inputs that look like real, unpadded requests: :func:`dynashape._data.make_inputs`, with
    every mask position real (all ones) and ids in 1..9 (never the pad id 0, so that a padded
    position differs from a real one)."""
    out = make_inputs(specs, shapes, seed=seed, hints=hints)
    rng = np.random.default_rng(seed)
    for spec in specs:
        x = out[spec.name]
        role = role_of(spec, (hints or {}).get(spec.name))
        if role == MASK:
            out[spec.name] = np.ones(x.shape, dtype=x.dtype)
        elif role in (IDS, INT):
            vocab = (hints or {}).get(spec.name)
            top = min(10, vocab.vocab) if vocab is not None and vocab.vocab else 10
            out[spec.name] = rng.integers(1, max(2, top), x.shape).astype(x.dtype)
    return out


def dim_axes(specs: Sequence[TensorSpec], dim: str) -> list[list[int]]:
    """Per input (in order), the axes that carry ``dim``."""
    return [[a for a, d in enumerate(s.shape) if d == dim] for s in specs]


def pad_array(x: Any, axes: Sequence[int], size: int, value: float) -> Any:
    """``x`` padded at the end of each axis in ``axes`` to ``size`` (numpy or torch)."""
    if not axes:
        return x
    if type(x).__module__.startswith("torch"):
        import torch

        shape = list(x.shape)
        for a in axes:
            shape[a] = size
        out = torch.full(shape, value, dtype=x.dtype, device=x.device)
        out[tuple(slice(0, n) for n in x.shape)] = x
        return out
    widths = [(0, size - x.shape[a]) if a in axes else (0, 0) for a in range(x.ndim)]
    return np.pad(x, widths, constant_values=np.array(value).astype(x.dtype))


def crop_array(x: Any, crops: Sequence[tuple[int, int, int]], value: int) -> Any:
    if not crops:
        return x
    index = [slice(None)] * x.ndim
    for axis, a, b in crops:
        index[axis] = slice(0, a * value + b)
    return x[tuple(index)]


def shape_for(spec: TensorSpec, dims: Mapping[str, int]) -> list[int]:
    """The shape of ``spec`` when its named dims take the values in ``dims``."""
    return [int(dims[d]) if isinstance(d, str) else int(d) for d in spec.shape]  # type: ignore[arg-type]


def _crop_rules(run: Any, specs: Sequence[TensorSpec], out_names: Sequence[str], base: dict[str, int], dim: str,
                v1: int, v2: int) -> dict[str, tuple[tuple[int, int, int], ...]]:
    """Which output axes follow ``dim``: sizes at two unpadded values give ``size = a * dim + b``."""
    def shapes_at(v: int) -> list[tuple[int, ...]]:
        feed = make_real_inputs(specs, {s.name: shape_for(s, {**base, dim: v}) for s in specs})
        return [tuple(np.shape(o)) for o in run(feed)]

    s1, s2 = shapes_at(v1), shapes_at(v2)
    rules = {}
    for n, a1, a2 in zip(out_names, s1, s2, strict=True):
        crops = []
        for axis, (x1, x2) in enumerate(zip(a1, a2, strict=True)):
            if x1 != x2:
                slope = (x2 - x1) // (v2 - v1)
                crops.append((axis, int(slope), int(x1 - slope * v1)))
        if crops:
            rules[n] = tuple(crops)
    return rules


def check_padding(run: Any, specs: Sequence[TensorSpec], out_names: Sequence[str], ladder: Ladder, *,
                  low: int, atol: float, rtol: float) -> Padding:
    """Run ``run`` (numpy feed -> list of outputs, no padding of its own) with and without padding
    at the ladder's top and bottom buckets and decide whether padding keeps the outputs at the real
    positions. ``low``: the smallest value of the dim that the engine's profiles allow.
    """
    dim = ladder.dim
    axes = dim_axes(specs, dim)
    pads = {s.name: pad_value(s) for s in specs}
    if not any(axes):
        return Padding(False, f"no input carries the dim '{dim}'", pads)
    # the checked pairs (a real value, the bucket above it): the ladder's top bucket from just above
    # the bucket below it, and its bottom bucket from the smallest value the profiles allow
    checks: list[tuple[dict[str, int], int, int]] = []
    buckets = sorted(ladder.buckets)
    for shape in (ladder.shapes[0], ladder.shapes[-1]):
        dims = dict(shape)
        b = dims[dim]
        lower = [x for x in buckets if x < b]
        v = lower[-1] + 1 if lower else low
        if v < b and all((d, v2, b2) != (dims, v, b) for d, v2, b2 in checks):
            checks.append((dims, v, b))
    if not checks:
        return Padding(True, f"every bucket of '{dim}' is its only value: nothing is ever padded", pads)
    base, v, b = checks[0]
    try:
        crop = _crop_rules(run, specs, out_names, base, dim, v, b)
    except Exception as e:
        return Padding(False, f"the model failed at an unpadded shape ({' '.join(str(e).split())[:200]})", pads)
    for dims, v, b in checks:
        feed = make_real_inputs(specs, {s.name: shape_for(s, {**dims, dim: v}) for s in specs}, seed=1)
        padded = {s.name: pad_array(feed[s.name], ax, b, pads[s.name]) for s, ax in zip(specs, axes, strict=True)}
        want = run(feed)
        got = run(padded)
        for n, w, g in zip(out_names, want, got, strict=True):
            g = crop_array(np.asarray(g), crop.get(n, ()), v)
            w = np.asarray(w)
            if g.shape != w.shape:
                return Padding(False, f"output '{n}' has shape {format_shape(w.shape)} at {dim}={v} and "
                               f"{format_shape(g.shape)} padded to {b} and cropped", pads, crop)
            if not np.allclose(g.astype(np.float64), w.astype(np.float64), atol=atol, rtol=rtol, equal_nan=True):
                diff = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
                return Padding(False, f"output '{n}' changes when {dim}={v} is padded to {b} (largest difference {diff:.3g} "
                               f"at the real positions): the padded values reach the output, e.g. through a global pooling "
                               f"or an unmasked attention", pads, crop)
    return Padding(True, f"outputs at the real positions equal with and without padding ({dim} " +
                   ", ".join(f"{v}->{b}" for _, v, b in checks) + f", atol {atol:g}, rtol {rtol:g})", pads, crop)
