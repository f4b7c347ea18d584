"""Input data for export verification, build validation, compare, bench and check: the one generator.

Polygraphy's data loader, in short: every step that feeds a model goes through :func:`make_inputs`
(generated data) or :func:`load_data` (the user's data), so all of them feed the same values.

Generated data is *representative*, not merely random: a model only answers the question "does the
engine match the source" on inputs for which the source's answer is defined.

- integer inputs that index an embedding get ids in ``[0, vocab)``, the vocabulary read from the
  table they index (:func:`hints_from_onnx`, :func:`watch_embeddings`);
- mask-like inputs (by name, ``*mask*``; in an ONNX graph also by use: feeding ``Where``, ``Mul``,
  ``Sub``...) get all-ones rows and right-padded rows, never a fully masked row: the outputs of a
  fully masked row are undefined (eager PyTorch and an engine fill them differently);
- ``token_type_ids`` get 0/1 segments, position ids ``arange``;
- floats are standard normal, or uniform in [0, 1) for images (by name, or rank 4 with 1 or 3 channels);
- integers with no known role get the mask pattern (ones, right-padded with zeros): 0 and 1 are a
  valid token id, a valid index and an open/closed mask, and the pattern never masks a whole row.

Everything is deterministic for a given seed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import DynashapeError
from ._specs import TensorSpec, format_shape

Feed = dict[str, np.ndarray]

# Roles an input can have.
IDS, MASK, SEGMENTS, POSITIONS, IMAGE, FLOAT, INT = "ids", "mask", "segments", "positions", "image", "float", "int"
ROLES = (IDS, MASK, SEGMENTS, POSITIONS, IMAGE, FLOAT, INT)

_IMAGE_WORDS = ("pixel", "image", "img", "rgb", "photo", "frame")


@dataclass(frozen=True)
class InputHint:
    """What the graph says about one input: its role, and for an index the size of the table it indexes."""

    role: str
    vocab: int | None = None
    why: str = ""


Hints = Mapping[str, InputHint]


def role_of(spec: TensorSpec, hint: InputHint | None = None) -> str:
    """The role an input is fed as: the graph's hint first, then its name, dtype and rank."""
    name = spec.name.lower()
    integer = spec.dtype.startswith(("int", "uint"))
    if "token_type" in name or "segment" in name:
        return SEGMENTS if integer else FLOAT
    if "position" in name and integer:
        return POSITIONS
    if "mask" in name or spec.dtype == "bool":
        return MASK
    if hint is not None and hint.role in (IDS, MASK):
        return hint.role
    if integer:
        return INT
    if any(w in name for w in _IMAGE_WORDS):
        return IMAGE
    if spec.rank == 4 and spec.shape[1] in (1, 3):
        return IMAGE
    return FLOAT


