"""Optimization profiles as typed data: a :class:`ShapeRange` per input, a :class:`Profile` over inputs.

This mirrors TensorRT's model (min, opt and max per input; an engine holds profiles 0, 1, 2, ...).
Profiles are converted to a backend's own form (``torch.export.Dim``, TensorRT's
``IOptimizationProfile``) only inside that backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ._dtypes import DTYPES
from ._errors import ProfileError
from ._limits import check_tensor_bytes, element_count, is_integer
from ._specs import TensorSpec, format_shape

Shape = tuple[int, ...]


def _as_shape(value: Sequence[int], what: str) -> Shape:
    # NOTE: only integers (Python or numpy) are dims: int(1.9) would truncate to 1 and int(True) is
    # 1, so floats, bools and strings are refused rather than converted.
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ProfileError(f"{what} = {value!r} is not a shape", "a sequence of non-negative integers such as (1, 3, 224, 224)")
    items = list(value)
    bad = [d for d in items if not is_integer(d)]
    if bad:
        raise ProfileError(
            f"{what} = {value!r} has the dim {bad[0]!r} ({type(bad[0]).__name__})",
            "a sequence of non-negative integers such as (1, 3, 224, 224)",
            "pass integer dims (round a computed size with int(round(x)) on purpose)",
        )
    shape = tuple(int(d) for d in items)
    if any(d < 0 for d in shape):
        raise ProfileError(f"{what} = {format_shape(shape)} has a negative dim", "dims >= 0")
    element_count(shape, what)
    return shape


@dataclass(frozen=True)
class ShapeRange:
    """The shapes one input may take in one profile: every dim between ``min`` and ``max``; tuned for ``opt``.

    >>> r = ShapeRange((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))
    >>> r.contains((1, 3, 700, 900)), r.contains((1, 3, 1700, 900))
    (True, False)
    >>> str(r)
    '1x3x512x512 / 1x3x1024x1024 / 1x3x1600x1600'
    """

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        lo, op, hi = (_as_shape(s, n) for s, n in ((self.min, "min"), (self.opt, "opt"), (self.max, "max")))
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "opt", op)
        object.__setattr__(self, "max", hi)
        if not (len(lo) == len(op) == len(hi)):
            raise ProfileError(
                f"min {format_shape(lo)}, opt {format_shape(op)} and max {format_shape(hi)} have ranks {len(lo)}, {len(op)}, {len(hi)}",
                "the same rank for min, opt and max",
            )
        for axis, (a, b, c) in enumerate(zip(lo, op, hi, strict=True)):
            if not a <= b <= c:
                raise ProfileError(
                    f"dim {axis}: min {a}, opt {b}, max {c} (shapes {format_shape(lo)} / {format_shape(op)} / {format_shape(hi)})",
                    "min <= opt <= max in every dim",
                    "reorder the shapes, or widen min/max to include opt",
                )

    @classmethod
    def static(cls, shape: Sequence[int]) -> ShapeRange:
        """A range that admits exactly one shape."""
        s = tuple(shape)
        return cls(s, s, s)

    @property
    def rank(self) -> int:
        return len(self.opt)

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.rank) if self.min[i] != self.max[i])

    def contains(self, shape: Sequence[int]) -> bool:
        return len(shape) == self.rank and all(a <= d <= c for a, d, c in zip(self.min, shape, self.max, strict=True))

    def dim(self, axis: int) -> tuple[int, int, int]:
        return self.min[axis], self.opt[axis], self.max[axis]

    def __str__(self) -> str:
        return f"{format_shape(self.min)} / {format_shape(self.opt)} / {format_shape(self.max)}"

    def to_json(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[int]]) -> ShapeRange:
        return cls(tuple(data["min"]), tuple(data["opt"]), tuple(data["max"]))


class Profile(Mapping[str, ShapeRange]):
    """One optimization profile: input name -> :class:`ShapeRange`. Immutable.

    >>> p = Profile({"x": ShapeRange((1, 8), (4, 8), (16, 8))})
    >>> p["x"].max, p.contains({"x": (2, 8)}), p.contains({"x": (2, 9)})
    ((16, 8), True, False)
    >>> Profile({"x": ((1, 8), (4, 8), (16, 8))}) == p
    True
    """

    __slots__ = ("_ranges",)

    def __init__(self, ranges: Mapping[str, ShapeRange | tuple[Sequence[int], Sequence[int], Sequence[int]]]) -> None:
        out: dict[str, ShapeRange] = {}
        for name, r in ranges.items():
            if not isinstance(name, str) or not name:
                raise ProfileError(f"input name {name!r}", "a non-empty string")
            if isinstance(r, ShapeRange):
                out[name] = r
            else:
                try:
                    lo, op, hi = r
                except (TypeError, ValueError):
                    raise ProfileError(f"range for input '{name}' = {r!r}", "a ShapeRange or a (min, opt, max) triple of shapes") from None
                out[name] = ShapeRange(tuple(lo), tuple(op), tuple(hi))
        self._ranges = out

    # Mapping protocol
    def __getitem__(self, name: str) -> ShapeRange:
        return self._ranges[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ranges)

    def __len__(self) -> int:
        return len(self._ranges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and self._ranges == other._ranges

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._ranges.items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {r}" for n, r in self._ranges.items())
        return f"Profile({{{inner}}})"

    @classmethod
    def from_shapes(
        cls,
        min: Mapping[str, Sequence[int]],
        opt: Mapping[str, Sequence[int]],
        max: Mapping[str, Sequence[int]],
    ) -> Profile:
        """From three dicts of shapes, as trtexec's ``--minShapes/--optShapes/--maxShapes`` give them."""
        names = list(dict.fromkeys([*min, *opt, *max]))
        ranges = {}
        for n in names:
            missing = [k for k, d in (("min", min), ("opt", opt), ("max", max)) if n not in d]
            if missing:
                raise ProfileError(
                    f"input '{n}' has no {' and no '.join(missing)} shape",
                    "every input named in one of min/opt/max named in all three",
                    f"add {n}:<shape> to " + ", ".join(f"--{m}Shapes" for m in missing),
                )
            ranges[n] = ShapeRange(tuple(min[n]), tuple(opt[n]), tuple(max[n]))
        return cls(ranges)

    @classmethod
    def from_dims(cls, dims: Mapping[str, tuple[int, int, int] | int], inputs: Sequence[TensorSpec]) -> Profile:
        """From ranges per symbolic dim name (``{"batch": (1, 8, 32)}``), expanded over the model's inputs.

        >>> spec = TensorSpec("ids", "int64", ("batch", "seq"))
        >>> Profile.from_dims({"batch": (1, 4, 8), "seq": 128}, [spec])["ids"]
        ShapeRange(min=(1, 128), opt=(4, 128), max=(8, 128))
        """
        triples: dict[str, tuple[int, int, int]] = {}
        for k, v in dims.items():
            if is_integer(v):
                n = int(v)  # type: ignore[arg-type]
                triples[k] = (n, n, n)
                continue
            if isinstance(v, (str, bytes)) or not isinstance(v, Iterable) or len(t := tuple(v)) != 3:
                raise ProfileError(f"range for dim '{k}' = {v!r}", "an integer or a (min, opt, max) triple of integers",
                                   f"e.g. {{'{k}': (1, 8, 32)}}")
            a, b, c = _as_shape(t, f"range for dim '{k}'")
            if not a <= b <= c:
                raise ProfileError(f"range for dim '{k}' = min {a}, opt {b}, max {c}", "min <= opt <= max")
            triples[k] = (a, b, c)
        known = {d for s in inputs for d in s.shape if isinstance(d, str)}
        unknown = sorted(set(triples) - known)
        if unknown:
            raise ProfileError(
                f"dim name(s) {', '.join(repr(u) for u in unknown)} do not occur in the model's inputs",
                "one of: " + (", ".join(sorted(known)) or "(the model's inputs have no named dynamic dims)"),
                "use the names that `dynashape inspect` shows, or give full shapes with --minShapes/--optShapes/--maxShapes",
            )
        ranges = {}
        for spec in inputs:
            lo, op, hi = [], [], []
            for axis, d in enumerate(spec.shape):
                if isinstance(d, int):
                    t = (d, d, d)
                elif isinstance(d, str) and d in triples:
                    t = triples[d]
                else:
                    label = f"'{d}'" if d else "unnamed"
                    raise ProfileError(
                        f"input '{spec.name}' {spec.dim_label(axis)} is dynamic ({label}) but the dim ranges give it none",
                        "a range for every dynamic dim",
                        f"add {d}=min:opt:max" if d else "give full shapes with --minShapes/--optShapes/--maxShapes",
                    )
                lo.append(t[0])
                op.append(t[1])
                hi.append(t[2])
            ranges[spec.name] = ShapeRange(tuple(lo), tuple(op), tuple(hi))
        return cls(ranges)

    def contains(self, shapes: Mapping[str, Sequence[int]]) -> bool:
        return all(name in self._ranges and self._ranges[name].contains(s) for name, s in shapes.items())

    def to_json(self) -> dict[str, dict[str, list[int]]]:
        return {n: r.to_json() for n, r in self._ranges.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, Sequence[int]]]) -> Profile:
        return cls({n: ShapeRange.from_json(r) for n, r in data.items()})

    def describe(self) -> str:
        return ", ".join(f"{n}: {r}" for n, r in self._ranges.items())


