"""Guard-split profiles: a profile whose dims the model's code guards is built as several parts.

torch.export refuses a named ``Dim(min, max)`` when the traced code guards it with a condition
that a range cannot express: a parity test (``if h % 2: pad``), a divisibility test, a comparison
that picks a branch. (Torch 2.11's pooling arithmetic made such a parity guard, ``((H - 1) // 2) % 2
!= 0``, in every ResNet; a build removes that one before it traces: see :mod:`dynashape._torch_compat`.)
Each such guard says where the trace is valid; the profile is split into the fewest parts
in which every guard holds, one package per part, and the runtime picks the part from the input
shape (:class:`dynashape._engine.selection.PartTable`).

How the parts are found:

1. Export with ``Dim.DYNAMIC(min, max)`` at the opt shape. torch then keeps the dims symbolic and
   records its guards in the shape env instead of refusing (it does not check them at run time: the
   package silently computes garbage at a shape of another parity, which is why the guards must be
   read and enforced here).
2. Guards that hold over the whole range (torch's own interval analysis proves them, or, for a
   guard over several dims, it holds at every point of the profile's box) are dropped. The rest
   must each involve one dim; each is evaluated at every integer of the dim's range, giving
   the set of values where the trace is valid. Where that set misses values, the export is repeated
   with an example among them, which takes the other branch and gives the next class; a value at
   which the export itself fails becomes a gap (with the values that fail the same guards).
3. Each class must be a sub-range intersected with residue classes (``lo <= v <= hi`` and
   ``v % m in R``); a part is one class per dim. Each part is exported again inside its own class and
   its guards are checked to hold on the whole part, so a part's package is only ever called at
   shapes where torch's trace is valid.

NOTE (why a part is a set of residues, not a derived dim ``Dim('k') * m + r``): the classes that
real models produce hold several residues (fcn_resnet50's ``((H - 1) // 2) % 2 != 0`` under torch
2.11, before :mod:`dynashape._torch_compat`, was ``H % 4 in {0, 3}``). A derived dim is one linear
form, so it would need one package per residue: 16 AOTInductor compiles for H and W instead of 4. The trace of a class is valid at every value of the
class (that is what its guards say), and the engine checks the class before it calls the package.
"""

from __future__ import annotations

import contextlib
import itertools
import linecache
import logging
import os
import sys
import sysconfig
import traceback
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _progress
from .._errors import BackendError
from .._profiles import Profile
from .._records import DimClass, ProfilePart
from .._specs import TensorSpec

#: the largest modulus tried when a class is written as residues (fcn_resnet50 needs 4)
MAX_MODULUS = 64
#: parts per profile, and torch.export calls per profile, before the split gives up
MAX_PARTS = 64
MAX_EXPORTS = 48
#: a dim that torch specializes at this many values is a pin (the model reads the size as a constant)
MAX_SINGLETONS = 8
#: a guard over several dims is checked at every point of the profile's box up to this many points
#: (about a second of Python per million)
MAX_BOX_POINTS = 2_000_000


def dim_symbol(spec: TensorSpec, axis: int) -> str:
    """The name of a dynamic dim: the model's symbol, or ``<input>_dim<axis>`` when it has none."""
    d = spec.shape[axis]
    return d if isinstance(d, str) else f"{spec.name}_dim{axis}"


@dataclass
class FreeDim:
    """A dim the profile leaves free: its symbol, where it appears, and its range."""

    name: str
    places: list[tuple[int, int]]  # (input index, axis)
    lo: int
    opt: int
    hi: int


@dataclass(frozen=True)
class _Guard:
    expr: Any  # sympy, in the dim's own symbol (``sympy.Symbol(name, integer=True)``)
    text: str
    source: str


@dataclass(frozen=True)
class _Relation:
    """A guard over several dims that fails somewhere in the profile's box."""

    expr: Any  # sympy, in the dims' own symbols (``sympy.Symbol(name, integer=True)``)
    dims: tuple[str, ...]  # sorted
    text: str
    source: str


@dataclass
class _Trace:
    """One ``Dim.DYNAMIC`` export and what its guards allow, per dim."""

    program: Any
    allowed: dict[str, frozenset[int]]  # dim name -> values where every guard on that dim holds
    guards: dict[str, list[_Guard]]  # dim name -> the guards that restrict it
    relations: list[_Relation] = field(default_factory=list)  # guards over several dims, checked per part


