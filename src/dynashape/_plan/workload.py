"""Workloads: the shapes a model will really see, as weighted values of its named dynamic dims.

Three spellings are read: a shape log (one request per line in trtexec's syntax,
``input_ids:1x37,attention_mask:1x37``, with an optional ``* WEIGHT`` suffix), the same as JSONL
(``{"input_ids": [1, 37], ...}`` or ``{"shapes": {...}, "weight": 2}``), and value lists per dim
(``seq=lengths.txt``: one value a line, optionally followed by a weight). Everything becomes a
:class:`Workload`: one row of dim values per request, in stream order, with a weight each.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._errors import DynashapeError
from .._profiles import parse_shapes
from .._specs import TensorSpec, format_shape


@dataclass(frozen=True)
class Workload:
    """``rows[i]`` holds request i's value of each dim in ``dims``; ``weights[i]`` its weight."""

    dims: tuple[str, ...]
    rows: np.ndarray  # (requests, len(dims)) int64
    weights: np.ndarray  # (requests,) float64

    def __post_init__(self) -> None:
        if self.rows.ndim != 2 or self.rows.shape[1] != len(self.dims) or len(self.weights) != len(self.rows):
            raise ValueError("rows must be (requests, dims) with one weight per request")

    @property
    def requests(self) -> int:
        return len(self.rows)

    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """(distinct rows sorted lexicographically, summed weight of each).

        NOTE: rows are packed into one int64 key per request (mixed radix over each dim's range), so
        a million requests take one 1-D ``np.unique`` (~0.1 s) instead of ``unique(axis=0)`` (seconds).
        """
        if self.requests == 0:
            return self.rows, self.weights
        lo = self.rows.min(axis=0)
        span = self.rows.max(axis=0) - lo + 1
        if float(np.prod(span.astype(np.float64))) >= 2.0**62:
            uniq, inv = np.unique(self.rows, axis=0, return_inverse=True)
            return uniq, np.bincount(inv.reshape(-1), weights=self.weights, minlength=len(uniq))
        key = np.zeros(self.requests, dtype=np.int64)
        for j in range(self.rows.shape[1]):
            key = key * span[j] + (self.rows[:, j] - lo[j])
        ukey, inv = np.unique(key, return_inverse=True)
        rows = np.empty((len(ukey), self.rows.shape[1]), dtype=np.int64)
        rest = ukey.copy()
        for j in range(self.rows.shape[1] - 1, -1, -1):
            rows[:, j] = rest % span[j] + lo[j]
            rest //= span[j]
        return rows, np.bincount(inv.reshape(-1), weights=self.weights, minlength=len(ukey))

    def column(self, dim: str) -> np.ndarray:
        return self.rows[:, self.dims.index(dim)]


def merge_equal_dims(work: Workload) -> tuple[Workload, dict[str, list[str]]]:
    """Merge dims whose values are equal in every request into their first one: without the model,
    ``input_ids_dim1`` and ``attention_mask_dim1`` of a shape log are the same sequence length.
    Returns the workload on the kept dims and kept dim -> every dim it stands for."""
    keep: list[int] = []
    aliases: dict[str, list[str]] = {}
    for j, d in enumerate(work.dims):
        same = next((k for k in keep if np.array_equal(work.rows[:, k], work.rows[:, j])), None)
        if same is None:
            keep.append(j)
            aliases[d] = [d]
        else:
            aliases[work.dims[same]].append(d)
    if len(keep) == len(work.dims):
        return work, aliases
    return Workload(tuple(work.dims[k] for k in keep), work.rows[:, keep], work.weights), aliases


def _fail_empty(where: str) -> DynashapeError:
    return DynashapeError(f"{where} holds no request", "at least one request (one a line)", "check the file")


def _read_lines(path: str | os.PathLike[str], what: str) -> list[str]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DynashapeError(f"{what} '{path}' does not exist", "a text file, one request a line", "check the path")
    with open(path) as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]


