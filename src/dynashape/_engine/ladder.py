"""The bucket ladder at run time: which requests pad to a planned bucket, and the pad and crop.

A request pads only when (1) the engine was built from a plan with a ladder, (2) the build found
padding safe for the model (:class:`~dynashape._plan.record.Padding`), (3) its ladder dim is at
most the largest bucket and (4) the padded dims form one of the plan's graph shapes. Everything
else runs at its exact shape (off the ladder): never a capture in the request path.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .._plan.padding import crop_array, pad_array
from .._plan.record import Ladder, Padding
from .._records import Manifest


class LadderRuntime:
    def __init__(self, ladder: Ladder, padding: Padding | None, manifest: Manifest) -> None:
        self.ladder = ladder
        self.padding = padding
        self.safe = padding is not None and padding.safe
        specs = manifest.inputs
        self.names = [s.name for s in specs]
        self.out_names = [s.name for s in manifest.outputs]
        # where each named dim is read: its first (input index, axis)
        self._where: dict[str, tuple[int, int]] = {}
        for i, s in enumerate(specs):
            for a, d in enumerate(s.shape):
                if isinstance(d, str) and d not in self._where:
                    self._where[d] = (i, a)
        self._keys = tuple(n for n, _ in ladder.shapes[0]) if ladder.shapes else (ladder.dim,)
        self.shapes = {tuple(dict(s)[k] for k in self._keys) for s in ladder.shapes}
        self.axes = [[a for a, d in enumerate(s.shape) if d == ladder.dim] for s in specs]
        pads = padding.pad_values if padding is not None else {}
        self.pad_values = [float(pads.get(s.name, 0.0)) for s in specs]
        self.crops = [tuple(padding.crop.get(n, ())) if padding is not None else () for n in self.out_names]
        self._lock = threading.Lock()
        self.counts = {"on_ladder": 0, "padded": 0, "off_ladder": 0}

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> LadderRuntime | None:
        plan = manifest.plan
        if plan is None or plan.ladder is None or not plan.ladder.buckets:
            return None
        return cls(plan.ladder, plan.padding, manifest)

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def target(self, ordered: Sequence[tuple[int, ...]]) -> tuple[int, int] | None:
        """(real value, bucket) for a request on the ladder, else None (counted as off the ladder)."""
        dims = {}
        for k in self._keys:
            where = self._where.get(k)
            if where is None:
                self._count("off_ladder")
                return None
            dims[k] = ordered[where[0]][where[1]]
        v = dims[self.ladder.dim]
        b = self.ladder.next_bucket(v)
        if b is None or (b != v and not self.safe):
            self._count("off_ladder")
            return None
        dims[self.ladder.dim] = b
        if tuple(dims[k] for k in self._keys) not in self.shapes:
            self._count("off_ladder")
            return None
        self._count("on_ladder" if b == v else "padded")
        return v, b

    def pad(self, arrays: Sequence[Any], bucket: int) -> list[Any]:
        return [pad_array(x, ax, bucket, pv) for x, ax, pv in zip(arrays, self.axes, self.pad_values, strict=True)]

    def crop(self, outs: Sequence[Any], value: int) -> list[Any]:
        return [crop_array(o, c, value) for o, c in zip(outs, self.crops, strict=True)]

    def graph_shapes(self) -> list[dict[str, int]]:
        """The plan's graph shapes as dim assignments, largest first (as planned)."""
        return [dict(s) for s in self.ladder.shapes]

    def stats(self) -> dict[str, Any]:
        return {"dim": self.ladder.dim, "buckets": list(self.ladder.buckets), "graph_shapes": len(self.ladder.shapes),
                "padding": "safe" if self.safe else "refused", "padding_reason": None if self.padding is None else self.padding.reason,
                **self.counts}
