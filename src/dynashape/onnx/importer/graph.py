"""Walk an ONNX graph and build a ``torch.fx.Graph`` that calls torch functions.

Values flowing between nodes take one of three forms at import time:

* an ``fx.Node``: a tensor computed at run time;
* a :class:`Const`: a tensor known at import time (initializer or ``Constant``), registered as a
  parameter or buffer only when run-time code needs it as a tensor;
* a :class:`Sym`: a rank-0 or rank-1 integer tensor whose *elements* are known at import time, each
  a Python ``int`` or an ``fx.Node`` that yields a ``SymInt`` (``x.size(i)`` and arithmetic on it).

NOTE: ``Sym`` is what makes ``torch.export`` work with dynamic dims. ONNX computes shapes with
tensors (Shape -> Gather -> Concat -> Reshape); converting those to tensors and back (``tolist()``)
would give torch.export data-dependent values it cannot reason about. Keeping the elements as
``SymInt`` arithmetic turns the whole shape computation into the symbolic integer expressions that
torch.export and AOTInductor guard and specialize correctly. A ``Sym`` becomes a tensor only when
data uses it (``sym_tensor``), and a run-time tensor used as a shape falls back to ``tolist()``
(eager works; torch.export may then need the value bounded).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import onnx
import torch
from onnx import helper, numpy_helper
from torch import fx

from ... import _dtypes
from ..._errors import DynashapeError, ModelError, UnsupportedOpError
from . import precision, registry, runtime

Value = Any  # fx.Node | Const | Sym | SymGrid | None

# NOTE: float types become parameters, everything else buffers; both are saved with the module
# and lifted by torch.export, so AOTInductor sees them as constants it may share across engines.
# The element types come from the one dtype table: every type this torch version has (float8
# included, bit for bit the ONNX/ml_dtypes encodings). int4/uint4, int2, float4 and float8e8m0 have
# no torch dtype that every supported torch version computes with: refused.
DTYPES: dict[int, torch.dtype] = _dtypes.onnx_to_torch_map()
numpy_to_torch = _dtypes.numpy_to_torch
torch_to_numpy = _dtypes.torch_to_numpy

# FX node meta key: the node computes index arithmetic and keeps float32 in a reduced-precision import
KEEP_FP32 = "dynashape_keep_fp32"

# Sym values longer than this are kept as constants only (a shape is never this long).
_SYM_MAX = 64


class Const:
    """A tensor known at import time."""

    __slots__ = ("name", "value")

    def __init__(self, value: torch.Tensor, name: str | None = None) -> None:
        self.value = value
        self.name = name


class Sym:
    """An integer tensor of rank 0 or 1 whose elements are ints or SymInt-valued FX nodes."""

    __slots__ = ("dtype", "elems", "scalar")

    def __init__(self, elems: Sequence[int | fx.Node], *, scalar: bool = False, dtype: torch.dtype = torch.int64):
        self.elems = list(elems)
        self.scalar = scalar
        self.dtype = dtype

    @property
    def static(self) -> bool:
        return all(not isinstance(e, fx.Node) for e in self.elems)


class SymGrid:
    """An integer tensor of rank >= 2 whose elements are known at import time (ints or SymInt nodes).

    NOTE: the TorchScript exporter computes ``F.pad`` amounts from sizes through a 2-D detour
    (Reshape to ``[-1, 2]``, a reversing Slice, Transpose, Reshape back). Keeping those elements
    symbolic through the detour keeps the pads ``SymInt`` expressions (Swin's window padding)
    instead of data-dependent ``tolist()`` values. Kept apart from :class:`Sym` so that no converter
    mistakes it for a rank-1 shape.
    """

    __slots__ = ("dtype", "grid")

    def __init__(self, grid: Any, dtype: torch.dtype) -> None:
        self.grid = grid  # numpy object array
        self.dtype = dtype


def as_grid(v: Value) -> Any:
    """A Sym or SymGrid as a numpy object array of its elements, else None."""
    import numpy as np

    if isinstance(v, SymGrid):
        return v.grid
    if isinstance(v, Sym):
        a = np.empty(len(v.elems), dtype=object)
        a[:] = v.elems
        return a.reshape(()) if v.scalar else a
    return None


def from_grid(a: Any, dtype: torch.dtype) -> Value:
    """The inverse of :func:`as_grid`: rank 0/1 become a Sym, larger ranks a SymGrid."""
    if a.ndim == 0:
        return Sym([a.item()], scalar=True, dtype=dtype)
    if a.ndim == 1:
        return Sym(list(a), dtype=dtype)
    return SymGrid(a, dtype)


def dtype_of(elem_type: int, where: str) -> torch.dtype:
    try:
        return DTYPES[elem_type]
    except KeyError:
        name = onnx.TensorProto.DataType.Name(elem_type)
        raise ModelError(
            f"{where} has element type {name}", "one of " + ", ".join(str(d) for d in DTYPES.values()),
            "cast the model to a supported type before importing",
        ) from None


class Builder:
    """Converts one ONNX graph; op converters call back into it (see :mod:`.ops`)."""

    def __init__(self, model: onnx.ModelProto, *, compute_dtype: torch.dtype | None = None) -> None:
        self.model = model
        # None: float32 stays float32 (the graph as written)
        self.compute = None if compute_dtype in (None, torch.float32) else compute_dtype
        self.opsets = {(o.domain if o.domain != "ai.onnx" else ""): int(o.version) for o in model.opset_import}
        self.graph = fx.Graph()
        self.root = torch.nn.Module()
        self.env: dict[str, Value] = {}
        # FX nodes yielding SymInts known to be >= 0 (sizes, and sums/products of sizes)
        self.nonneg: set[fx.Node] = set()
        self._attr_nodes: dict[int, fx.Node] = {}
        self._names: set[str] = set()
        self.node: onnx.NodeProto | None = None  # the node being converted (for error messages)
        self.types: dict[str, tuple[int, int | None]] = _infer_types(model)  # name -> (elem_type, rank)
        # float32 results of index arithmetic, kept float32 in a reduced-precision import (precision.py),
        # and their casts to the compute dtype where the rest of the graph reads them
        self._island_floats: set[str] = set()
        self._boundary: dict[str, fx.Node] = {}

    # ---- building blocks for converters ----------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> fx.Node:
        return self.graph.call_function(fn, tuple(args), kwargs)

    def method(self, name: str, *args: Any, **kwargs: Any) -> fx.Node:
        return self.graph.call_method(name, tuple(args), kwargs)

    def t(self, v: Value) -> fx.Node | None:
        """The value as a tensor node (``None`` stays ``None``, for omitted optional inputs)."""
        if v is None or isinstance(v, fx.Node):
            return v
        if isinstance(v, SymGrid):
            flat = Sym(list(v.grid.reshape(-1)), dtype=v.dtype)
            return self.method("reshape", self.t(flat), list(v.grid.shape))
        if isinstance(v, Sym):
            if v.static:
                return self.t(Const(torch.tensor(v.elems, dtype=v.dtype).reshape(() if v.scalar else (-1,))))
            return self.call(runtime.sym_tensor, v.elems, v.dtype, v.scalar)
        if isinstance(v, Const):
            node = self._attr_nodes.get(id(v))
            if node is None:
                name = self._unique(v.name or "const")
                value = v.value.contiguous()
                if value.is_floating_point():
                    self.root.register_parameter(name, torch.nn.Parameter(value, requires_grad=False))
                else:
                    self.root.register_buffer(name, value)
                node = self._attr_nodes[id(v)] = self.graph.get_attr(name)
            return node
        raise TypeError(f"not an importer value: {v!r}")

    def const(self, v: Value) -> torch.Tensor | None:
        """The value if known at import time, else ``None``."""
        if isinstance(v, Const):
            return v.value
        if isinstance(v, Sym) and v.static:
            return torch.tensor(v.elems, dtype=v.dtype).reshape(() if v.scalar else (-1,))
        if isinstance(v, SymGrid) and all(not isinstance(e, fx.Node) for e in v.grid.reshape(-1)):
            return torch.tensor([int(e) for e in v.grid.reshape(-1)], dtype=v.dtype).reshape(v.grid.shape)
        return None

    def sym(self, v: Value) -> Sym | None:
        """The value as a :class:`Sym` if its elements are known at import time, else ``None``."""
        if isinstance(v, Sym):
            return v
        if isinstance(v, Const) and v.value.dim() <= 1 and v.value.numel() <= _SYM_MAX:
            if v.value.dtype.is_floating_point or v.value.dtype.is_complex:
                return None
            return Sym(v.value.reshape(-1).tolist(), scalar=v.value.dim() == 0, dtype=v.value.dtype)
        return None

    def ints(self, v: Value) -> list[Any] | fx.Node:
        """A shape-like input as a list of ints/SymInt nodes; a run-time tensor becomes ``tolist()``."""
        s = self.sym(v)
        if s is not None:
            return list(s.elems)
        return self.method("tolist", self.t(v))

    def scalar(self, v: Value) -> Any:
        """A rank-0 (or one-element) value as an int/float/SymInt node; run-time tensors use ``item()``."""
        c = self.const(v)
        if c is not None:
            return c.reshape(-1)[0].item()
        s = self.sym(v)
        if s is not None and len(s.elems) == 1:
            return s.elems[0]
        return self.method("item", self.t(v))

    def static_ints(self, v: Value, what: str) -> list[int]:
        """Input values that must be known at import time (axes, pads of some ops)."""
        c = self.const(v)
        if c is None:
            assert self.node is not None
            raise UnsupportedOpError(
                f"node '{self.node.name}' ({self.node.op_type}) computes its {what} at run time",
                f"{what} given as an initializer or Constant",
                "fold constants first (onnxsim or onnxscript's optimizer), or export with static values",
            )
        return [int(x) for x in c.reshape(-1).tolist()]

    def rank(self, name: str) -> int | None:
        """The rank of a value by name, from the model's shapes or ONNX shape inference."""
        v = self.env.get(name)
        if isinstance(v, Const):
            return v.value.dim()
        if isinstance(v, Sym):
            return 0 if v.scalar else 1
        if isinstance(v, SymGrid):
            return int(v.grid.ndim)
        return self.types.get(name, (0, None))[1]

    def dtype(self, name: str) -> torch.dtype | None:
        v = self.env.get(name)
        if isinstance(v, Const):
            return v.value.dtype
        if isinstance(v, (Sym, SymGrid)):
            return v.dtype
        elem = self.types.get(name, (0, None))[0]
        return DTYPES.get(elem)

    def size(self, x: fx.Node, dim: int) -> fx.Node:
        node = self.method("size", x, dim)
        self.nonneg.add(node)
        return node

    def arith(self, fn: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
        """``fn(a, b)`` on ints now, or as an FX node when either is symbolic."""
        if not isinstance(a, fx.Node) and not isinstance(b, fx.Node):
            return fn(a, b)
        node = self.call(fn, a, b)
        if fn in (operator.add, operator.mul, operator.floordiv, torch.sym_max) and self._nonneg(a) and self._nonneg(b):
            self.nonneg.add(node)
        return node

    def is_nonneg(self, a: Any) -> bool:
        return self._nonneg(a)

    def _nonneg(self, a: Any) -> bool:
        return a in self.nonneg if isinstance(a, fx.Node) else a >= 0

    def _unique(self, name: str) -> str:
        base = re.sub(r"\W", "_", name).strip("_") or "v"
        if base[0].isdigit():
            base = "v_" + base
        out, i = base, 1
        while out in self._names or hasattr(self.root, out):
            out, i = f"{base}_{i}", i + 1
        self._names.add(out)
        return out

    # ---- the walk --------------------------------------------------------------------------------
    def build(self) -> fx.GraphModule:
        g = self.model.graph
        for init in g.initializer:
            self.env[init.name] = Const(_to_torch(init), init.name)
        for sparse in g.sparse_initializer:
            raise UnsupportedOpError(f"sparse initializer '{sparse.values.name}'", "dense initializers", "densify it")
        for inp in g.input:
            if inp.name in self.env:
                continue  # an initializer listed as an input (IR < 4): a weight, not an argument
            if not inp.type.HasField("tensor_type"):
                raise UnsupportedOpError(
                    f"graph input '{inp.name}' is not a tensor ({inp.type.WhichOneof('value')})",
                    "tensor inputs", "the importer converts tensor graphs only",
                )
            node = self.graph.placeholder(self._unique(inp.name))
            if self.compute is not None and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
                node = self.method("to", node, self.compute)
            self.env[inp.name] = node
        self._check_supported(g.node)
        island: set[int] = set()
        if self.compute is not None:
            island, self._island_floats = precision.fp32_islands(g, self.types)
        for i, n in enumerate(g.node):
            self.convert_node(n, keep_fp32=i in island)
        outs = []
        for out in g.output:
            if out.name not in self.env:
                raise ModelError(f"graph output '{out.name}' is produced by no node", "a valid ONNX graph", "run onnx.checker")
            outs.append(self.t(self.env[out.name]))
        if self.compute is not None:
            self._float32_to_compute()
            outs = [self.method("to", o, torch.float32) if out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT else o
                    for o, out in zip(outs, g.output, strict=True)]
        self.graph.output(tuple(outs))
        gm = fx.GraphModule(self.root, self.graph, class_name="OnnxModule")
        gm.graph.lint()
        return gm

    def _float32_to_compute(self) -> None:
        """Make float32 mean the compute dtype: weights and constants, and every float32 named in
        the graph (Cast and CastLike targets, ConstantOfShape values, Range and EyeLike dtypes), except
        index arithmetic and its constants (:mod:`.precision`), which keep float32. Constants are
        narrowed with saturation (a float32 mask sentinel becomes the dtype's lowest value, not -inf).

        NOTE: ``Module.to(float16)`` converts parameters and buffers only; an imported graph also
        names float32 in its calls (``Cast(to=FLOAT)``, tensors it creates), which then meet
        float16 weights ("expected mat1 and mat2 to have the same dtype"). Rewriting float32 in
        the finished graph covers every converter at once. The graph then computes as the
        original module does after ``.to(float16)``, except where that module upcast activations on
        purpose (``x.float()`` in an RMSNorm): a float32 export cannot tell those casts from the
        others, so they run in the compute dtype too.
        """
        compute = self.compute
        assert compute is not None

        def swap(a: Any) -> Any:
            return compute if a is torch.float32 else a

        for node in self.graph.nodes:
            if node.op in ("call_function", "call_method") and not node.meta.get(KEEP_FP32):
                node.args = fx.node.map_aggregate(node.args, swap)
                node.kwargs = fx.node.map_aggregate(node.kwargs, swap)
        # NOTE: a float32 constant read only by index arithmetic keeps float32 (its rounding is the bug
        # precision.py describes); one read by both keeps float32 and is narrowed for the others
        kept: set[str] = set()
        renamed: dict[str, str] = {}
        for node in list(self.graph.nodes):
            if node.op != "get_attr":
                continue
            island = [u for u in node.users if u.meta.get(KEEP_FP32)]
            if not island:
                continue
            # the name says "keep": Module.to(float16) elsewhere (the backend, the reference) leaves it
            # (_dtypes.module_to)
            old = str(node.target)
            if old not in renamed:
                value = getattr(self.root, old)
                delattr(self.root, old)
                renamed[old] = self._unique(_dtypes.FP32_KEPT_PREFIX + old)
                if isinstance(value, torch.nn.Parameter):
                    self.root.register_parameter(renamed[old], value)
                else:
                    self.root.register_buffer(renamed[old], value)
            node.target = renamed[old]
            kept.add(renamed[old])
            others = [u for u in node.users if not u.meta.get(KEEP_FP32)]
            if others:
                with self.graph.inserting_after(node):
                    narrowed = self.graph.call_function(runtime.narrow, (node, compute))
                for u in others:
                    u.replace_input_with(node, narrowed)
        for name, p in list(self.root.named_parameters(recurse=False)):
            if p.dtype == torch.float32 and name not in kept:
                self.root.register_parameter(name, torch.nn.Parameter(runtime.narrow(p.detach(), compute), requires_grad=False))
        for name, buf in list(self.root.named_buffers(recurse=False)):
            if buf.dtype == torch.float32 and name not in kept:
                self.root.register_buffer(name, runtime.narrow(buf, compute))

    def convert_node(self, n: onnx.NodeProto, *, keep_fp32: bool = False) -> None:
        entry = self._entry(n)
        assert entry is not None  # _check_supported ran first
        self.node = n
        missing = [name for name in n.input if name and name not in self.env]
        if missing:
            raise ModelError(f"node '{n.name}' ({n.op_type}) reads '{missing[0]}', which nothing produces",
                             "a topologically sorted, valid ONNX graph", "run onnx.checker.check_model")
        before = len(self.graph.nodes)
        inputs = [self._read(name, keep_fp32) if name else None for name in n.input]
        try:
            result = entry.convert(self, n, inputs)
        except DynashapeError:
            raise
        except Exception as e:  # a converter's own failure on this node's attributes or inputs
            raise UnsupportedOpError(
                f"node '{n.name}' ({n.op_type}) could not be imported: {type(e).__name__}: {_first_line(e)}",
                f"a {n.op_type} node the importer converts (attributes and inputs as the ONNX spec defines them)",
                "check the model with onnx.checker, or build on onnxruntime; please report the node",
            ) from e
        # NOTE: every FX node remembers the ONNX node it came from, so a failure later (torch.export,
        # Inductor's compile) can be reported against the ONNX node (see errors.py).
        for fx_node in list(self.graph.nodes)[before:]:
            fx_node.meta["onnx_node"] = (n.name, n.op_type)
            if keep_fp32 and fx_node.op != "get_attr":
                fx_node.meta[KEEP_FP32] = True
        outs = list(result) if isinstance(result, (list, tuple)) else [result]
        for name, v in zip(n.output, outs, strict=False):
            if name:
                self.env[name] = v

    def _read(self, name: str, keep_fp32: bool) -> Value:
        """An input value; an island's float32 result read outside the island is cast to the
        compute dtype there (once per value; see :mod:`.precision`)."""
        v = self.env[name]
        if keep_fp32 or name not in self._island_floats or not isinstance(v, fx.Node):
            return v
        cast = self._boundary.get(name)
        if cast is None:
            # float32 here becomes the compute dtype with every other float32 (_float32_to_compute)
            cast = self._boundary[name] = self.call(runtime.narrow, v, torch.float32)
        return cast

    def version(self, n: onnx.NodeProto) -> int | None:
        domain = n.domain if n.domain != "ai.onnx" else ""
        opset = self.opsets.get(domain)
        if opset is None or (domain == "" and opset > onnx.defs.onnx_opset_version()):
            return None  # NOTE: an opset newer than the installed onnx knows: refuse, never guess
        try:
            return int(onnx.defs.get_schema(n.op_type, opset, domain).since_version)
        except onnx.defs.SchemaError:
            return None

    def _entry(self, n: onnx.NodeProto) -> registry.Entry | None:
        version = self.version(n)
        return None if version is None else registry.lookup(n.domain, n.op_type, version)

    def _check_supported(self, nodes: Sequence[onnx.NodeProto]) -> None:
        bad = [n for n in nodes if self._entry(n) is None]
        if not bad:
            return
        n = bad[0]
        domain = n.domain or "ai.onnx"
        opset = self.opsets.get(n.domain if n.domain != "ai.onnx" else "")
        version = self.version(n)
        entries = registry.known(n.domain, n.op_type)
        if entries:
            ranges = ", ".join(f"{e.first}..{e.last}" for e in entries)
            expected = f"{n.op_type} versions {ranges} (this node's opset {opset} selects version {version})"
        else:
            expected = "one of the supported ops: " + ", ".join(registry.supported_ops())
        others = sorted({m.op_type for m in bad[1:]} - {n.op_type})
        more = f" (also unsupported: {', '.join(others)})" if others else ""
        raise UnsupportedOpError(
            f"op {n.op_type} (domain {domain}, opset {opset}) at node '{n.name}' is not supported{more}",
            expected,
            "replace the op before export, or decompose it (onnxscript's optimizer / rewriter); "
            "for inductor, export from PyTorch directly when you have the model code",
        )


def _infer_types(model: onnx.ModelProto) -> dict[str, tuple[int, int | None]]:
    try:
        # NOTE: data_prop propagates Shape->Gather->Concat values, which lets ranks of Reshape outputs be known.
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # inference is a help, not a requirement: ranks then come from the graph's own value_info
        pass
    out: dict[str, tuple[int, int | None]] = {}
    g = model.graph
    for vi in [*g.value_info, *g.input, *g.output]:
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is not None:
            out[vi.name] = (tt.elem_type, len(tt.shape.dim) if tt.HasField("shape") else None)
    return out


def attrs(n: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded, tensors as torch tensors)."""
    out: dict[str, Any] = {}
    for a in n.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise UnsupportedOpError(
                f"node '{n.name}' ({n.op_type}) has a subgraph attribute '{a.name}'",
                "graphs without control flow (If, Loop, Scan)",
                "export the model without data-dependent control flow",
            )
        if a.ref_attr_name:
            raise UnsupportedOpError(f"node '{n.name}' uses a function attribute reference", "plain attributes", "inline functions first")
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        elif isinstance(v, onnx.TensorProto):
            v = _to_torch(v)
        out[a.name] = v
    return out


def _to_torch(t: onnx.TensorProto) -> torch.Tensor:
    dtype_of(t.data_type, f"tensor '{t.name}'")
    return numpy_to_torch(numpy_helper.to_array(t))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else "(no message)"