def dims_of(shapes: Mapping[str, Sequence[int]], specs: Sequence[TensorSpec] | None, where: str) -> dict[str, int]:
    """Map one request's input shapes onto dim names; static dims and shared dims are checked."""
    out: dict[str, int] = {}
    if specs is None:
        # NOTE: without the model, every axis is a dim of its own, named <input>_dim<axis>; the
        # planner then merges the axes that are equal in every request (merge_equal_dims).
        for n, s in shapes.items():
            for a, d in enumerate(s):
                out[f"{n}_dim{a}"] = int(d)
        return out
    names = {s.name for s in specs}
    unknown = sorted(set(shapes) - names)
    if unknown:
        raise DynashapeError(f"{where} names input(s) {unknown}", "the model's inputs: " + ", ".join(sorted(names)),
                             "log the model's input names")
    for spec in specs:
        if spec.name not in shapes:
            continue
        shape = tuple(int(d) for d in shapes[spec.name])
        if len(shape) != spec.rank:
            raise DynashapeError(f"{where}: input '{spec.name}' has shape {format_shape(shape)}", f"rank {spec.rank} ({spec.shape_text()})")
        for a, sd in enumerate(spec.shape):
            if isinstance(sd, int):
                if shape[a] != sd:
                    raise DynashapeError(f"{where}: input '{spec.name}' dim {a} = {shape[a]}", f"{sd}, fixed by the model ({spec.shape_text()})")
                continue
            name = sd if isinstance(sd, str) else f"{spec.name}_dim{a}"
            if name in out and out[name] != shape[a]:
                raise DynashapeError(f"{where}: dim '{name}' is {out[name]} in one input and {shape[a]} in '{spec.name}'",
                                     f"one value for '{name}' in every input that has it")
            out[name] = shape[a]
    return out


def _parse_log_line(line: str) -> tuple[dict[str, tuple[int, ...]], float]:
    if line.startswith("{"):
        d = json.loads(line)
        if "shapes" in d:
            return {k: tuple(v) for k, v in d["shapes"].items()}, float(d.get("weight", 1.0))
        return {k: tuple(v) for k, v in d.items()}, 1.0
    text, star, weight = line.rpartition("*")
    if not star:
        text, weight = line, "1"
    return {k: tuple(v) for k, v in parse_shapes(text.strip()).items()}, float(weight)


def read_shape_log(path: str | os.PathLike[str], specs: Sequence[TensorSpec] | None = None) -> Workload:
    """A shape log (trtexec syntax or JSONL, one request a line) as a :class:`Workload`.

    NOTE: only distinct lines are parsed (a log of a million requests holds a few thousand), and
    the stream order is kept through an index per line.
    """
    lines = _read_lines(path, "shape log")
    if not lines:
        raise _fail_empty(f"shape log '{os.fspath(path)}'")
    index: dict[str, int] = {}
    for line in lines:
        if line not in index:
            index[line] = len(index)
    parsed: list[tuple[dict[str, int], float]] = []
    for line in index:
        where = f"shape log '{os.fspath(path)}' line '{line[:80]}'"
        try:
            shapes, w = _parse_log_line(line)
        except (ValueError, TypeError, AttributeError, DynashapeError) as e:
            raise DynashapeError(f"{where}: {e}", "NAME:DxD,...[ * WEIGHT] or a JSON object of name -> shape",
                                 "e.g. input_ids:1x37,attention_mask:1x37") from None
        parsed.append((dims_of(shapes, specs, where), w))
    dims = tuple(dict.fromkeys(d for p, _ in parsed for d in p))
    table = np.zeros((len(parsed), len(dims)), dtype=np.int64)
    wtab = np.zeros(len(parsed))
    for k, (p, w) in enumerate(parsed):
        missing = [d for d in dims if d not in p]
        if missing:
            raise DynashapeError(f"shape log '{os.fspath(path)}': a request lacks dim(s) {missing}", "every request giving every input")
        table[k] = [p[d] for d in dims]
        wtab[k] = w
    inv = np.fromiter((index[line] for line in lines), dtype=np.int64, count=len(lines))
    return Workload(dims, table[inv], wtab[inv])