def _mask_pattern(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Ones, with rows right-padded by zeros: row 0 full, every row keeps at least half (and >= 1)."""
    out = np.ones(shape, dtype=np.int64)
    if len(shape) < 2 or out.size == 0:
        return out
    seq = shape[-1]
    rows = out.reshape(-1, seq)
    for r in range(1, rows.shape[0]):
        rows[r, int(rng.integers(max(1, (seq + 1) // 2), seq + 1)):] = 0
    return out


def make_inputs(
    specs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]], *, seed: int = 0, hints: Hints | None = None
) -> Feed:
    """Representative inputs at ``shapes`` (one array per spec, in the spec's dtype).

    ``hints`` (from :func:`hints_from_onnx` or :func:`watch_embeddings`) give the roles and table
    sizes the graph shows; without them, roles come from names, and index inputs get 0/1 only.
    """
    rng = np.random.default_rng(seed)
    out: Feed = {}
    for spec in specs:
        shape = tuple(int(d) for d in shapes[spec.name])
        hint = (hints or {}).get(spec.name)
        role = role_of(spec, hint)
        vocab = hint.vocab if hint is not None else None
        if role == IDS and vocab:
            x: np.ndarray = rng.integers(0, vocab, shape)
        elif role == SEGMENTS:
            x = np.zeros(shape, dtype=np.int64)
            if shape and shape[-1] > 1 and (vocab is None or vocab > 1):
                x[..., shape[-1] // 2:] = 1
        elif role == POSITIONS:
            x = np.broadcast_to(np.arange(shape[-1]) if shape else np.zeros(()), shape).copy()
            if vocab:
                x = x % vocab
        elif role in (MASK, INT, IDS):
            # NOTE: an index whose table is unknown gets the mask pattern too: 0 and 1 are valid
            # wherever 0..n-1 is, and the same input may be a mask the graph does not show.
            x = _mask_pattern(rng, shape)
        elif role == IMAGE:
            x = rng.random(shape, dtype=np.float32)
        else:
            x = rng.standard_normal(shape, dtype=np.float32)
        # NOTE: numpy has no bfloat16: such inputs travel as float32 and the backends cast.
        dtype = "float32" if spec.dtype == "bfloat16" else spec.dtype
        out[spec.name] = x.astype(dtype) if dtype != "bool" else x.astype(bool)
    return out


# -- what the graph shows ---------------------------------------------------------------------------

# Ops an index or a mask goes through unchanged in meaning on its way to its use.
_PASS_THROUGH = {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Expand", "Slice", "Transpose"}
# Uses that mark a mask: multiplied in, subtracted from one, selected on, compared, negated.
_MASK_USES = {"Where", "Mul", "Sub", "Not", "And", "Or", "Equal"}


def hints_from_onnx(model: Any) -> dict[str, InputHint]:
    """Roles of an ONNX model's inputs, by use: an input (through casts and reshapes) that is the
    index of a ``Gather`` whose data is an initializer indexes a table of ``dims[0]`` rows; one that
    feeds ``Where``/``Mul``/``Sub``/``Not``/... is mask-like."""
    graph = model.graph
    tables = {t.name: int(t.dims[0]) for t in graph.initializer if len(t.dims) >= 1}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].t.dims:
            tables[n.output[0]] = int(n.attribute[0].t.dims[0])
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def table_rows(name: str) -> int | None:
        for _ in range(4):  # a weight behind a Cast or an Identity
            if name in tables:
                return tables[name]
            p = producers.get(name)
            if p is None or p.op_type not in ("Cast", "Identity") or not p.input:
                return None
            name = p.input[0]
        return None

    out: dict[str, InputHint] = {}
    init_names = {t.name for t in graph.initializer}
    for vi in graph.input:
        if vi.name in init_names:
            continue
        frontier, seen, depth = [vi.name], {vi.name}, 0
        vocab, mask_use = None, None
        while frontier and depth < 8 and vocab is None:
            nxt = []
            for v in frontier:
                for n in consumers.get(v, []):
                    if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] == v:
                        rows = table_rows(n.input[0])
                        if rows is not None:
                            vocab = rows if vocab is None else min(vocab, rows)
                            why = f"indexes '{n.input[0]}' ({rows} rows) in node '{n.name or n.op_type}'"
                    elif n.op_type in _MASK_USES and mask_use is None:
                        mask_use = f"feeds {n.op_type} node '{n.name or n.op_type}'"
                    elif n.op_type in _PASS_THROUGH and n.input and n.input[0] == v:
                        for o in n.output:
                            if o not in seen:
                                seen.add(o)
                                nxt.append(o)
            frontier, depth = nxt, depth + 1
        if vocab is not None:
            out[vi.name] = InputHint(IDS, vocab, why)
        elif mask_use is not None:
            out[vi.name] = InputHint(MASK, None, mask_use)
    return out


class EmbeddingWatch:
    """Records which ``nn.Embedding`` each input reaches while a module runs (see :func:`watch_embeddings`)."""

    def __init__(self) -> None:
        self.hints: dict[str, InputHint] = {}


@contextmanager
def watch_embeddings(module: Any, inputs: Mapping[str, Any]) -> Iterator[EmbeddingWatch]:
    """While the block runs ``module``, note every ``nn.Embedding`` that receives one of ``inputs``
    (the same tensor, a view of it, or a copy with equal values): that input's ids are in
    ``[0, num_embeddings)``. Costs no extra forward pass: wrap the run the caller makes anyway."""
    import torch

    watch = EmbeddingWatch()
    ints = {n: t for n, t in inputs.items() if isinstance(t, torch.Tensor) and not t.is_floating_point() and t.dtype != torch.bool}
    handles = []

    def hook(mod: Any, args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            return
        x = args[0]
        for n, t in ints.items():
            same = x.untyped_storage().data_ptr() == t.untyped_storage().data_ptr() and x.numel() == t.numel()
            if not same and x.numel() == t.numel() and t.numel() > 1 and bool((t.flatten() != t.flatten()[0]).any()):
                same = bool(torch.equal(x.detach().flatten().to(t.device).long(), t.flatten().long()))
            if same:
                rows = int(mod.num_embeddings)
                old = watch.hints.get(n)
                if old is None or (old.vocab or rows) >= rows:
                    watch.hints[n] = InputHint(IDS, rows, f"indexes an nn.Embedding of {rows} rows")

    if ints:
        for m in module.modules():
            if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
                handles.append(m.register_forward_pre_hook(hook))
    try:
        yield watch
    finally:
        for h in handles:
            h.remove()


# -- the user's data -------------------------------------------------------------------------------

DataArg = str | os.PathLike[str] | Mapping[str, Any] | Iterable[Mapping[str, Any]] | Callable[[], Any]


def _to_numpy(name: str, x: Any, where: str) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    try:
        return np.asarray(x)
    except Exception as e:
        raise DynashapeError(f"{where}: input '{name}' is a {type(x).__name__}", "a numpy array or a torch tensor") from e


def _load_py(spec: str) -> Any:
    path, _, func = spec.rpartition(":")
    if not os.path.isfile(path):
        raise DynashapeError(f"data file '{path}' does not exist", "FILE.npz or FILE.py:FUNCTION", "check the path")
    mod_name = f"_dynashape_data_{abs(hash(os.path.abspath(path)))}"
    s = importlib.util.spec_from_file_location(mod_name, path)
    if s is None or s.loader is None:
        raise DynashapeError(f"data file '{path}' cannot be imported", "a Python file")
    module = importlib.util.module_from_spec(s)
    sys.modules[mod_name] = module
    try:
        s.loader.exec_module(module)
    except SyntaxError as e:
        raise DynashapeError(f"data file '{path}' has a syntax error at line {e.lineno}: {e.msg}", "a valid Python file", "fix the file") from e
    fn = getattr(module, func, None)
    if not callable(fn):
        names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise DynashapeError(f"data file '{path}' has no function '{func}'", "one of: " + (", ".join(names) or "(none)"),
                             "name a function that returns or yields feeds (dicts input name -> array)")
    return fn()


def _load_npz(path: str, specs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:
        raise DynashapeError(f"'{path}' is not a readable .npz file ({type(e).__name__}: {e})",
                             "an .npz file (np.savez(path, input_name=array))") from e
    ranks = {s.name: s.rank for s in specs}
    indexed = arrays and all(k in ranks and a.ndim == ranks[k] + 1 for k, a in arrays.items())
    if not indexed:
        return [arrays]
    counts = {k: a.shape[0] for k, a in arrays.items()}
    if len(set(counts.values())) != 1:
        raise DynashapeError(f"'{path}' holds arrays with a leading index of different lengths {counts}",
                             "one leading index shared by every input (N feeds: array i of each input)")
    return [{k: a[i] for k, a in arrays.items()} for i in range(next(iter(counts.values())))]


def load_data(data: DataArg, specs: Sequence[TensorSpec]) -> list[Feed]:
    """The user's feeds, checked against ``specs`` (names, dtypes, ranks, static dims).

    ``data``: an ``.npz`` path (arrays named after the inputs: one feed; or arrays with one more
    leading axis: one feed per index), ``"file.py:function"`` (the function returns or yields feeds),
    a feed (dict name -> array or tensor), an iterable of feeds, or a callable returning one of these.
    """
    where = "data"
    raw: Any = data
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        where = f"data '{text}'"
        head, colon, func = text.rpartition(":")
        if colon and head.endswith(".py") and func.isidentifier():
            raw = _load_py(text)
        elif text.endswith(".npz"):
            if not os.path.isfile(text):
                raise DynashapeError(f"data file '{text}' does not exist", "an existing .npz file", "check the path")
            raw = _load_npz(text, specs)
        else:
            raise DynashapeError(f"data '{text}'", "FILE.npz, or FILE.py:FUNCTION returning or yielding feeds (dicts input name -> array)")
    elif callable(data) and not isinstance(data, Mapping):
        raw = data()
    if isinstance(raw, Mapping):
        raw = [raw]
    try:
        items = list(raw)
    except TypeError as e:
        raise DynashapeError(f"{where} gave a {type(raw).__name__}", "a feed (dict input name -> array) or an iterable of feeds") from e
    if not items:
        raise DynashapeError(f"{where} holds no feed", "at least one feed (dict input name -> array)")
    return [check_feed(f, specs, f"{where}, feed {i}") for i, f in enumerate(items)]


def check_feed(feed: Any, specs: Sequence[TensorSpec], where: str = "data") -> Feed:
    """One feed as numpy arrays, with a clear error for a wrong name, dtype, rank or static dim."""
    if not isinstance(feed, Mapping):
        raise DynashapeError(f"{where} is a {type(feed).__name__}", "a dict input name -> array")
    names = [s.name for s in specs]
    unknown = [k for k in feed if k not in names]
    missing = [n for n in names if n not in feed]
    if unknown or missing:
        got = f"names {unknown} that are not inputs" if unknown else f"no array for input(s) {missing}"
        raise DynashapeError(f"{where} has {got}", f"one array per input: {', '.join(names)}", "rename the arrays after the model's inputs")
    out: Feed = {}
    for s in specs:
        a = _to_numpy(s.name, feed[s.name], where)
        want = "float32" if s.dtype == "bfloat16" else s.dtype
        if a.dtype.name != want and not (s.dtype == "bfloat16" and a.dtype.name == "float32"):
            raise DynashapeError(f"{where}: input '{s.name}' has dtype {a.dtype.name}", f"{s.dtype}",
                                 f"convert it (array.astype('{want}'))")
        if a.ndim != s.rank:
            raise DynashapeError(f"{where}: input '{s.name}' has shape {format_shape(a.shape)} (rank {a.ndim})",
                                 f"rank {s.rank} ({s.shape_text()})")
        for ax, d in enumerate(s.shape):
            if isinstance(d, int) and a.shape[ax] != d:
                raise DynashapeError(f"{where}: input '{s.name}' has shape {format_shape(a.shape)}",
                                     f"dim {ax} = {d} ({s.shape_text()})")
        out[s.name] = np.ascontiguousarray(a)
    return out


def fit_feed(feed: Mapping[str, np.ndarray], shapes: Mapping[str, Sequence[int]]) -> Feed:
    """``feed``'s values at other ``shapes``: each array cut, or repeated, along every axis whose size differs.

    NOTE: repeating keeps every value one the user gave (ids stay in their table, a row of a mask
    keeps its open positions), which a resampling or zero padding would not.
    """
    out: Feed = {}
    for name, a in feed.items():
        a = np.asarray(a)
        want = tuple(int(d) for d in shapes[name])
        for ax, n in enumerate(want):
            if a.shape[ax] != n:
                if a.shape[ax] == 0:
                    raise DynashapeError(f"data: input '{name}' has shape {format_shape(a.shape)}, empty along axis {ax}",
                                         "feeds with at least one element along every axis",
                                         "give a feed whose arrays are not empty")
                a = np.take(a, np.arange(n) % a.shape[ax], axis=ax)
        out[name] = np.ascontiguousarray(a)
    return out


def feed_shapes(feed: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {n: tuple(int(d) for d in np.shape(x)) for n, x in feed.items()}


def masked_rows(feed: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], hints: Hints | None = None) -> set[int]:
    """Batch indices (axis 0) where a mask-like input masks every position: outputs there are undefined."""
    rows: set[int] = set()
    for s in specs:
        if s.name not in feed or role_of(s, (hints or {}).get(s.name)) != MASK:
            continue
        a = np.asarray(feed[s.name])
        if a.ndim < 2 or a.shape[0] == 0:
            continue
        flat = a.reshape(a.shape[0], -1)
        rows.update(int(b) for b in np.nonzero(~flat.astype(bool).any(axis=1))[0])
    return rows
