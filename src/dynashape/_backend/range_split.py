"""Range splitting: one profile compiled as several sub-ranges of a dim, each tuned at its own opt.

The user still sees one profile. A dim's range ``lo..hi`` is cut into contiguous sub-ranges; each one is
exported with ``Dim(a, b)`` and an example at the sub-range's own opt, and compiled as a part of the
profile (the runtime picks the part from the input's value, as it does for guard-split and aligned parts).

NOTE (why): AOTInductor compiles a symbolic kernel once, and every size-dependent choice in it is made
at the size hint, which is the example torch.export traced with (the profile's opt): Triton's block
sizes and its autotuned configs, a persistent or a looped reduction, max-autotune's GEMM and convolution
templates. One package tuned at batch 16 then serves batch 1 and batch 64 with the same tiles. The
measured case that led here (BENCHMARKS.md, run 4): EfficientNet-B0 with a dynamic batch (1..64, opt 16)
at batch 32, on an H200: its convolutions took the static engine's time, its Triton kernels 765 us against
692 us. Measured with the split (run 6, batch 1..64 as 1..4, 5..16, 17..64): ViT-B/16's GELU kernel took
339 us a call at batch 32 against 473 us in the package tuned at 16, and the engine 1.030-1.042 of a static
one at batch 1 and 32 against 1.011-1.015; EfficientNet-B0 and ConvNeXt-T ran 1.8-2.0% faster at batch 1 and
within 1% at 32 (one of ConvNeXt's GELU kernels got slower). So it is not a default.
Each sub-range costs one more compile (1.3-1.6x the build time in run 6; later packages reuse Inductor's
cache), no weights (they are shared), and a package's code in the file.

``split`` (a build setting) names, per dim, how to cut:
  ``"auto"``     geometric sub-ranges whose max/min is at most :data:`AUTO_RATIO` (at most :data:`MAX_PIECES`)
  ``n`` (int)    ``n`` geometric sub-ranges
  ``[c1, c2]``   explicit cuts: ``lo..c1``, ``c1+1..c2``, ``c2+1..hi`` (cuts outside a profile's range are ignored there)
  ``[[lo, opt, hi], ...]``  sub-ranges with their own opt, as TensorRT profiles state them (what
                 ``dynashape.plan(split=True)`` writes from the traffic); a profile is cut at their edges
and ``split="auto"`` means ``"auto"`` for every free dim. Dims that alignment serves (``align``) are not
split: the aligned part's padding is a per-profile rule (see :mod:`.alignment`); split a batch or
sequence dim, and align the spatial ones.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import BackendError
from .._profiles import Profile, ShapeRange
from .._records import DimClass
from .._specs import TensorSpec
from .guard_split import FreeDim, free_dims

#: ``"auto"``: a sub-range spans at most this ratio max/min (batch 1..64 -> 1..4, 5..16, 17..64)
AUTO_RATIO = 4.0
#: the most sub-ranges one dim is cut into
MAX_PIECES = 8
#: the most sub-profiles one profile becomes (the product over its split dims)
MAX_SUB_PROFILES = 16
#: a split setting: (dim name or "*", "auto" | a count | the cuts | ``(lo, opt, hi)`` sub-ranges)
SplitSpec = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class SubRange:
    """One piece of one dim: ``lo..hi``, compiled with ``opt`` as its size hint."""

    name: str
    lo: int
    hi: int
    opt: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "lo": self.lo, "hi": self.hi, "opt": self.opt}


def check_split(split: Any, inputs: Sequence[TensorSpec]) -> SplitSpec:
    """``split`` (None, ``"auto"`` or a dict dim name -> ``"auto"`` | count | cuts) as sorted pairs, checked
    against the model's named dims."""
    if split is None or split == {}:
        return ()
    if split == "auto":
        return (("*", "auto"),)
    if not isinstance(split, Mapping):
        raise BackendError(f"split={split!r}", "None, 'auto', or a dict dim name -> 'auto' | a count | a list of cut points",
                           "e.g. split={'batch': 'auto'} or split={'batch': [4, 16]}")
    names = sorted({d for s in inputs for d in s.shape if isinstance(d, str)})
    out: list[tuple[str, Any]] = []
    for name, how in split.items():
        if name not in names:
            raise BackendError(f"split names the dim '{name}', which no input has",
                               "one of the model's named dims: " + (", ".join(names) or "(none: the model has no named dims)"),
                               "use the dim names that `dynashape inspect` shows, e.g. split={'batch': 'auto'}")
        if how == "auto":
            out.append((str(name), "auto"))
        elif type(how) is int:
            if not 1 <= how <= MAX_PIECES:
                raise BackendError(f"split['{name}'] = {how}", f"a count of sub-ranges from 1 to {MAX_PIECES}")
            out.append((str(name), how))
        elif isinstance(how, (list, tuple)) and how and all(isinstance(t, (list, tuple)) for t in how):
            out.append((str(name), _check_triples(name, how)))
        elif isinstance(how, (list, tuple)) and how and all(type(c) is int and c >= 1 for c in how):
            cuts = tuple(sorted(set(how)))
            if len(cuts) >= MAX_PIECES:
                raise BackendError(f"split['{name}'] with {len(cuts)} cuts", f"at most {MAX_PIECES - 1} cuts ({MAX_PIECES} sub-ranges)")
            out.append((str(name), cuts))
        else:
            raise BackendError(f"split['{name}'] = {how!r}", "'auto', a count of sub-ranges, or a list of positive cut points",
                               "a cut c ends a sub-range at c: [4, 16] gives lo..4, 5..16, 17..hi")
    return tuple(sorted(out, key=lambda p: p[0]))


