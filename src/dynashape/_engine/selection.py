"""Choosing a profile for a set of input shapes, and saying why none fits.

NOTE (the rule): among the profiles that contain every input shape, pick the one whose opt shape is
closest, measured as the sum over free dims of |log((value + 1) / (opt + 1))|; ties go to the
profile with the narrower ranges, then to the lower index. Why: an engine is tuned for opt, and a
kernel's efficiency follows the *ratio* to the size it was tuned for (batch 2 vs opt 1 is as far
as 2048 vs 1024), so a log distance treats batch, sequence and image dims alike. The narrower
profile wins ties because its kernels were chosen for fewer shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._errors import ShapeError
from .._profiles import Profile
from .._records import DimClass, ProfilePart
from .._specs import TensorSpec, format_shape


class ProfileTable:
    """Profiles flattened for the hot path: per profile, per checked dim, (lo, opt, hi)."""

    def __init__(self, inputs: Sequence[TensorSpec], profiles: Sequence[Profile]) -> None:
        self.inputs = list(inputs)
        self.profiles = list(profiles)
        # Every (input index, axis) that is free in any profile is checked against each profile.
        self.dims: list[tuple[int, int]] = sorted({
            (i, a) for i, s in enumerate(inputs) for p in profiles for a in range(s.rank)
            if p[s.name].min[a] != p[s.name].max[a] or not isinstance(s.shape[a], int)
        })
        self.bounds: list[list[tuple[int, int, int]]] = [
            [p[inputs[i].name].dim(a) for i, a in self.dims] for p in profiles
        ]
        self.widths = [sum(math.log((hi + 1) / (lo + 1)) for lo, _, hi in b) for b in self.bounds]

    def select(self, shapes: Sequence[tuple[int, ...]]) -> int | None:
        best, best_key = None, None
        values = [shapes[i][a] for i, a in self.dims]
        for k, bounds in enumerate(self.bounds):
            cost = 0.0
            for v, (lo, opt, hi) in zip(values, bounds, strict=True):
                if v < lo or v > hi:
                    break
                cost += abs(math.log((v + 1) / (opt + 1)))
            else:
                key = (cost, self.widths[k], k)
                if best_key is None or key < best_key:
                    best, best_key = k, key
        return best

    def contains(self, k: int, shapes: Sequence[tuple[int, ...]]) -> bool:
        return all(lo <= shapes[i][a] <= hi for (i, a), (lo, _, hi) in zip(self.dims, self.bounds[k], strict=True))

    # -- messages ------------------------------------------------------------------------------

    def _label(self, i: int, a: int) -> str:
        return f"input '{self.inputs[i].name}' {self.inputs[i].dim_label(a)}"

    def outside_all(self, shapes: Sequence[tuple[int, ...]]) -> ShapeError:
        text = ", ".join(f"{s.name}:{format_shape(sh)}" for s, sh in zip(self.inputs, shapes, strict=True))
        for j, (i, a) in enumerate(self.dims):
            v = shapes[i][a]
            if any(b[j][0] <= v <= b[j][2] for b in self.bounds):
                continue
            allowed = ", ".join(f"profile {k} allows {b[j][0]}..{b[j][2]}" for k, b in enumerate(self.bounds))
            name = self.inputs[i].name
            if all(v > b[j][2] for b in self.bounds):
                k = max(range(len(self.bounds)), key=lambda k: self.bounds[k][j][2])
                new = list(self.profiles[k][name].max)
                flag = "--maxShapes"
            else:
                k = min(range(len(self.bounds)), key=lambda k: self.bounds[k][j][0])
                new = list(self.profiles[k][name].min)
                flag = "--minShapes"
            new[a] = v
            for (i2, a2), (lo, _, hi) in zip(self.dims, self.bounds[k], strict=True):
                if i2 == i and not lo <= shapes[i][a2] <= hi:
                    new[a2] = shapes[i][a2]
            return ShapeError(
                f"{self._label(i, a)} = {v} is outside every profile (shapes {text})",
                allowed,
                f"rebuild with {flag}={name}:{format_shape(new)} in profile {k} (or add a profile), or resize the input",
            )
        reasons = []
        for k, b in enumerate(self.bounds):
            for (i, a), (lo, _, hi) in zip(self.dims, b, strict=True):
                if not lo <= shapes[i][a] <= hi:
                    reasons.append(f"profile {k} rejects {self._label(i, a)} = {shapes[i][a]} (allows {lo}..{hi})")
                    break
        return ShapeError(
            f"shapes {text} fit no single profile",
            "; ".join(reasons),
            "add a profile that covers these shapes together (repeat --minShapes/--optShapes/--maxShapes)",
        )

    def outside_one(self, k: int, shapes: Sequence[tuple[int, ...]]) -> ShapeError:
        for (i, a), (lo, _, hi) in zip(self.dims, self.bounds[k], strict=True):
            v = shapes[i][a]
            if not lo <= v <= hi:
                other = self.select(shapes)
                fix = f"use profile {other}, which contains these shapes, or let the engine choose (profile=None)" if other is not None else "rebuild with a profile that covers these shapes"
                return ShapeError(f"{self._label(i, a)} = {v} is outside profile {k}, which allows {lo}..{hi}", None, fix)
        raise AssertionError("outside_one called for shapes inside the profile")


class PartTable:
    """The parts of guard-split profiles (see :class:`dynashape._records.ProfilePart`), for the runner.

    NOTE (why here and not in the engine's checks): the user sees one profile; which package of it
    runs is the backend's business, like TensorRT picking a tactic. The engine has already checked
    that the shapes lie inside the profile, so the only refusal left is a shape in a gap (a value the
    model's own code cannot trace, e.g. where a guard ``H % 2 == 0`` fails), and that one names the
    guard and the model line.
    """

    def __init__(self, inputs: Sequence[TensorSpec], parts: Sequence[ProfilePart]) -> None:
        index = {s.name: i for i, s in enumerate(inputs)}
        self.inputs = list(inputs)
        #: profile -> its packaged parts, in payload order: [(checks, part)], checks = (input index, axis, class)
        self.packaged: dict[int, list[tuple[list[tuple[int, int, DimClass]], ProfilePart]]] = {}
        self.gaps: dict[int, list[tuple[list[tuple[int, int, DimClass]], ProfilePart]]] = {}
        for p in parts:
            checks = [(index[c.places[0][0]], c.places[0][1], c) for c in p.dims]
            (self.packaged if p.payload is not None else self.gaps).setdefault(p.profile, []).append((checks, p))

    def count(self, profile: int) -> int:
        """How many packages profile ``profile`` has (1 for a profile that is not split)."""
        return len(self.packaged.get(profile, ())) or 1

    def select(self, profile: int, shapes: Sequence[tuple[int, ...]]) -> int:
        """The position of the part that serves ``shapes`` among the profile's packages."""
        parts = self.packaged.get(profile)
        if not parts:
            return 0
        for j, (checks, _) in enumerate(parts):
            if all(c.contains(shapes[i][a]) for i, a, c in checks):
                return j
        raise self._refusal(profile, shapes)

    def _refusal(self, profile: int, shapes: Sequence[tuple[int, ...]]) -> ShapeError:
        text = ", ".join(f"{s.name}:{format_shape(sh)}" for s, sh in zip(self.inputs, shapes, strict=True))
        served = "; ".join(p.describe() for _, p in self.packaged[profile])
        for checks, gap in self.gaps.get(profile, ()):
            if all(c.contains(shapes[i][a]) for i, a, c in checks):
                i, a, _ = checks[0]
                where = f" (made by {'; '.join(gap.sources)})" if gap.sources else ""
                return ShapeError(
                    f"input '{self.inputs[i].name}' {self.inputs[i].dim_label(a)} = {shapes[i][a]} is inside profile "
                    f"{profile}, but the model's code cannot run there (shapes {text}): it fails the guard "
                    f"`{' and '.join(gap.guards)}`{where}",
                    f"the values profile {profile} serves: {served}",
                    "resize the input to a served value, or change the model code named above",
                )
        return ShapeError(f"shapes {text} are inside profile {profile} but in none of its parts",
                          f"the values profile {profile} serves: {served}", "resize the input to a served value")