@dataclass
class PlannedPart:
    """A part to compile (``program`` set) or a gap to refuse (``program`` None)."""

    part: ProfilePart
    program: Any = None
    example: dict[str, int] = field(default_factory=dict)


def free_dims(inputs: Sequence[TensorSpec], profile: Profile) -> list[FreeDim]:
    by_name: dict[str, FreeDim] = {}
    for i, spec in enumerate(inputs):
        r = profile[spec.name]
        for axis in r.dynamic_axes:
            lo, opt, hi = r.dim(axis)
            name = dim_symbol(spec, axis)
            by_name.setdefault(name, FreeDim(name, [], lo, opt, hi)).places.append((i, axis))
    return list(by_name.values())


def _near(values: Sequence[int], target: int) -> int:
    """The value closest to ``target``, avoiding 0 and 1 (torch.export specializes an example of 0 or 1)."""
    return min(values, key=lambda v: (v < 2, abs(v - target), v))


class _Splitter:
    """The state of one profile's split: the exports made so far and what they allow."""

    def __init__(self, torch: Any, module: Any, inputs: Sequence[TensorSpec], profile: Profile,
                 dims: list[FreeDim], make_example: Callable[[int, tuple[int, ...]], Any],
                 edge_padding: Callable[[FreeDim], bool] | None = None) -> None:
        import sympy

        self.torch, self.sympy = torch, sympy
        self.module, self.inputs, self.profile, self.dims = module, list(inputs), profile, dims
        self.make_example = make_example
        self.edge_padding = edge_padding
        self.exports = 0
        self._cache: dict[tuple[Any, int], bool] = {}
        self._traces: dict[Any, _Trace] = {}

    # -- one export -----------------------------------------------------------------------------

    def trace(self, example: dict[str, int], ranges: dict[str, tuple[int, int]]) -> _Trace:
        key = (tuple(sorted(example.items())), tuple(sorted(ranges.items())))
        if key not in self._traces:
            self._traces[key] = self._trace(example, ranges)
        return self._traces[key]

    def _trace(self, example: dict[str, int], ranges: dict[str, tuple[int, int]]) -> _Trace:
        torch = self.torch
        self.exports += 1
        if self.exports > MAX_EXPORTS:
            raise self._error(f"the split needs more than {MAX_EXPORTS} exports", None)
        # NOTE: each export of a large model takes seconds to tens of seconds (Swin: over 10 s on an
        # H200 machine's CPU), and a split may need dozens: say which one is running
        _progress.say(f"build: guard split: torch.export {self.exports} (at most {MAX_EXPORTS}) at "
                      + ", ".join(f"{k} = {v}" for k, v in example.items()))
        shapes, args = [], []
        for i, spec in enumerate(self.inputs):
            shape = list(self.profile[spec.name].opt)
            axes = {}
            for d in self.dims:
                for j, axis in d.places:
                    if j == i:
                        shape[axis] = example[d.name]
                        lo, hi = ranges[d.name]
                        if lo < hi:
                            # NOTE: AUTO, not DYNAMIC: a guard can leave one value of a dim (``batch != 1``
                            # over 1..2 leaves 2), and torch then specializes the dim; DYNAMIC makes
                            # that an error, AUTO a static dim, read below as a class of one value
                            axes[axis] = torch.export.Dim.AUTO(min=lo, max=hi)
            shapes.append(axes or None)
            args.append(self.make_example(i, tuple(shape)))
        with _guard_sources() as sources:
            ep = torch.export.export(self.module, tuple(args), dynamic_shapes=(tuple(shapes),))
        return self._read(ep, ranges, sources)

    def _read(self, ep: Any, ranges: dict[str, tuple[int, int]], sources: dict[str, str]) -> _Trace:
        sympy = self.sympy
        names = set(ep.graph_signature.user_inputs)
        vals = [n.meta["val"] for n in ep.graph.nodes if n.op == "placeholder" and n.name in names]
        sym_to_dim: dict[Any, FreeDim] = {}
        fixed: dict[str, int] = {}
        shape_env = None
        for d in self.dims:
            lo, hi = ranges[d.name]
            for i, axis in d.places:
                v = vals[i].shape[axis]
                if lo == hi:
                    continue
                if not isinstance(v, int) and getattr(v.node.expr, "is_number", False):
                    v = int(v.node.expr)  # a SymInt that torch replaced by a constant: specialized too
                if isinstance(v, int):
                    # specialized: this trace is valid at v alone, a class of one value; the other
                    # values get their own traces in plan(). Torch 2.11 on CUDA guards `batch != 1`
                    # (channels-last stride checks): the trace at batch 1 is then specialized, and the
                    # one at batch 8 covers 2..32. A dim specialized at every value is a pin: plan()
                    # stops after MAX_SINGLETONS of them
                    fixed[d.name] = v
                    continue
                expr = v.node.expr
                shape_env = v.node.shape_env
                if not isinstance(expr, sympy.Symbol) or sym_to_dim.get(expr, d) is not d:
                    raise self._error(f"torch.export relates {d.name} to other dims ({d.name} = {expr})", None)
                sym_to_dim[expr] = d
        allowed = {d.name: frozenset([fixed[d.name]]) if d.name in fixed else frozenset(range(ranges[d.name][0], ranges[d.name][1] + 1))
                   for d in self.dims}
        guards: dict[str, list[_Guard]] = {d.name: [] for d in self.dims}
        if shape_env is None:
            return _Trace(ep, allowed, guards)
        # NOTE: torch also narrows a symbol's value range instead of keeping a guard (``batch != 1``
        # over 1..2 becomes the range 2..2, and no guard is left to read): the trace is valid only there
        for sym, d in sym_to_dim.items():
            vr = getattr(shape_env, "var_to_range", {}).get(sym)
            if vr is None:
                continue
            lo, hi = ranges[d.name]
            with contextlib.suppress(TypeError, ValueError):
                lo = max(lo, int(vr.lower))
            with contextlib.suppress(TypeError, ValueError):
                hi = min(hi, int(vr.upper))
            allowed[d.name] = allowed[d.name] & frozenset(range(lo, hi + 1))
        seen = set()
        relations: list[_Relation] = []
        for g in shape_env.guards:
            expr = g.expr
            with contextlib.suppress(Exception):
                expr = shape_env.simplify(expr)
            free = expr.free_symbols
            if not free or expr in seen or not free <= set(sym_to_dim):
                continue
            seen.add(expr)
            if _always(expr, {s: ranges[sym_to_dim[s].name] for s in free}):
                continue
            text = _text(expr, {s: sym_to_dim[s].name for s in free})
            source = sources.get(str(g.expr)) or sources.get(str(expr)) or ""
            if len(free) > 1:
                # NOTE: torch records guards over several dims. Some hold everywhere in the profile
                # (``(W // 8) < (H // 8) * (W // 8)``, i.e. H >= 16, from a broadcast or stride check,
                # seen with torch 2.11 on CUDA in HF ResNet, DETR, wav2vec2) although interval analysis
                # cannot prove them (it loses the correlation of the two products): checked at every
                # point of the box, they restrict nothing. Others pick a branch in a corner of the box
                # (``(H // 32) * (W // 32) != 1``: a 1x1 feature map, EfficientNet and MobileNetV2):
                # plan() cuts the dims' ranges where such a guard changes, and every part checks it.
                named = {s: sym_to_dim[s].name for s in free}
                if _holds_on_box(expr, {s: ranges[named[s]] for s in free}) is True:
                    continue
                relations.append(_Relation(expr.xreplace({s: self._sym(n) for s, n in named.items()}),
                                           tuple(sorted(named.values())), text, source))
                continue
            (sym,) = free
            d = sym_to_dim[sym]
            guard = _Guard(expr.xreplace({sym: self._sym(d.name)}), text, source)
            lo, hi = ranges[d.name]
            allowed[d.name] = allowed[d.name] & frozenset(v for v in range(lo, hi + 1) if self._holds(guard, v))
            guards[d.name].append(guard)
        return _Trace(ep, allowed, guards, relations)

    def _sym(self, name: str) -> Any:
        return self.sympy.Symbol(name, integer=True)

    def _holds(self, g: _Guard, v: int) -> bool:
        key = (g.expr, v)
        if key not in self._cache:
            (sym,) = g.expr.free_symbols
            r = g.expr.xreplace({sym: self.sympy.Integer(v)})
            if r not in (self.sympy.true, self.sympy.false):
                raise self._error(f"the guard `{g.text}` does not evaluate at {sym} = {v}", g.source)
            self._cache[key] = bool(r)
        return self._cache[key]

    def _error(self, what: str, source: str | None) -> BackendError:
        where = f" (made by {source})" if source else ""
        return BackendError(
            f"torch.export cannot keep the profile's dims dynamic ({self.profile.describe()}), and the profile "
            f"cannot be split into parts: {what}{where}",
            "guards that each test one dim (parity, divisibility, a comparison), so that the profile splits into "
            "sub-ranges and residue classes",
            "narrow the profile to values where the guard holds (one profile per branch), or change the model code "
            "named above so that it does not branch on the dim",
        )

    # -- the split ------------------------------------------------------------------------------

    def plan(self) -> list[PlannedPart]:
        full = {d.name: (d.lo, d.hi) for d in self.dims}
        opt = {d.name: d.opt if d.opt >= 2 else min(2, d.hi) for d in self.dims}
        first = self.trace(opt, full)
        classes: dict[str, list[frozenset[int]]] = {}
        gaps: list[PlannedPart] = []
        for d in self.dims:
            classes[d.name] = [first.allowed[d.name]]
            known = list(first.guards[d.name])
            covered = set(first.allowed[d.name])
            while True:
                rest = [v for v in range(d.lo, d.hi + 1) if v not in covered]
                if not rest:
                    break
                v = _near(rest, d.opt)
                try:
                    t = self.trace({**opt, d.name: v}, full)
                except BackendError:
                    raise
                except Exception as e:
                    # The model cannot be traced at v: v and every value that fails the same
                    # guards are a gap, refused at run time with those guards as the reason.
                    sig = self._signature(known, v)
                    group = frozenset(u for u in rest if self._signature(known, u) == sig)
                    failed = [g for g, ok in zip(known, sig, strict=True) if not ok]
                    texts = [g.text for g in failed] or [f"torch.export fails at {d.name} = {v}: {' '.join(str(e).split())[:200]}"]
                    gaps.append(PlannedPart(ProfilePart(-1, (self._dim_class(d, group, loose=True),), tuple(texts),
                                                        tuple(dict.fromkeys(g.source for g in failed if g.source)))))
                    covered |= group
                    continue
                allowed = t.allowed[d.name]
                if v not in allowed:
                    raise self._error(f"the export at {d.name} = {v} records guards that exclude {v}", None)
                classes[d.name].append(allowed)
                self._check_count(classes, first, lower_bound=True)
                if sum(len(c) == 1 for c in classes[d.name]) > MAX_SINGLETONS:
                    raise self._error(f"torch.export fixed {d.name} to the example's value at {MAX_SINGLETONS + 1} values "
                                      f"(the model's code reads the size as a constant)", None)
                known += [g for g in t.guards[d.name] if g not in known]
                covered |= allowed
        # guards over several dims: each dim's classes are cut where one of them changes along it
        relations = list(dict.fromkeys(r for t in self._traces.values() for r in t.relations))
        if relations:
            cuts = self._cuts(relations, full)
            for d in self.dims:
                if cuts[d.name]:
                    bounds = [d.lo, *cuts[d.name], d.hi + 1]
                    pieces = [frozenset(range(a, b)) for a, b in itertools.pairwise(bounds)]
                    classes[d.name] = [c & p for c in classes[d.name] for p in pieces if c & p]
        for d in self.dims:
            # NOTE: a class of the profile's lowest value alone next to a class that holds the value
            # above it (torch 2.11's `batch != 1` on CUDA: {1} and 2..32) doubles the packages of every
            # other dim's classes. Where padding along the dim keeps the outputs (checked on the source
            # model by the caller), that value runs padded to the next one instead, in its package.
            edge = frozenset([d.lo])
            if (self.edge_padding is not None and edge in classes[d.name]
                    and any(d.lo + 1 in c for c in classes[d.name] if c != edge) and self.edge_padding(d)):
                classes[d.name] = [c for c in classes[d.name] if c != edge]
        self._check_count(classes, first)
        combos = list(itertools.product(*(classes[d.name] for d in self.dims)))
        parts = []
        for combo in combos:
            dim_classes = []
            example = {}
            for d, values in zip(self.dims, combo, strict=True):
                c = self._dim_class(d, values)
                example[d.name] = _near(sorted(values), d.opt)
                if (c.lo, c.hi, c.modulus) != (d.lo, d.hi, 1):
                    dim_classes.append(c)
            # NOTE: each part keeps the profile's whole range in its export (the engine checks the
            # class before it calls the package), so a trace already made is reused for every part
            # where its guards hold (the builder then compiles that program once for all of them).
            cell = dict(zip((d.name for d in self.dims), combo, strict=True))
            t = next((t0 for t0 in self._traces.values() if self._valid(t0, cell)), None) or self.trace(example, full)
            for c in dim_classes:
                missing = [v for v in range(c.lo, c.hi + 1) if c.contains(v) and v not in t.allowed[c.name]]
                if missing:
                    raise self._error(f"the part {c.describe()} traced at {c.name} = {example[c.name]} is not valid "
                                      f"at {c.name} = {missing[0]}", None)
            for r in t.relations:
                bad = self._fails_in(r, cell)
                if bad is not None:
                    where = ", ".join(f"{n} = {v}" for n, v in bad.items())
                    raise self._error(f"the guard `{r.text}` relates several dims and fails at {where}, inside the part "
                                      f"traced at {', '.join(f'{n} = {example[n]}' for n in r.dims)}", r.source)
            guard_list = [g for d in self.dims for g in t.guards[d.name]]
            part = ProfilePart(-1, tuple(dim_classes), tuple(dict.fromkeys(g.text for g in guard_list)),
                               tuple(dict.fromkeys(g.source for g in guard_list if g.source)))
            parts.append(PlannedPart(part, t.program, example))
        return parts + gaps

    def _check_count(self, classes: dict[str, list[frozenset[int]]], first: _Trace, *, lower_bound: bool = False) -> None:
        """Stop as soon as the classes found so far make more than :data:`MAX_PARTS` parts.

        NOTE: each class costs an export (10-90 s for a Swin on a CPU core) and a compile: a model
        that branches on many residues (Swin: its patch padding, each stage's window padding and
        patch-merging parity) is refused after the exports that prove it, not after all of them.
        The message names the opt shape's class, the range that builds as one part. While classes are
        still being found (``lower_bound``), a class of a dim's lowest value alone is not counted: it
        may still run padded in the next one's package (the edge rule in plan())."""
        count = 1
        for d in self.dims:
            found = classes.get(d.name, [])
            if lower_bound:
                found = [c for c in found if c != frozenset([d.lo])]
            count *= max(len(found), 1)
        if count <= MAX_PARTS:
            return
        counts = ", ".join(f"{n}: {len(c)}" for n, c in classes.items())
        one = ", ".join(self._dim_class(d, first.allowed[d.name], loose=True).describe() for d in self.dims)
        guards = [g for d in self.dims for g in first.guards[d.name]]
        raise BackendError(
            f"torch.export cannot keep the profile's dims dynamic ({self.profile.describe()}): the model's code "
            f"branches on the dims' values into at least {count} parts (classes found so far: {counts}; at most "
            f"{MAX_PARTS} parts), e.g. `{guards[0].text if guards else '?'}`"
            + (f" (made by {guards[0].source})" if guards and guards[0].source else ""),
            "a profile whose shapes take few branches of the model's code",
            f"narrow the profile to one branch: the opt shape's is {one}; or build one static profile per size "
            f"you serve (--shapes / several profiles), which also runs fastest",
        )

    def _cuts(self, relations: list[_Relation], full: dict[str, tuple[int, int]]) -> dict[str, list[int]]:
        """Per dim, the values ``v`` where some relation's truth differs between ``v - 1`` and ``v`` for
        some values of the other dims: the grid whose cells the relations are constant on, when they
        are functions of per-dim steps (a feature map's size is). A diagonal (``H > W``) cuts at every
        value, and the split then exceeds its parts."""
        import numpy as np

        out: dict[str, set[int]] = {d.name: set() for d in self.dims}
        for r in relations:
            box = {self._sym(n): full[n] for n in r.dims}
            table = _truth_table(r.expr, box)
            if table is None:
                raise self._error(f"the guard `{r.text}` relates several dims over more than {MAX_BOX_POINTS} "
                                  f"combinations of their values, too many to check one by one", r.source)
            for axis, n in enumerate(r.dims):
                changes = np.diff(table.astype(np.int8), axis=axis) != 0
                other = tuple(a for a in range(table.ndim) if a != axis)
                flips = np.flatnonzero(changes.any(axis=other) if other else changes)
                out[n] |= {full[n][0] + int(i) + 1 for i in flips}
        total = 1
        for c in out.values():
            total *= len(c) + 1
        if total > MAX_PARTS:
            worst = max(relations, key=lambda r: len(r.dims))
            bad = _holds_on_box(worst.expr, {self._sym(n): full[n] for n in worst.dims})
            where = "" if not isinstance(bad, dict) else " (it fails at " + ", ".join(f"{s} = {v}" for s, v in bad.items()) + ")"
            raise self._error(f"the guard `{worst.text}` relates several dims{where}, and cutting their ranges where it "
                              f"changes makes {total} parts (at most {MAX_PARTS})", worst.source)
        return {n: sorted(c) for n, c in out.items()}

    def _valid(self, t: _Trace, cell: dict[str, frozenset[int]]) -> bool:
        """Whether trace ``t`` is valid on the whole cell: every dim's values allowed, every relation true."""
        return (all(cell[n] <= t.allowed[n] for n in cell)
                and all(self._fails_in(r, cell) is None for r in t.relations))

    def _fails_in(self, r: _Relation, cell: dict[str, frozenset[int]]) -> dict[str, int] | None:
        """The first point of the part's cell where relation ``r`` fails, or None."""
        syms = [self._sym(n) for n in r.dims]
        fn = _compile(r.expr, syms)
        for vals in itertools.product(*(sorted(cell[n]) for n in r.dims)):
            if not fn(*vals):
                return dict(zip(r.dims, vals, strict=True))
        return None

    def _signature(self, guards: list[_Guard], v: int) -> tuple[bool, ...]:
        return tuple(self._holds(g, v) for g in guards)

    def _dim_class(self, d: FreeDim, values: frozenset[int], *, loose: bool = False) -> DimClass:
        """``values`` as ``lo..hi`` and residues modulo the smallest modulus that describes them exactly."""
        places = tuple((self.inputs[i].name, a) for i, a in d.places)
        lo, hi = min(values), max(values)
        for m in range(1, MAX_MODULUS + 1):
            residues = {v % m for v in values}
            if all((v in values) == (v % m in residues) for v in range(lo, hi + 1)):
                return DimClass(d.name, places, lo, hi, m, tuple(sorted(residues)))
        if loose:  # a gap only names the values in its message
            return DimClass(d.name, places, lo, hi)
        raise self._error(f"the values of {d.name} where its guards hold are not a range with residue classes "
                          f"(modulus up to {MAX_MODULUS}): {sorted(values)[:12]}...", None)