def read_values(source: str) -> tuple[np.ndarray, np.ndarray]:
    """``FILE`` (one value a line, optionally ``VALUE WEIGHT``) or an integer constant -> (values, weights)."""
    if source.strip().lstrip("-").isdigit():
        return np.array([int(source)], dtype=np.int64), np.ones(1)
    if not os.path.isfile(source):
        raise DynashapeError(f"value list '{source}' does not exist", "a file with one value a line (optionally VALUE WEIGHT), or an integer",
                             "check the path")
    with open(source) as f:
        text = f.read()
    lines = [s for s in (line.split("#")[0].strip() for line in text.splitlines()) if s]
    if not lines:
        raise _fail_empty(f"value list '{source}'")
    cols = len(lines[0].replace(",", " ").split())
    try:
        arr = np.array(" ".join(lines).replace(",", " ").split(), dtype=np.float64).reshape(len(lines), cols)
    except ValueError:
        raise DynashapeError(f"value list '{source}' mixes lines with 1 and 2 columns or holds a non-number",
                             "VALUE or VALUE WEIGHT on every line") from None
    if cols not in (1, 2) or np.any(arr[:, 0] != np.round(arr[:, 0])) or np.any(arr[:, 0] < 0):
        raise DynashapeError(f"value list '{source}'", "non-negative integer values, one a line, optionally with a weight")
    return arr[:, 0].astype(np.int64), (arr[:, 1] if cols == 2 else np.ones(len(arr)))


def from_dim_values(dims: Mapping[str, str | Sequence[int] | np.ndarray], specs: Sequence[TensorSpec] | None = None) -> Workload:
    """Value lists per dim name -> :class:`Workload`. Lists of equal length pair up line by line;
    a single value (``batch=1``) applies to every request."""
    known = {d for s in specs or () for d in s.shape if isinstance(d, str)}
    cols: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, src in dims.items():
        if specs is not None and name not in known:
            raise DynashapeError(f"--dim '{name}'", "a dynamic dim of the model: " + (", ".join(sorted(known)) or "(none)"),
                                 "use the names `dynashape inspect` shows")
        if isinstance(src, str):
            cols[name] = read_values(src)
        else:
            v = np.asarray(src, dtype=np.int64).reshape(-1)
            cols[name] = (v, np.ones(len(v)))
    n = max(len(v) for v, _ in cols.values())
    for name, (v, _) in cols.items():
        if len(v) not in (1, n):
            raise DynashapeError(f"--dim {name} has {len(v)} values and another dim {n}", "lists of one length (paired line by line), or one value",
                                 "give the dims one request a line, or use a shape log")
    missing = sorted(known - set(cols))
    if missing:
        raise DynashapeError(f"no values for the model's dim(s) {missing}", "a value list or a constant for every dynamic dim",
                             " ".join(f"--dim {m}=VALUE" for m in missing))
    names = tuple(cols)
    rows = np.stack([np.broadcast_to(cols[d][0], (n,)) for d in names], axis=1).astype(np.int64)
    weights = np.ones(n)
    for _, w in cols.values():
        weights = weights * np.broadcast_to(w, (n,))
    return Workload(names, rows, weights)


def batch_stream(workload: Workload, batch_size: int, *, batch_dim: str, pad_dims: Sequence[str]) -> Workload:
    """What the engine sees behind a simple batcher: consecutive requests in groups of ``batch_size``
    (the last group may be smaller); the batch dim becomes the group size and every dim in
    ``pad_dims`` the group's largest value (a batch is padded to its longest member)."""
    if batch_size < 1:
        raise DynashapeError(f"batch size {batch_size}", "an integer >= 1")
    n = workload.requests
    if np.any(workload.weights != workload.weights[0]):
        raise DynashapeError("a weighted workload with --batch-size", "an unweighted stream (request order is what a batcher sees)",
                             "give the requests one a line, unweighted")
    groups = -(-n // batch_size)
    pad = groups * batch_size - n
    rows = workload.rows
    out = np.empty((groups, len(workload.dims)), dtype=np.int64)
    for j, d in enumerate(workload.dims):
        col = np.concatenate([rows[:, j], np.full(pad, rows[:, j].min() if n else 0)]).reshape(groups, batch_size)
        out[:, j] = col.max(axis=1) if d in pad_dims else col[:, 0]
    sizes = np.full(groups, batch_size, dtype=np.int64)
    if pad:
        sizes[-1] = batch_size - pad
    if batch_dim in workload.dims:
        # each request brings its own batch (usually 1): a group's batch is their sum
        j = workload.dims.index(batch_dim)
        col = np.concatenate([rows[:, j], np.zeros(pad, dtype=np.int64)]).reshape(groups, batch_size)
        out[:, j] = col.sum(axis=1)
        dims = workload.dims
    else:
        out = np.concatenate([sizes[:, None], out], axis=1)
        dims = (batch_dim, *workload.dims)
    return Workload(dims, out, np.ones(groups))