#: the most ``[lo, opt, hi]`` sub-ranges one dim may list (over all profiles)
MAX_TRIPLES = 64


def _check_triples(name: str, how: Any) -> tuple[tuple[int, int, int], ...]:
    """``[[lo, opt, hi], ...]``: ints with ``1 <= lo <= opt <= hi``, sorted and not overlapping."""
    out = []
    for t in how:
        if not (isinstance(t, (list, tuple)) and len(t) == 3 and all(type(v) is int for v in t) and 1 <= t[0] <= t[1] <= t[2]):
            raise BackendError(f"split['{name}'] sub-range {t!r}", "[lo, opt, hi] with integers 1 <= lo <= opt <= hi")
        out.append((t[0], t[1], t[2]))
    if len(out) > MAX_TRIPLES:
        raise BackendError(f"split['{name}'] with {len(out)} sub-ranges", f"at most {MAX_TRIPLES}")
    for a, b in itertools.pairwise(out):
        if b[0] <= a[2]:
            raise BackendError(f"split['{name}'] sub-ranges {list(a)} and {list(b)}", "sorted sub-ranges that do not overlap")
    return tuple(out)


def _triples(how: Any) -> bool:
    return isinstance(how, tuple) and bool(how) and isinstance(how[0], tuple)


def _geometric(lo: int, hi: int, pieces: int) -> list[int]:
    """Cut points (the last value of each sub-range but the last) for ``pieces`` geometric sub-ranges."""
    base = max(lo, 1)
    cuts = {round(base * (hi / base) ** (i / pieces)) for i in range(1, pieces)}
    return sorted(c for c in cuts if lo <= c < hi)


def cuts_for(d: FreeDim, how: Any) -> list[int]:
    """Where ``how`` cuts the dim ``d`` of one profile (no cut: one sub-range)."""
    if how == "auto":
        ratio = d.hi / max(d.lo, 1)
        pieces = min(MAX_PIECES, math.ceil(math.log(ratio) / math.log(AUTO_RATIO) - 1e-9)) if ratio > AUTO_RATIO else 1
        return _geometric(d.lo, d.hi, pieces)
    if isinstance(how, int):
        return _geometric(d.lo, d.hi, min(how, d.hi - d.lo + 1))
    if _triples(how):
        return sorted({c for lo, _, hi in how for c in (lo - 1, hi) if d.lo <= c < d.hi})
    return [c for c in how if d.lo <= c < d.hi]