def restricting_guards(program: Any, inputs: Sequence[TensorSpec], profile: Profile) -> list[str]:
    """The guards of an exported ``program`` that fail somewhere in the profile (empty: its trace is valid
    at every shape of the profile), in the dims' names.

    NOTE: torch.export with named ``Dim`` s refuses a guard on one dim that a range cannot express, but
    (torch 2.13) accepts a guard over several dims, keeping it only as a check in ``ep.module()``, which
    AOTInductor's package does not run: the package then computes the other branch's result where the
    guard fails. So a program is checked like the split's traces before it is trusted over the profile.
    """
    ranges: dict[tuple[int, int], tuple[int, int]] = {}
    names: dict[tuple[int, int], str] = {}
    for i, spec in enumerate(inputs):
        r = profile[spec.name]
        for axis in r.dynamic_axes:
            lo, _, hi = r.dim(axis)
            ranges[(i, axis)], names[(i, axis)] = (lo, hi), dim_symbol(spec, axis)
    return failing_guards(program, ranges, names)


def failing_guards(program: Any, ranges: dict[tuple[int, int], tuple[int, int]],
                   names: dict[tuple[int, int], str] | None = None) -> list[str]:
    """The guards of ``program`` that fail somewhere in the box of its root size symbols.

    ``ranges``: (input index, axis) -> the range of the root symbol that torch made for that place
    (for an aligned dim ``Dim(k) * 32``, the range of ``k``). ``names``: the dim's name at a place
    whose size is a plain symbol, for the guards' text.
    """
    user = set(program.graph_signature.user_inputs)
    vals = [n.meta["val"] for n in program.graph.nodes if n.op == "placeholder" and n.name in user]
    box: dict[Any, tuple[int, int]] = {}
    named: dict[Any, str] = {}
    shape_env = None
    for (i, axis), r in ranges.items():
        v = vals[i].shape[axis]
        if isinstance(v, int):
            continue
        shape_env = v.node.shape_env
        for sym in v.node.expr.free_symbols:
            box[sym] = r
        if names and (i, axis) in names and len(v.node.expr.free_symbols) == 1 and v.node.expr.is_Symbol:
            named[v.node.expr] = names[(i, axis)]
    if shape_env is None:
        return []
    out = []
    for g in shape_env.guards:
        expr = g.expr
        with contextlib.suppress(Exception):
            expr = shape_env.simplify(expr)
        free = expr.free_symbols
        if not free or not free <= set(box) or _always(expr, {s: box[s] for s in free}):
            continue
        if _holds_on_box(expr, {s: box[s] for s in free}) is not True:
            out.append(_text(expr, {s: named.get(s, str(s)) for s in free}))
    return out


