"""Which float32 values of an ONNX graph stay float32 when the import computes in float16/bfloat16.

A float32 export cannot say which of its ``Cast(to=FLOAT)`` nodes were deliberate upcasts in the
model, so the importer makes float32 mean the compute dtype everywhere (``Builder._float32_to_compute``).
That is right for activations and weights, and wrong for *index arithmetic*: float math on integers
(positions, sizes) whose result is cast back to integers or selects between them. T5's
relative-position buckets are the example: ``int(log(|i - j| / 8) / log(128 / 8) * 8)``. In float16
the constant ``log(16)`` rounds from 2.77259 to 2.77344, and Inductor's fused kernel (which computes
in float32 from the float16 operands) then puts the distances 16, 32 and 64 in the bucket below: a
different attention bias, 20x eager float16's error on the GPU. Eager PyTorch computes those buckets
in float32 whatever the model's dtype (``relative_position.float()`` is not touched by
``model.half()``), and so does the import now.

The rule, from the graph alone (no name lists): a node computes index arithmetic when its op is
cheap elementwise math, a comparison, a selection or a view, and each of its inputs is an integer or
bool value, small float constant, or a float output of another such node. Such nodes ("islands")
keep float32, with their constants; where an island's float result flows into the rest of the graph
(a rotary embedding's cos/sin meeting the queries, a mask meeting the scores) the importer casts it
to the compute dtype at that point, saturating finite values at the dtype's range as
``torch.finfo(dtype).min`` would in the model. So the rest of the graph stays in one dtype, and the
island computes what eager PyTorch computes.
"""

from __future__ import annotations

import math
from typing import Any

import onnx
from onnx import TensorProto

# NOTE: cheap ops only: elementwise math, comparisons, selection, views and gathers of small values.
# MatMul/Einsum are here for rotary embeddings (inv_freq @ positions, a few dozen values per
# position); a big float constant (a weight, an embedding table) keeps a node out of any island.
INDEX_OPS = frozenset({
    "Abs", "Add", "And", "Cast", "CastLike", "Ceil", "Clip", "Concat", "ConstantOfShape", "Cos", "CumSum",
    "Div", "Einsum", "Equal", "Exp", "Expand", "Flatten", "Floor", "Gather", "Greater", "GreaterOrEqual",
    "Identity", "Less", "LessOrEqual", "Log", "MatMul", "Max", "Min", "Mod", "Mul", "Neg", "Not", "Or",
    "Pow", "Range", "Reciprocal", "Reshape", "Round", "Shape", "Sign", "Sin", "Size", "Slice", "Sqrt",
    "Squeeze", "Sub", "Tile", "Transpose", "Unsqueeze", "Where",
})
# float constants up to this many elements count as parameters of index arithmetic (T5's bucket
# constants, a rotary inv_freq); anything bigger is a weight
SMALL_CONSTANT = 4096

_FLOAT32 = TensorProto.FLOAT
_INTEGRAL = frozenset({
    TensorProto.BOOL, TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
    TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
})


def _constant_types(g: onnx.GraphProto) -> dict[str, tuple[int, int]]:
    """name -> (elem_type, numel) of the graph's initializers and Constant nodes' outputs."""
    out: dict[str, tuple[int, int]] = {}
    for init in g.initializer:
        out[init.name] = (init.data_type, math.prod(int(d) for d in init.dims))
    for n in g.node:
        if n.op_type != "Constant" or not n.output:
            continue
        for a in n.attribute:
            if a.name == "value":
                out[n.output[0]] = (a.t.data_type, math.prod(int(d) for d in a.t.dims))
            elif a.name in ("value_float", "value_floats"):
                out[n.output[0]] = (_FLOAT32, max(1, len(a.floats)))
            elif a.name in ("value_int", "value_ints"):
                out[n.output[0]] = (TensorProto.INT64, max(1, len(a.ints)))
    return out


def fp32_islands(g: onnx.GraphProto, types: dict[str, tuple[int, Any]]) -> tuple[set[int], set[str]]:
    """The positions (in ``g.node``) of the nodes that compute index arithmetic, and the names of
    their float32 outputs.

    ``types`` maps value names to ``(elem_type, rank)`` (the importer's shape inference); a value of
    unknown type keeps its consumer out (the rule never guesses).
    """
    consts = _constant_types(g)
    island: set[int] = set()
    floats: set[str] = set()  # float32 outputs of island nodes

    def elem(name: str) -> int | None:
        if name in consts:
            return consts[name][0]
        t = types.get(name)
        return t[0] if t is not None else None

    def allowed(name: str) -> bool:
        if not name:
            return True  # an omitted optional input
        if name in floats:
            return True
        e = elem(name)
        if e in _INTEGRAL:
            return True
        return e == _FLOAT32 and name in consts and consts[name][1] <= SMALL_CONSTANT

    for i, n in enumerate(g.node):
        if n.op_type == "Constant":
            continue  # a constant is kept or converted by its users (see Builder._float32_to_compute)
        if n.op_type not in INDEX_OPS or not all(allowed(x) for x in n.input):
            continue
        outs = {o: elem(o) for o in n.output if o}
        if any(e is None or (e not in _INTEGRAL and e != _FLOAT32) for e in outs.values()):
            continue  # a float16/float64 result or an unknown type: not index arithmetic as defined here
        island.add(i)
        floats.update(o for o, e in outs.items() if e == _FLOAT32)
    return island, floats
