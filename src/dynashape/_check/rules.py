"""Rules for the ops that carry shapes as numbers, applied to two real runs of the model.

Each rule looks at one node at the export shape (run 1) and at a shape where one dynamic dim
changed (run 2). A node *pins* the dim when an input axis that carries it changed while the
node's shape operand (target, sizes, bounds) did not, and the number there matches the dim's
export-time value. Nodes that fail in run 2 are traced back to the op that froze the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._graph import SHAPE_OPERAND, Graph, Run, node_id

_POW2 = {2, 4, 8, 16, 32}
_BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Where", "Equal", "Less", "Greater", "And", "Or", "Max", "Min", "Mod"}
_FROZEN_PRODUCERS = {"Expand", "Tile", "ConstantOfShape", "Range", "Reshape"}


@dataclass
class Pin:
    """A node that pins one dynamic dim, found by comparing two runs."""

    node: Any
    kind: str  # "reshape", "resize", "slice", "frozen", "constant", "failed"
    value: int | None
    axis: int | None = None  # axis of the node's shape operand (or output) that holds the value
    source: tuple[str, int] | None = None  # (tensor, axis) that the pinned number should follow
    consumer: Any = None  # for "frozen"/"constant": the node where the pinned tensor meets the dim
    constant: str | None = None  # for "constant": the constant input's name
    error: str | None = None  # ONNX Runtime's message when a node failed in run 2


def related(p: int, d: int) -> bool:
    """Whether ``p`` looks derived from the export-time size ``d`` (equal, or a power-of-two ratio)."""
    if p <= 0 or d <= 0:
        return False
    return p == d or (p % d == 0 and p // d in _POW2) or (d % p == 0 and d // p in _POW2)


def _vals(graph: Graph, run: Run, name: str) -> list[int] | None:
    if not name:
        return None
    v = run.values.get(name)
    if v is None:
        v = graph.constant_values().get(name)
    return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]


def _carries(r1: Run, r2: Run, name: str, axis: int) -> bool:
    a, b = r1.shapes.get(name), r2.shapes.get(name)
    return a is not None and b is not None and len(a) == len(b) and axis < len(a) and a[axis] != b[axis]


def _frozen(graph: Graph, r1: Run, r2: Run, name: str) -> bool:
    return name in graph.constant or (name in r1.shapes and r1.shapes.get(name) == r2.shapes.get(name))


_PASS = {"Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten"}


def _fixed(graph: Graph, r1: Run, name: str, depth: int = 0) -> list[bool] | None:
    """Per element of a small integer tensor: whether it is a number stored in the graph (True) or
    computed from a run-time shape (False). None when the length is unknown.

    NOTE: two runs alone cannot tell a frozen number from a size that happens not to change (a
    feature map that stays 1x1 at two tiny probe sizes, a window count): only numbers the graph
    stores can pin a dim.
    """
    v = _vals(graph, r1, name)
    if v is None:
        return None
    if name in graph.constant:
        return [True] * len(v)
    p = graph.producer.get(name)
    if p is None or depth > 8:
        return [False] * len(v)
    if p.op_type == "Concat":
        out: list[bool] = []
        for i in p.input:
            part = _fixed(graph, r1, i, depth + 1)
            if part is None:
                return [False] * len(v)
            out += part
        return out if len(out) == len(v) else [False] * len(v)
    if p.op_type in _PASS and p.input:
        part = _fixed(graph, r1, p.input[0], depth + 1)
        return part if part is not None and len(part) == len(v) else [all(part or [False])] * len(v)
    return [False] * len(v)


def _groups(src: list[int], out: list[int]) -> list[tuple[range, range]]:
    """Pair the axes of a reshape's input and output: the smallest runs with equal products.

    ``(2, 16, 32) -> (2, 16, 2, 16)`` pairs ``[0]-[0]``, ``[1]-[1]``, ``[2]-[2, 3]``. Axes of size 1 join
    the run before them. Reading the pairs from the products (not from positions) keeps a Transpose
    or a split head dim from pairing an input axis with an unrelated target number.
    """
    groups: list[tuple[range, range]] = []
    i = j = 0
    while i < len(src) and j < len(out):
        i0, j0 = i, j
        p, q = src[i], out[j]
        i, j = i + 1, j + 1
        while p != q:
            if p < q and i < len(src):
                p, i = p * src[i], i + 1
            elif q < p and j < len(out):
                q, j = q * out[j], j + 1
            else:
                return groups  # products never meet (a zero-size tensor): no pairing
        while i < len(src) and src[i] == 1 and (j >= len(out) or out[j] != 1):
            i += 1
        while j < len(out) and out[j] == 1 and (i >= len(src) or src[i] != 1):
            j += 1
        groups.append((range(i0, i), range(j0, j)))
    return groups


def _reshape(graph: Graph, n: Any, r1: Run, r2: Run) -> list[Pin]:
    """A Reshape pins a dim when an input axis carrying it changed while every target number of the
    output axes it pairs with (see :func:`_groups`) stayed the same: the change then lands in another
    axis (the ``-1``), or the node fails. Target entries -1 and 0 follow the input, so they never pin.
    """
    data = n.input[0]
    t1, t2 = _vals(graph, r1, n.input[1]), _vals(graph, r2, n.input[1])
    src, out = r1.shapes.get(data), r1.shapes.get(n.output[0])
    if t1 is None or t2 is None or src is None or len(t1) != len(t2):
        return []
    if out is None:  # the node failed at the export shape too: pair with the target's own numbers
        out = tuple(src[b] if v == 0 and b < len(src) else v for b, v in enumerate(t1))
        known = int(np.prod([v for v in out if v != -1]))
        if -1 in out and known > 0 and int(np.prod(src)) % known == 0:
            out = tuple(int(np.prod(src)) // known if v == -1 else v for v in out)
    if len(out) != len(t1) or min(out, default=1) < 0:
        return []
    fixed = _fixed(graph, r1, n.input[1]) or [True] * len(t1)
    pins = []
    for ins, outs in _groups(list(src), list(out)):
        changed = [a for a in ins if _carries(r1, r2, data, a)]
        if not changed or any(t1[b] != t2[b] or t1[b] <= 0 or not fixed[b] for b in outs):
            continue
        a = changed[0]
        # NOTE: the reported number is the target entry equal to the dim's export value, else the
        # group's entry nearest to it: the number that a fix replaces with the dim.
        b = min(outs, key=lambda b: (t1[b] != src[a], not related(t1[b], src[a]), abs(t1[b] - src[a])))
        pins.append(Pin(n, "reshape", t1[b], b, (data, a)))
    return pins


def _resize(graph: Graph, n: Any, r1: Run, r2: Run) -> list[Pin]:
    if len(n.input) < 4 or not n.input[3]:
        return []  # scales follow the input; only constant sizes pin
    data = n.input[0]
    s1, s2 = _vals(graph, r1, n.input[3]), _vals(graph, r2, n.input[3])
    src = r1.shapes.get(data)
    if s1 is None or s2 is None or src is None or len(s1) != len(src):
        return []
    fixed = _fixed(graph, r1, n.input[3]) or [True] * len(s1)
    return [
        Pin(n, "resize", s1[a], a, (data, a))
        for a in range(len(src))
        if _carries(r1, r2, data, a) and s1[a] == s2[a] and fixed[a] and related(s1[a], src[a])
    ]


def _slice(graph: Graph, n: Any, r1: Run, r2: Run) -> list[Pin]:
    if len(n.input) < 3:
        return []
    data, out = n.input[0], n.output[0]
    src, o1, o2 = r1.shapes.get(data), r1.shapes.get(out), r2.shapes.get(out)
    ends1, ends2 = _vals(graph, r1, n.input[2]), _vals(graph, r2, n.input[2])
    if src is None or o1 is None or o2 is None or ends1 is None or ends1 != ends2:
        return []
    axes = _vals(graph, r1, n.input[3]) if len(n.input) > 3 and n.input[3] else list(range(len(ends1)))
    starts = _vals(graph, r1, n.input[1]) or [0] * len(ends1)
    fixed = _fixed(graph, r1, n.input[2]) or [True] * len(ends1)
    pins = []
    for k, ax in enumerate(axes or []):
        ax = ax % len(src)
        # NOTE: only a stored, positive end just below the export size is a length read at export
        # (`x[:, :T - 1]` traced with an int). A negative start (`x[:, -1:]`), a first element
        # (`x[:, :1]`) or an end computed from a shape keeps its size by design.
        if (_carries(r1, r2, data, ax) and o1[ax] == o2[ax] and 1 < o1[ax] <= src[ax] and src[ax] - o1[ax] <= 2
                and k < len(ends1) and fixed[k] and 0 < ends1[k] <= src[ax] and starts[k] >= 0):
            pins.append(Pin(n, "slice", o1[ax], ax, (data, ax)))
    return pins


def _aligned(n: Any, shape_x: tuple[int, ...], ax: int, shape_c: tuple[int, ...]) -> int | None:
    """The axis of ``shape_c`` that meets axis ``ax`` of ``shape_x`` in node ``n``."""
    if n.op_type == "Concat":
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0) % max(1, len(shape_x))
        return ax if len(shape_c) == len(shape_x) and ax != axis else None
    if n.op_type in _BROADCAST:
        b = ax - len(shape_x) + len(shape_c)
        return b if 0 <= b < len(shape_c) else None
    return None


def _trace_frozen(graph: Graph, r1: Run, r2: Run, start: str, d1: int) -> tuple[Any, int] | None:
    """Walk up from a frozen tensor to the op that put the export-time size ``d1`` into it."""
    stack: list[str] = [start]
    seen: set[int] = set()
    while stack:
        name = stack.pop(0)
        p = graph.producer.get(name)
        if p is None or id(p) in seen or len(seen) > 16:
            continue
        seen.add(id(p))
        if p.op_type in _FROZEN_PRODUCERS:
            k = SHAPE_OPERAND[p.op_type]
            vals = _vals(graph, r1, p.input[k]) if len(p.input) > k else None
            if vals is not None:
                if p.op_type == "Tile":
                    base = r1.shapes.get(p.input[0], ())
                    vals = [v * (base[i] if i < len(base) else 1) for i, v in enumerate(vals)]
                if d1 in vals:
                    return p, vals.index(d1)
        stack.extend(i for i in p.input if i and _frozen(graph, r1, r2, i))
    return None


def _consumer(graph: Graph, n: Any, r1: Run, r2: Run, error: str) -> list[Pin]:
    ins = [i for i in n.input if i]
    for x in ins:
        sx = r1.shapes.get(x)
        if sx is None:
            continue
        for ax in range(len(sx)):
            if not _carries(r1, r2, x, ax) or sx[ax] <= 1:
                continue
            for c in ins:
                sc = r1.shapes.get(c) or _init_shape(graph, c)
                if c == x or sc is None or not _frozen(graph, r1, r2, c):
                    continue
                b = _aligned(n, sx, ax, sc)
                if b is None or sc[b] != sx[ax]:
                    continue
                hit = _trace_frozen(graph, r1, r2, c, sx[ax])
                if hit:
                    return [Pin(hit[0], "frozen", sx[ax], hit[1], (x, ax), consumer=n, error=error)]
                return [Pin(n, "constant", sx[ax], b, (x, ax), consumer=n, constant=c, error=error)]
    return []


def _init_shape(graph: Graph, name: str) -> tuple[int, ...] | None:
    init = graph.initializers.get(name)
    return tuple(int(d) for d in init.dims) if init is not None else None


_RULES = {"Reshape": _reshape, "Resize": _resize, "Slice": _slice}


def find_pins(graph: Graph, r1: Run, r2: Run) -> list[Pin]:
    """Every node that pins the dim changed between ``r1`` and ``r2``, first ones first."""
    failed = {nid: err for nid, err in r2.failed}
    pins: list[Pin] = []
    for n in graph.nodes:
        nid = node_id(n)
        ran = n.output and n.output[0] in r2.shapes
        if not ran and nid not in failed:
            continue
        rule = _RULES.get(n.op_type)
        found = rule(graph, n, r1, r2) if rule else []
        if not found and nid in failed:
            found = _consumer(graph, n, r1, r2, failed[nid]) or [Pin(n, "failed", None, error=failed[nid])]
        for p in found:
            p.error = p.error or failed.get(nid)
        pins += found
    # NOTE: report the first node whose shape did not follow: a pin downstream of another pin of
    # the same dim is its consequence (a Gemm that fails after a bad Reshape), not a second cause.
    kept: list[Pin] = []
    for p in sorted(pins, key=lambda p: graph.index[id(p.node)]):
        where = p.consumer if p.consumer is not None else p.node
        anc = graph.ancestors(where) | {graph.index[id(where)]}
        if any(graph.index[id(k.node)] in anc and k.node is not p.node for k in kept):
            continue
        if any(k.node is p.node and k.axis == p.axis for k in kept):
            continue
        kept.append(p)
    return kept