def _sub_opt(d: FreeDim, lo: int, hi: int, how: Any = None) -> int:
    """A stated sub-range's opt where one holds this sub-range (``[lo, opt, hi]`` triples); else the
    profile's opt where it lies in the sub-range (the user's choice); else the sub-range's geometric middle."""
    if _triples(how):
        for t_lo, t_opt, t_hi in how:
            if t_lo <= lo and hi <= t_hi and lo <= t_opt <= hi:
                return int(t_opt)
    if lo <= d.opt <= hi:
        return d.opt
    return min(hi, max(lo, round(math.sqrt(max(lo, 1) * hi))))


def sub_profiles(inputs: Sequence[TensorSpec], profile: Profile, split: SplitSpec,
                 keep: Sequence[str] = ()) -> list[tuple[Profile, tuple[SubRange, ...]]]:
    """The sub-profiles ``split`` makes of ``profile``: each with its sub-ranges (empty where nothing is cut,
    then the one sub-profile is ``profile`` itself). ``keep``: dims not to split (the aligned ones)."""
    if not split:
        return [(profile, ())]
    wanted = dict(split)
    pieces: list[list[SubRange]] = []
    dims: list[FreeDim] = []
    for d in free_dims(inputs, profile):
        how = wanted.get(d.name, wanted.get("*"))
        if how is None or d.name in keep:
            continue
        bounds = [d.lo - 1, *cuts_for(d, how), d.hi]
        if len(bounds) <= 2:
            continue
        dims.append(d)
        pieces.append([SubRange(d.name, a + 1, b, _sub_opt(d, a + 1, b, how)) for a, b in itertools.pairwise(bounds)])
    if not pieces:
        return [(profile, ())]
    combos = list(itertools.product(*pieces))
    if len(combos) > MAX_SUB_PROFILES:
        raise BackendError(f"split makes {len(combos)} sub-profiles of {profile.describe()} "
                           f"({' x '.join(str(len(p)) for p in pieces)} over {', '.join(d.name for d in dims)})",
                           f"at most {MAX_SUB_PROFILES} (each one is a compile)", "split fewer dims, or into fewer sub-ranges")
    out = []
    for combo in combos:
        ranges = {}
        for i, spec in enumerate(inputs):
            r = profile[spec.name]
            lo, opt, hi = list(r.min), list(r.opt), list(r.max)
            for d, s in zip(dims, combo, strict=True):
                for j, axis in d.places:
                    if j == i:
                        lo[axis], opt[axis], hi[axis] = s.lo, s.opt, s.hi
            ranges[spec.name] = ShapeRange(tuple(lo), tuple(opt), tuple(hi))
        out.append((Profile(ranges), tuple(combo)))
    return out


def restrict(classes: Sequence[DimClass], subs: Sequence[SubRange], places: Mapping[str, tuple[tuple[str, int], ...]]) -> tuple[DimClass, ...]:
    """A part's dim classes inside one sub-profile: each split dim limited to its sub-range (a part
    that did not restrict the dim gets a class for the whole sub-range)."""
    by_name = {c.name: c for c in classes}
    out = list(classes)
    for s in subs:
        c = by_name.get(s.name)
        if c is None:
            out.append(DimClass(s.name, places[s.name], s.lo, s.hi))
        else:
            out[out.index(c)] = DimClass(c.name, c.places, max(c.lo, s.lo), min(c.hi, s.hi), c.modulus, c.residues)
    order = list(places)  # the dims in the inputs' order, as the guard split lists them
    return tuple(sorted(out, key=lambda c: order.index(c.name) if c.name in order else len(order)))


def describe(subs: Sequence[SubRange]) -> str:
    return ", ".join(f"{s.name} in {s.lo}..{s.hi} (opt {s.opt})" for s in subs)


def record(per_sub: Sequence[tuple[SubRange, ...]]) -> list[list[dict[str, Any]]]:
    """The manifest's record of one profile's split: per sub-profile, its sub-ranges."""
    return [[s.to_json() for s in subs] for subs in per_sub]


def places_of(inputs: Sequence[TensorSpec], profile: Profile) -> dict[str, tuple[tuple[str, int], ...]]:
    """dim name -> ((input name, axis), ...), as a :class:`DimClass` lists them."""
    return {d.name: tuple((inputs[i].name, a) for i, a in d.places) for d in free_dims(inputs, profile)}
