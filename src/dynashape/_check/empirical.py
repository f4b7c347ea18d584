"""The empirical pass: run the model at its export shape and at shapes where one dynamic dim changed.

Knowing the export shape matters: a pinned number is the export-time value of a dim, so the
comparison is only meaningful from there. It comes from the profile's ``opt`` when the user gives
one; otherwise from the shapes of the user's data, the numbers the symbolic pass saw pinned in the
graph, then defaults, keeping the first set of shapes at which the whole model runs. The values fed
come from a :class:`~._graph.Feeder` (representative generated data, or the user's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._profiles import Profile
from .._specs import TensorSpec
from ._graph import Feeder, Graph, Run, Runner
from .rules import Pin, find_pins


@dataclass
class Symbol:
    """One dynamic dim of the model's inputs, with every (input, axis) where it occurs."""

    name: str
    where: list[tuple[str, int]]


@dataclass
class SymbolRun:
    symbol: Symbol
    export_value: int
    new_value: int
    run: Run
    pins: list[Pin]


@dataclass
class EmpiricalResult:
    export_shapes: dict[str, tuple[int, ...]]
    export_run: Run | None
    runs: list[SymbolRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def symbols_of(inputs: Sequence[TensorSpec]) -> list[Symbol]:
    out: dict[str, Symbol] = {}
    for s in inputs:
        for a, d in enumerate(s.shape):
            if isinstance(d, int):
                continue
            name = d if isinstance(d, str) and d else f"{s.name}_dim{a}"
            out.setdefault(name, Symbol(name, [])).where.append((s.name, a))
    return list(out.values())


def _default(sym: Symbol) -> int:
    # NOTE: 2 for a leading (batch-like) dim, 16 elsewhere: small, even, and divisible by the
    # strides of typical CNNs and by attention head counts.
    return 2 if _batch_like(sym) else _LADDER[0]


def shapes_for(inputs: Sequence[TensorSpec], symbols: Sequence[Symbol], values: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    by_pos = {(i, a): s.name for s in symbols for i, a in s.where}
    return {
        s.name: tuple(d if isinstance(d, int) else values[by_pos[(s.name, a)]] for a, d in enumerate(s.shape))
        for s in inputs
    }


# NOTE: sizes tried for non-batch dims when the graph suggests none, smallest first: a conv stack
# needs at least its receptive field (ConvNeXt's 4 stages 32, wav2vec2's feature encoder 400 samples),
# so the doctor climbs this ladder until the whole model runs.
_LADDER = (16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
# NOTE: a probe whose inputs hold more elements than this is not run: a model that fails at every
# size would otherwise climb to 2x3x16384x16384 images (6 GB of input, many times that inside the
# graph) and exhaust the machine's memory. 2**23 elements (32 MiB of fp32) still covers a
# 2x3x1024x1024 image batch and a 2x16384 token sequence.
_MAX_PROBE_ELEMENTS = 2**23


def _attempts(symbols: Sequence[Symbol], candidates: Mapping[str, list[int]],
              given: Mapping[str, int] | None = None) -> list[dict[str, int]]:
    first = {s.name: (candidates.get(s.name) or [_default(s)])[0] for s in symbols}
    tries = [first, {s.name: _default(s) for s in symbols}]
    if given:
        # NOTE: the shapes of the user's data come first: shapes at which the model is known to run.
        tries.insert(0, {s.name: given.get(s.name, first[s.name]) for s in symbols})
    for s in symbols:
        for v in [*candidates.get(s.name, [])[1:], *[c + k for c in candidates.get(s.name, []) for k in (1, -1, 2)]]:
            if v > 0:
                tries.append({**first, s.name: v})
    out: list[dict[str, int]] = []
    for t in tries:
        if t not in out:
            out.append(t)
    out = out[:10]
    for v in _LADDER[1:]:
        t = {s.name: (2 if _batch_like(s) else v) for s in symbols}
        if t not in out:
            out.append(t)
    return out


def _batch_like(sym: Symbol) -> bool:
    return all(a == 0 for _, a in sym.where)


def run_empirical(
    graph: Graph,
    inputs: Sequence[TensorSpec],
    *,
    profile: Profile | None,
    candidates: Mapping[str, list[int]],
    feeder: Feeder,
) -> EmpiricalResult:
    runner = Runner(graph)
    symbols = symbols_of(inputs)
    notes: list[str] = []
    new_values: dict[str, int] = {}
    if profile is not None:
        export = {n: profile[n].opt for n in profile}
        values: dict[str, int] = {}
        for s in symbols:
            inp, a = s.where[0]
            lo, op, hi = profile[inp].dim(a)
            values[s.name] = op
            # NOTE: a profile pinned to one shape (--optShapes alone) still gets a second shape to compare with.
            new_values[s.name] = hi if hi != op else lo if lo != op else 2 * op
        r1 = runner.run(feeder(export))
    else:
        r1, values, export = None, {}, {}
        for t in _attempts(symbols, candidates, _symbol_values(symbols, feeder.data_shapes())):
            shapes = shapes_for(inputs, symbols, t)
            if r1 is not None and sum(math.prod(v) for v in shapes.values()) > _MAX_PROBE_ELEMENTS:
                break  # the ladder only grows from here
            r = runner.run(feeder(shapes))
            if r1 is None or (r.ok and not r1.ok):
                r1, values, export = r, t, shapes
            if r.ok:
                break
        new_values = {s.name: 2 * values[s.name] for s in symbols}
    assert r1 is not None or not symbols
    result = EmpiricalResult(export, r1, notes=notes)
    if r1 is None:
        return result
    if not r1.ok:
        node, err = r1.failed[0]
        notes.append(f"the model fails at every shape tried, including {_fmt(export)} (node '{node}': {err})")
    for s in symbols:
        if s.name not in new_values:
            continue
        shapes = shapes_for(inputs, symbols, {**values, s.name: new_values[s.name]})
        r2 = runner.run(feeder(shapes, seed=1))
        pins = find_pins(graph, r1, r2)
        if pins and profile is None and r1.ok:
            pins = _confirmed(runner, graph, inputs, symbols, values, s, pins, feeder)
        result.runs.append(SymbolRun(s, values[s.name], new_values[s.name], r2, pins))
    return result


def _confirmed(runner: Runner, graph: Graph, inputs: Sequence[TensorSpec], symbols: Sequence[Symbol],
               values: Mapping[str, int], s: Symbol, pins: list[Pin], feeder: Feeder) -> list[Pin]:
    """Without a profile, the pins that hold again one rung up (every dim doubled, then ``s`` doubled again).

    NOTE: a guessed probe size may lie below the model's own minimum (a Swin stage smaller than its
    window, which eager handles by shrinking the window): a number that follows the dim at larger
    sizes is that minimum, not a pin. A frozen number pins at every size, so real pins hold.
    """
    if _batch_like(s):
        return pins
    base = {k: (v if any(x.name == k and _batch_like(x) for x in symbols) else 2 * v) for k, v in values.items()}
    if sum(math.prod(v) for v in shapes_for(inputs, symbols, {**base, s.name: 2 * base[s.name]}).values()) > _MAX_PROBE_ELEMENTS:
        return pins
    r1 = runner.run(feeder(shapes_for(inputs, symbols, base)))
    if not r1.ok:
        return pins
    r2 = runner.run(feeder(shapes_for(inputs, symbols, {**base, s.name: 2 * base[s.name]}), seed=1))
    again = {id(p.node) for p in find_pins(graph, r1, r2)}
    return [p for p in pins if id(p.node) in again]


def _symbol_values(symbols: Sequence[Symbol], shapes: Mapping[str, tuple[int, ...]] | None) -> dict[str, int] | None:
    """Each symbol's size in ``shapes`` (the user's first feed), where the shapes give one."""
    if shapes is None:
        return None
    return {s.name: shapes[i][a] for s in symbols for i, a in s.where[:1] if i in shapes}


def _fmt(shapes: Mapping[str, Any]) -> str:
    return ", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())