def split_profile(torch: Any, module: Any, inputs: Sequence[TensorSpec], profile: Profile,
                  make_example: Callable[[int, tuple[int, ...]], Any],
                  edge_padding: Callable[[FreeDim], bool] | None = None) -> list[PlannedPart]:
    """The parts of ``profile`` (packages to compile first, then gaps); ``ProfilePart.profile`` is -1 until
    the caller numbers them.

    ``edge_padding(dim)``: asked when torch's trace at the dim's lowest value is valid there alone;
    True (the caller checked that padding along the dim is safe and will pad that value to the next
    one at run time) drops that value's class, and its packages."""
    dims = free_dims(inputs, profile)
    return _Splitter(torch, module, inputs, profile, dims, make_example, edge_padding).plan()


# -- helpers --------------------------------------------------------------------------------------


def _always(expr: Any, ranges: dict[Any, tuple[int, int]]) -> bool:
    """True when torch's interval analysis proves ``expr`` over the ranges."""
    try:
        from torch.utils._sympy.value_ranges import ValueRanges, bound_sympy

        vr = bound_sympy(expr, {s: ValueRanges(lo, hi) for s, (lo, hi) in ranges.items()})
        return bool(vr.is_singleton() and vr.lower)
    except Exception:
        return False


def _compile(expr: Any, syms: Sequence[Any]) -> Callable[..., bool]:
    """A guard as a Python function of its symbols' values.

    Printed by torch's own printer (the one its guard code uses), whose ``//`` and ``%`` are Python's
    floor division and modulo, as torch's sympy ``FloorDiv`` and ``PythonMod`` are defined. A point
    where the printed text does not evaluate (a division by zero outside the dims' ranges, a function
    the printer names) is evaluated with sympy (about 100x slower); so is every point when the text
    does not compile.
    """
    import math

    import sympy

    def slow(*vals: int) -> bool:
        r = expr.xreplace({s: sympy.Integer(v) for s, v in zip(syms, vals, strict=True)})
        return r is sympy.true or (r is not sympy.false and bool(r))

    try:
        from torch.utils._sympy.printers import PythonPrinter

        args = [sympy.Symbol(f"_d{i}", integer=True) for i in range(len(syms))]
        code = PythonPrinter().doprint(expr.xreplace(dict(zip(syms, args, strict=True))))
        builtins = {"bool": bool, "min": min, "max": max, "abs": abs, "int": int}
        # NOTE: the text is torch's printing of a sympy expression that torch built during our own
        # trace (symbols renamed to _d0.., integers and operators only), evaluated without builtins
        compiled = eval(f"lambda {', '.join(str(a) for a in args)}: bool({code})",
                        {"math": math, "__builtins__": builtins})
    except Exception:
        return slow

    def fast(*vals: int) -> bool:
        try:
            return bool(compiled(*vals))
        except Exception:
            return slow(*vals)

    fast.fast = True  # type: ignore[attr-defined]
    return fast


