"""Shape-aware dynamic batching: which requests may share one engine call, and how to split the answer.

NOTE (the rule): two requests share a batch only when every input's dims other than the batch dim
are equal after bucketing (the bucket is the exact shape unless a padding ladder is given, and a
ladder is given only for a model whose padding is known to be safe), and only when dim 0 is one
dynamic batch dim shared by every input and every output. The engine then picks the profile for the
concatenated shape, so grouping by the non-batch shape groups by profile too; the batch size is
capped by the largest batch any profile allows at that non-batch shape.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import DynashapeError, ShapeError
from .._specs import format_shape

Shape = tuple[int, ...]
# A group key: per input, the dims after the batch dim (after bucketing), in the engine's input order.
Key = tuple[Shape, ...]


@dataclass(frozen=True)
class Prepared:
    """One request made ready for batching: inputs in engine order, padded to its bucket."""

    arrays: tuple[np.ndarray, ...]
    rows: int  # its size on the batch dim (1 when the engine cannot batch)
    key: Key | None  # None: runs alone
    crop: dict[str, Shape] | None  # output name -> shape to crop to, when the inputs were padded


class BatchPolicy:
    """Facts about one engine that decide grouping, padding and splitting.

    ``ladder`` maps a dim name (a symbol of the engine's inputs, e.g. ``"seq"``) to the sizes a
    request may be padded up to. NOTE: it must only be given for a model that is padding-safe
    along that dim (outputs at the real positions equal with and without padding; zeros are the
    pad value unless ``pad_values`` names another per input, so a masked encoder whose mask input is padded with 0 is safe, a conv net with global
    pooling is not). dynashape's planner decides that; without its verdict no ladder is used and
    requests share a batch only at identical shapes.
    """

    def __init__(self, engine: Any, *, ladder: Mapping[str, Sequence[int]] | None = None,
                 pad_values: Mapping[str, float] | None = None) -> None:
        self.engine = engine
        self.inputs = list(engine.inputs)
        self.outputs = list(engine.outputs)
        self.names = [s.name for s in self.inputs]
        self.dtypes = [s.dtype for s in self.inputs]
        self.profiles = list(engine.profiles)
        sym = self.inputs[0].shape[0] if self.inputs and self.inputs[0].rank else None
        # NOTE: concatenating on dim 0 is correct only when dim 0 means "independent samples" for
        # every tensor: one named dynamic dim that is dim 0 of every input and every output.
        self.batch_dim: str | None = sym if (
            isinstance(sym, str)
            and all(s.rank and s.shape[0] == sym for s in self.inputs)
            and all(s.rank and s.shape[0] == sym for s in self.outputs)
            and all(sym not in s.shape[1:] for s in [*self.inputs, *self.outputs])
        ) else None
        self.pad_values = dict(pad_values or {})
        self.ladder = {k: sorted({int(v) for v in vs}) for k, vs in (ladder or {}).items() if vs}
        unknown = [k for k in self.ladder if not any(k in s.shape[1:] for s in self.inputs)]
        if unknown:
            dims = sorted({d for s in self.inputs for d in s.shape if isinstance(d, str)})
            raise DynashapeError(f"padding ladder for dim(s) {unknown}", f"dims of the engine's inputs: {dims}",
                                 "name a dynamic dim of the inputs other than the batch dim")

    # -- per request -------------------------------------------------------------------------------

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Prepared:
        """Check one request (names, dtypes, shapes: ShapeError as engine.run would raise) and bucket it."""
        for name, x in inputs.items():
            if not isinstance(x, np.ndarray):
                raise DynashapeError(f"input '{name}' is a {type(x).__name__}", "a numpy array")
        shapes = {n: tuple(int(d) for d in x.shape) for n, x in inputs.items()}
        self.engine.select_profile(shapes)  # names, ranks, static and shared dims, profile ranges
        arrays = []
        for name, dtype in zip(self.names, self.dtypes, strict=True):
            x = inputs[name]
            if x.dtype.name != dtype:
                raise DynashapeError(f"input '{name}' has dtype {x.dtype.name}", f"{dtype}, the model's dtype for this input")
            arrays.append(x)
        if self.batch_dim is None:
            return Prepared(tuple(arrays), 1, None, None)
        crop = None
        if self.ladder:
            arrays, crop = self._pad(arrays)
        key = tuple(tuple(int(d) for d in x.shape[1:]) for x in arrays)
        return Prepared(tuple(arrays), int(arrays[0].shape[0]), key, crop)

    def _pad(self, arrays: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, Shape] | None]:
        values: dict[str, int] = {}
        for spec, x in zip(self.inputs, arrays, strict=True):
            for a, d in enumerate(spec.shape):
                if isinstance(d, str) and d in self.ladder:
                    values[d] = int(x.shape[a])
        target = {}
        for d, v in values.items():
            steps = self.ladder[d]
            i = bisect.bisect_left(steps, v)
            target[d] = steps[i] if i < len(steps) else v  # above the ladder: its own shape
        if all(target[d] == v for d, v in values.items()):
            return arrays, None
        padded = []
        for spec, x in zip(self.inputs, arrays, strict=True):
            widths = [(0, target[d] - x.shape[a]) if isinstance(d, str) and d in target else (0, 0)
                      for a, d in enumerate(spec.shape)]
            fill = self.pad_values.get(spec.name, 0)
            padded.append(np.pad(x, widths, constant_values=np.array(fill, x.dtype)) if any(w for _, w in widths) else x)
        shapes = {n: tuple(int(d) for d in x.shape) for n, x in zip(self.names, padded, strict=True)}
        try:
            self.engine.select_profile(shapes)
        except ShapeError:
            return arrays, None  # the padded shape leaves every profile: run it at its own shape
        # Output dims named like a padded input dim are cropped back to the request's value.
        crop = {}
        for spec in self.outputs:
            if any(isinstance(d, str) and d in target for d in spec.shape):
                crop[spec.name] = tuple(values[d] if isinstance(d, str) and d in values else -1 for d in spec.shape)
        return padded, crop

    def cap(self, key: Key) -> int:
        """The largest batch that some profile allows at this non-batch shape."""
        best = 0
        for p in self.profiles:
            ranges = [p[n] for n in self.names]
            if all(r.min[a + 1] <= v <= r.max[a + 1] for r, shape in zip(ranges, key, strict=True)
                   for a, v in enumerate(shape)):
                best = max(best, min(r.max[0] for r in ranges))
        return best

    # -- per batch ---------------------------------------------------------------------------------

    def run(self, batch: Sequence[Prepared]) -> list[dict[str, np.ndarray]]:
        """Run requests that share a key as one engine call (or one request alone); split and crop."""
        if len(batch) == 1:
            return [self._finish(self.engine.run(dict(zip(self.names, batch[0].arrays, strict=True))), batch[0])]
        cat = {n: np.concatenate([r.arrays[i] for r in batch]) for i, n in enumerate(self.names)}
        outs = self.engine.run(cat)
        bounds = np.cumsum([r.rows for r in batch])[:-1]
        pieces = {n: np.split(np.asarray(o), bounds) for n, o in outs.items()}
        return [self._finish({n: p[j] for n, p in pieces.items()}, r) for j, r in enumerate(batch)]

    @staticmethod
    def _finish(outs: dict[str, Any], r: Prepared) -> dict[str, np.ndarray]:
        outs = {n: np.asarray(o) for n, o in outs.items()}
        if r.crop:
            for n, shape in r.crop.items():
                outs[n] = np.ascontiguousarray(outs[n][tuple(slice(None) if d < 0 else slice(0, d) for d in shape)])
        return outs


def run_grouped(policy: BatchPolicy, requests: Sequence[Mapping[str, np.ndarray]], *, max_batch: int | None = None
                ) -> list[dict[str, np.ndarray] | DynashapeError]:
    """Run a list of requests synchronously, batching those that may share a call (Triton's Python backend).

    Returns one dict of outputs per request, in order, or the user error that request caused.
    """
    results: list[dict[str, np.ndarray] | DynashapeError] = [DynashapeError("not run")] * len(requests)
    groups: dict[Any, list[tuple[int, Prepared]]] = {}
    for i, req in enumerate(requests):
        try:
            p = policy.prepare(req)
        except DynashapeError as e:
            results[i] = e
            continue
        groups.setdefault(p.key if p.key is not None else ("alone", i), []).append((i, p))
    for key, members in groups.items():
        cap = max(1, min(policy.cap(key), max_batch or 1 << 30)) if key[0] != "alone" else 1
        chunk: list[tuple[int, Prepared]] = []
        for item in [*members, None]:
            if item is not None and (not chunk or sum(p.rows for _, p in chunk) + item[1].rows <= cap):
                chunk.append(item)
                continue
            for (i, _), out in zip(chunk, run_isolated(policy, [p for _, p in chunk]), strict=True):
                results[i] = out
            chunk = [item] if item is not None else []
    return results


def run_isolated(policy: BatchPolicy, batch: Sequence[Prepared]) -> list[dict[str, np.ndarray] | DynashapeError]:
    """:meth:`BatchPolicy.run`, but a failing batch is retried one request at a time.

    NOTE: every request passed the engine's checks alone, so a batch should not fail; if it does
    (a model that breaks at the concatenated shape), retrying alone keeps one request's fault
    from failing its batch-mates.
    """
    try:
        return list(policy.run(batch))
    except DynashapeError as e:
        if len(batch) == 1:
            return [e]
    out: list[dict[str, np.ndarray] | DynashapeError] = []
    for r in batch:
        try:
            out.append(policy.run([r])[0])
        except DynashapeError as e:
            out.append(e)
    return out


def describe(key: Key) -> str:
    return ", ".join(format_shape(s) for s in key)
