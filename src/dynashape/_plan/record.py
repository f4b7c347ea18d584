"""The plan file: typed records with JSON forms, written atomically; no heavy import.

A :class:`Plan` holds the profiles to build, the CUDA-graph bucket ladder and the predictions, each
prediction with how it was derived. A build stores the plan in the engine's manifest together with
the build's :class:`Padding` verdict, so the engine knows which requests it may pad.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from .._errors import DynashapeError
from .._profiles import Profile

PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Prediction:
    """One predicted number and how it was derived (``"calibrated: ..."`` or ``"proxy: ..."``)."""

    value: float
    unit: str
    derivation: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "derivation": self.derivation}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Prediction:
        return cls(float(d["value"]), str(d["unit"]), str(d["derivation"]))


@dataclass(frozen=True)
class Ladder:
    """CUDA-graph buckets along one dim; ``shapes`` are the dim assignments captured at warm-up.

    A request whose ``dim`` is at most the largest bucket pads up to the next bucket, provided the
    padded dims form one of ``shapes`` and the build found padding safe for the model.
    """

    dim: str
    buckets: tuple[int, ...]
    shapes: tuple[tuple[tuple[str, int], ...], ...]

    def next_bucket(self, value: int) -> int | None:
        for b in self.buckets:
            if b >= value:
                return b
        return None

    def to_json(self) -> dict[str, Any]:
        return {"dim": self.dim, "buckets": list(self.buckets), "shapes": [dict(s) for s in self.shapes]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Ladder:
        return cls(str(d["dim"]), tuple(int(b) for b in d["buckets"]),
                   tuple(tuple((str(k), int(v)) for k, v in s.items()) for s in d["shapes"]))


@dataclass(frozen=True)
class Padding:
    """The build's verdict on padding along the ladder's dim.

    ``crop``: per output, ``(axis, a, b)``: that axis has size ``a * dim + b`` and is cropped back.
    ``pad_values``: the value each input pads with (masks 0, ids the pad id 0, floats 0).
    """

    safe: bool
    reason: str
    pad_values: dict[str, float] = field(default_factory=dict)
    crop: dict[str, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"safe": self.safe, "reason": self.reason, "pad_values": dict(self.pad_values),
                "crop": {k: [list(c) for c in v] for k, v in self.crop.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Padding:
        return cls(bool(d["safe"]), str(d["reason"]), {str(k): float(v) for k, v in d.get("pad_values", {}).items()},
                   {str(k): tuple((int(a), int(x), int(y)) for a, x, y in v) for k, v in d.get("crop", {}).items()})


@dataclass(frozen=True)
class Plan:
    """What ``dynashape plan`` writes and ``dynashape build --plan`` reads.

    ``profiles``: dynamic profiles first, then static ones for the hottest shapes (``static_profiles``
    says how many). ``predictions``: name -> :class:`Prediction`. ``details``: the workload summary,
    the cost model, and what one more profile or bucket would gain.
    """

    profiles: tuple[Profile, ...]
    static_profiles: int = 0
    ladder: Ladder | None = None
    predictions: dict[str, Prediction] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    padding: Padding | None = None  # set by the build
    format_version: int = PLAN_FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "profiles": [p.to_json() for p in self.profiles],
            "static_profiles": self.static_profiles,
            "ladder": None if self.ladder is None else self.ladder.to_json(),
            "predictions": {k: v.to_json() for k, v in self.predictions.items()},
            "details": self.details,
            "padding": None if self.padding is None else self.padding.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], *, where: str = "the plan") -> Plan:
        version = d.get("format_version")
        if not isinstance(version, int) or version > PLAN_FORMAT_VERSION:
            raise DynashapeError(f"{where} has plan format version {version!r}",
                                 f"format version {PLAN_FORMAT_VERSION} or older", "re-run `dynashape plan` with this dynashape")
        try:
            return cls(
                profiles=tuple(Profile.from_json(p) for p in d["profiles"]),
                static_profiles=int(d.get("static_profiles", 0)),
                ladder=None if d.get("ladder") is None else Ladder.from_json(d["ladder"]),
                predictions={k: Prediction.from_json(v) for k, v in d.get("predictions", {}).items()},
                details=dict(d.get("details", {})),
                padding=None if d.get("padding") is None else Padding.from_json(d["padding"]),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DynashapeError(f"{where} is incomplete ({type(e).__name__}: {e})", "a file written by `dynashape plan`",
                                 "re-run `dynashape plan`") from e

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the plan as JSON, atomically (a temporary name in the same folder, then a rename)."""
        from .._io import write_atomic

        write_atomic(path, json.dumps(self.to_json(), indent=1), what="plan file")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise DynashapeError(f"plan file '{path}' does not exist", "a file written by `dynashape plan -o`", "check the path")
        try:
            with open(path) as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DynashapeError(f"'{path}' is not a JSON plan ({e})", "a file written by `dynashape plan -o`") from e
        return cls.from_json(data, where=f"'{path}'")