def _truth_table(expr: Any, ranges: dict[Any, tuple[int, int]]) -> Any:
    """The guard's value at every integer point of ``ranges`` (a numpy bool array, axes in the order of
    ``sorted(ranges, key=str)``), or None when the box has more than :data:`MAX_BOX_POINTS` points."""
    import math

    import numpy as np

    syms = sorted(ranges, key=str)
    axes = [range(ranges[s][0], ranges[s][1] + 1) for s in syms]
    fn = _compile(expr, syms)
    points = math.prod(len(a) for a in axes)
    if points > (MAX_BOX_POINTS if getattr(fn, "fast", False) else MAX_BOX_POINTS // 100):
        return None
    return np.fromiter((fn(*v) for v in itertools.product(*axes)), dtype=bool, count=points).reshape([len(a) for a in axes])


def _holds_on_box(expr: Any, ranges: dict[Any, tuple[int, int]]) -> bool | dict[Any, int] | None:
    """Whether a guard over several dims holds at every integer point of ``ranges``: True, the first
    point where it fails, or None when the box is too large to enumerate (:func:`_truth_table`)."""
    import numpy as np

    table = _truth_table(expr, ranges)
    if table is None:
        return None
    if table.all():
        return True
    syms = sorted(ranges, key=str)
    first = np.unravel_index(int(np.flatnonzero(~table.ravel())[0]), table.shape)
    return {s: ranges[s][0] + int(i) for s, i in zip(syms, first, strict=True)}


def _text(expr: Any, names: dict[Any, str]) -> str:
    """A guard in the dims' names, as Python (``((H - 1)//2) % 2 != 0``) where torch's printer is there."""
    import sympy

    named = expr.xreplace({s: sympy.Symbol(n, integer=True) for s, n in names.items()})
    try:
        from torch.utils._sympy.printers import PythonPrinter

        return str(PythonPrinter().doprint(named))
    except Exception:
        return str(named)


_DIRS: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None
_REAL: dict[str, str] = {}


def _library(filename: str) -> bool:
    """Whether a frame's file is torch, dynashape or the standard library (not the model's code).

    NOTE: third-party packages (transformers, timm) are the model's code here. Their site-packages
    folder can lie inside the standard library's (pyenv, conda: ``lib/python3.11/site-packages``), so
    it is checked first: a prefix test on the standard library alone named the user's wrapper instead
    of the transformers line that made a guard."""
    global _DIRS
    if _DIRS is None:
        import site

        import torch

        def norm(paths: Sequence[str]) -> tuple[str, ...]:
            return tuple(os.path.join(os.path.realpath(p), "") for p in paths if p)

        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        paths = sysconfig.get_paths()
        site_dirs = [*site.getsitepackages(), site.getusersitepackages(), paths.get("purelib", ""), paths.get("platlib", "")]
        _DIRS = (norm([os.path.dirname(torch.__file__), here]), norm(site_dirs),
                 norm([paths["stdlib"], paths.get("platstdlib", paths["stdlib"])]))
    if filename.startswith("<"):
        return True
    real = _REAL.get(filename)
    if real is None:
        real = _REAL[filename] = os.path.realpath(filename)
    ours, sites, stdlib = _DIRS
    if real.startswith(ours):
        return True
    return not real.startswith(sites) and real.startswith(stdlib)


def _user_frame(stack: traceback.StackSummary) -> str | None:
    """The innermost frame outside torch, dynashape and the standard library: the model's line."""
    for f in reversed(stack):
        if _library(f.filename):
            continue
        code = f" `{f.line.strip()}`" if f.line else ""
        return f"{f.filename}:{f.lineno} in {f.name}{code}"
    return None


def _caller_in_user_code() -> str | None:
    """:func:`_user_frame` of the current stack, walked frame by frame: called for every guard torch
    records (thousands for a Swin), where formatting the whole stack each time cost a third of the export."""
    f: types.FrameType | None = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if not _library(name):
            line = linecache.getline(name, f.f_lineno).strip()
            code = f" `{line}`" if line else ""
            return f"{name}:{f.f_lineno} in {f.f_code.co_name}{code}"
        f = f.f_back
    return None


@contextlib.contextmanager
def _guard_sources() -> Iterator[dict[str, str]]:
    """Guard text -> the model's source line, from torch's "[guard added]" log record at the moment it is made.

    NOTE: torch's own record of where a guard comes from (``ShapeGuard.sloc``) names a torch frame
    (``nn/modules/module.py in _call_impl``) under non-strict export; the stack at the moment the
    guard is logged still holds the model's frame, in torch 2.11 and 2.13 alike.
    """
    found: dict[str, str] = {}

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "[guard added]" not in str(record.msg):
                return
            frame = _caller_in_user_code()
            if frame is None:
                return
            for a in record.args if isinstance(record.args, tuple) else ():
                found.setdefault(str(a), frame)

    logger = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    old = (logger.level, logger.propagate, logger.handlers[:])
    # The INFO records are for us alone: torch's own handler on this logger and the user's handlers
    # (through propagation) keep seeing only what they saw before.
    logger.handlers = [_Handler(logging.INFO)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield found
    finally:
        logger.setLevel(old[0])
        logger.propagate = old[1]
        logger.handlers = old[2]