def _inputs_text(inputs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{s.name} ({s.dtype}, {s.shape_text()})" for s in inputs)


def _itemsize(dtype: str) -> int:
    d = DTYPES.get(dtype)
    return d.itemsize if d is not None else 1  # NOTE: a type outside the table is at least one byte


def validate_profile(profile: Profile, inputs: Sequence[TensorSpec], index: int = 0) -> Profile:
    """Check ``profile`` against the model's inputs and return it completed with the static inputs.

    Checks: every name is an input; ranks match; static dims equal the model's; every input with a
    dynamic dim has a range; inputs that share a symbolic dim name give it the same range.
    """
    by_name = {s.name: s for s in inputs}
    where = f"profile {index}"
    for name in profile:
        if name not in by_name:
            raise ProfileError(
                f"{where} names input '{name}', which the model does not have",
                f"the model's inputs are: {_inputs_text(inputs)}",
                "fix the name in --minShapes/--optShapes/--maxShapes (quote names that contain ':' or ',')",
            )
    completed: dict[str, ShapeRange] = {}
    for spec in inputs:
        r = profile.get(spec.name)
        if r is None:
            if spec.dynamic_axes:
                axes = ", ".join(spec.dim_label(a) for a in spec.dynamic_axes)
                raise ProfileError(
                    f"{where} gives no range for input '{spec.name}', whose {axes} {'is' if len(spec.dynamic_axes) == 1 else 'are'} dynamic",
                    "a min/opt/max shape for every input with a dynamic dim",
                    f"add {spec.name}:<shape> to --minShapes, --optShapes and --maxShapes",
                )
            completed[spec.name] = ShapeRange.static(tuple(int(d) for d in spec.shape))  # type: ignore[arg-type]
            continue
        if r.rank != spec.rank:
            raise ProfileError(
                f"{where} gives input '{spec.name}' rank-{r.rank} shapes ({r})",
                f"rank {spec.rank}, like the model's {spec.shape_text()}",
            )
        for axis, d in enumerate(spec.shape):
            if isinstance(d, int) and r.dim(axis) != (d, d, d):
                lo, op, hi = r.dim(axis)
                raise ProfileError(
                    f"{where} gives input '{spec.name}' dim {axis} the range {lo}..{hi} (opt {op})",
                    f"{d}: the model fixes this dim (shape {spec.shape_text()})",
                    "re-export the model with this dim dynamic, or set it to "
                    f"{d} in min, opt and max",
                )
        completed[spec.name] = r
    for spec in inputs:
        check_tensor_bytes(completed[spec.name].max, _itemsize(spec.dtype), f"{where}: input '{spec.name}' max shape")
    # Inputs sharing a symbolic dim must agree, or no single run could satisfy the profile.
    seen: dict[str, tuple[str, int, tuple[int, int, int]]] = {}
    for spec in inputs:
        for axis, d in enumerate(spec.shape):
            if not isinstance(d, str):
                continue
            t = completed[spec.name].dim(axis)
            if d in seen and seen[d][2] != t:
                other, oaxis, ot = seen[d]
                raise ProfileError(
                    f"{where}: dim '{d}' is {t[0]}..{t[2]} (opt {t[1]}) for input '{spec.name}' dim {axis} "
                    f"but {ot[0]}..{ot[2]} (opt {ot[1]}) for input '{other}' dim {oaxis}",
                    f"the same min/opt/max wherever '{d}' appears, since the model requires these dims to be equal",
                    f"give '{d}' one range, e.g. with --dims {d}=min:opt:max",
                )
            seen.setdefault(d, (spec.name, axis, t))
    return Profile(completed)


# ---------------------------------------------------------------------------------------------
# trtexec syntax
# ---------------------------------------------------------------------------------------------

def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside single or double quotes."""
    parts, cur, quote = [], [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quote:
        raise ProfileError(f"{text!r} has an unclosed {quote} quote", "quoted names like 'input:0':1x3x224x224")
    parts.append("".join(cur))
    return parts


def _split_name(item: str, what: str) -> tuple[str, str]:
    item = item.strip()
    if item[:1] in "'\"":
        q = item[0]
        end = item.find(q, 1)
        name, rest = item[1:end], item[end + 1:]
        if not rest.startswith(":"):
            raise ProfileError(f"{what} {item!r} has no ':' after the quoted name", "'name':value")
        return name, rest[1:]
    name, colon, value = item.rpartition(":")
    if not colon or not name:
        raise ProfileError(f"{what} {item!r} has no input name", "name:value, e.g. input_1:1x3x224x224")
    return name, value


def parse_shape(text: str, what: str = "shape") -> Shape:
    """``"1x3x224x224"`` -> ``(1, 3, 224, 224)``; ``""`` or ``"scalar"`` -> ``()``."""
    text = text.strip()
    if text in ("", "scalar"):
        return ()
    out = []
    # NOTE: split on 'x' or 'X' without lowercasing, so the message quotes the dim as it was typed;
    # isdecimal (not isdigit) accepts exactly what int() parses ('²' is a digit but no integer).
    for tok in text.replace("X", "x").split("x"):
        if not tok.strip().isdecimal() or not tok.strip().isascii():
            raise ProfileError(
                f"{what} {text!r} has the dim {tok!r}",
                "dims as non-negative integers joined by 'x', e.g. 1x3x224x224",
            )
        if len(tok.strip()) > 19:  # more digits than any int64; int() of thousands of digits raises
            raise ProfileError(f"{what} {text[:60]!r} has the {len(tok.strip())}-digit dim '{tok.strip()[:20]}...'",
                               "dims below 2**63", "check the shape for a typo")
        out.append(int(tok))
    shape = tuple(out)
    element_count(shape, f"{what} {text!r}")
    return shape


def parse_shapes(text: str) -> dict[str, Shape]:
    """Parse trtexec's shape list.

    >>> parse_shapes("input_1:1x3x512x512,mask:1x128")
    {'input_1': (1, 3, 512, 512), 'mask': (1, 128)}
    >>> parse_shapes("'input:0':1x3")
    {'input:0': (1, 3)}
    """
    out: dict[str, Shape] = {}
    if not text.strip():
        return out
    for item in _split_top(text, ","):
        if not item.strip():
            continue
        name, value = _split_name(item, "shape")
        if name in out:
            raise ProfileError(f"input {name!r} appears twice in {text!r}", "each input once per shape list")
        out[name] = parse_shape(value, f"shape of {name!r}")  # repr: a name may hold a newline
    return out


def parse_dim_ranges(text: str) -> dict[str, tuple[int, int, int]]:
    """Parse ranges per symbolic dim: ``batch=1:8:32,seq=128`` (min:opt:max, or one static value).

    >>> parse_dim_ranges("batch=1:8:32,image_height=512:1024:1600")
    {'batch': (1, 8, 32), 'image_height': (512, 1024, 1600)}
    """
    out: dict[str, tuple[int, int, int]] = {}
    for item in _split_top(text, ","):
        if not item.strip():
            continue
        name, eq, value = item.strip().partition("=")
        name = name.strip().strip("'\"")
        parts = value.split(":")
        # NOTE: isdecimal and isascii, not isdigit: '²' is a digit that int() refuses, and other
        # scripts' decimal digits ('٣') are not what a shape flag means.
        if (not eq or not name or len(parts) not in (1, 3)
                or not all(p.strip().isdecimal() and p.strip().isascii() and len(p.strip()) <= 19 for p in parts)):
            raise ProfileError(
                f"dim range {item.strip()!r}",
                "name=min:opt:max (or name=value for a fixed dim) with ASCII integers below 2**63, e.g. batch=1:8:32",
            )
        if name in out:
            raise ProfileError(
                f"dim {name!r} appears twice in {text!r}",
                "each dim name once per --dims flag",
                "keep one range for it (repeat --dims to add another profile)",
            )
        vals = [int(p) for p in parts]
        t = (vals[0],) * 3 if len(vals) == 1 else (vals[0], vals[1], vals[2])
        if not t[0] <= t[1] <= t[2]:
            raise ProfileError(f"dim range {item.strip()!r} has min {t[0]}, opt {t[1]}, max {t[2]}", "min <= opt <= max")
        out[name] = t
    return out
