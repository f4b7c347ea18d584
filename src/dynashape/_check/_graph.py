"""Graph plumbing shared by the passes: node lookup, constness, source lines, ONNX Runtime runs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deps import require
from .._specs import TensorSpec

# Shape-carrying operand per op: the input that holds sizes as numbers.
SHAPE_OPERAND = {"Reshape": 1, "Expand": 1, "Tile": 1, "ConstantOfShape": 0, "Range": 1, "Resize": 3, "Upsample": 1}


def node_id(node: Any) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


@dataclass
class Graph:
    """Index over one ONNX graph (the main graph; subgraphs are left alone)."""

    model: Any
    inputs: list[TensorSpec]

    def __post_init__(self) -> None:
        g = self.model.graph
        self.nodes = list(g.node)
        self.producer: dict[str, Any] = {o: n for n in self.nodes for o in n.output if o}
        self.initializers = {i.name: i for i in g.initializer}
        self.consumers: dict[str, list[Any]] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.index = {id(n): k for k, n in enumerate(self.nodes)}
        self.by_id = {node_id(n): n for n in self.nodes}
        self._constant_values: dict[str, np.ndarray] | None = None
        input_names = {s.name for s in self.inputs}
        # A value is "constant" when no graph input reaches it: initializers, Constant nodes and
        # everything computed from them only.
        self.constant: set[str] = set(self.initializers)
        for n in self.nodes:  # nodes of an exported graph are in topological order (ONNX requires it)
            if all((not i) or (i in self.constant and i not in input_names) for i in n.input):
                self.constant.update(o for o in n.output if o)

    def ancestors(self, node: Any) -> set[int]:
        """Indexes of the nodes that ``node`` depends on."""
        seen: set[int] = set()
        stack = [i for i in node.input if i]
        while stack:
            p = self.producer.get(stack.pop())
            if p is None or self.index[id(p)] in seen:
                continue
            seen.add(self.index[id(p)])
            stack.extend(i for i in p.input if i)
        return seen

    def descendants(self, nodes: Iterable[Any]) -> set[int]:
        seen: set[int] = set()
        stack = list(nodes)
        while stack:
            n = stack.pop()
            k = self.index[id(n)]
            if k in seen:
                continue
            seen.add(k)
            for o in n.output:
                stack.extend(self.consumers.get(o, []))
        return seen

    def constant_values(self) -> dict[str, np.ndarray]:
        """Values of the small integer initializers (Constant nodes come from the runs)."""
        from onnx import numpy_helper

        if self._constant_values is not None:
            return self._constant_values
        out: dict[str, np.ndarray] = {}
        for name, init in self.initializers.items():
            if init.data_type in (6, 7) and np.prod(init.dims) <= 64:
                out[name] = numpy_helper.to_array(init)
        self._constant_values = out
        return out


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)')


# dynashape's own files (the IOAdapter every export traces through) are never the user's line.
_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _internal(path: str) -> bool:
    p = path.replace("\\", "/")
    return "/torch/" in p or os.path.abspath(path).startswith(_OWN)


def source_of(node: Any) -> str | None:
    """Where the node came from in the user's PyTorch code.

    The dynamo exporter records a stack trace per node (``pkg.torch.onnx.stack_trace``); the last
    frame outside torch's own files is the user's line. The TorchScript exporter records only the
    module path, in the node name (``/layer1/fc/Gemm`` -> module ``layer1.fc``). Frames in torch and in
    dynashape itself are skipped.
    """
    props = {p.key: p.value for p in node.metadata_props}
    trace = props.get("pkg.torch.onnx.stack_trace", "")
    frames = [m for m in _FRAME.finditer(trace) if not _internal(m.group(1))]
    if frames:
        # NOTE: the deepest frame of the model's own code: the user's file, or the library that holds
        # the model (transformers' modeling_*.py), which is where the pinning line is.
        f = frames[-1]
        return f"{f.group(1)}:{f.group(2)} `{f.group(4).strip()}`"
    scopes = props.get("pkg.torch.onnx.name_scopes")
    if scopes:
        parts = [p for p in re.findall(r"'([^']*)'", scopes) if p][:-1]
        return f"module '{'.'.join(parts) or '(top level)'}'"
    if node.name.startswith("/"):
        parts = [p for p in node.name.split("/") if p][:-1]
        return f"module '{'.'.join(parts) or '(top level)'}'"
    return None


# ---------------------------------------------------------------------------------------------
# ONNX Runtime
# ---------------------------------------------------------------------------------------------

_NODE_IN_ERROR = re.compile(r"Name:'([^']*)'")


class Feeder:
    """The inputs of every run of the empirical pass, from the one data generator or the user's data.

    Generated (the default): :func:`dynashape._data.make_inputs` with the graph's hints, so token ids
    lie in the table they index and masks never mask a whole row, as the model's users feed it.
    The user's data (``data``): feed ``seed % len(data)``, cut or repeated to the probe's shapes
    (:func:`dynashape._data.fit_feed`): the doctor probes shapes the data may not have.
    """

    def __init__(self, model: Any, inputs: list[TensorSpec], data: Any = None) -> None:
        from .._data import hints_from_onnx, load_data

        self.inputs = inputs
        self.hints = hints_from_onnx(model)
        self.data = load_data(data, inputs) if data is not None else None

    def __call__(self, shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
        from .._data import fit_feed, make_inputs

        if self.data is None:
            return make_inputs(self.inputs, shapes, seed=seed, hints=self.hints)
        return fit_feed(self.data[seed % len(self.data)], shapes)

    def data_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """The shapes of the user's first feed (None without data): shapes the model surely runs at."""
        from .._data import feed_shapes

        return feed_shapes(self.data[0]) if self.data else None


@dataclass
class Run:
    """The shapes (and small integer values) of every intermediate at one set of input shapes."""

    shapes: dict[str, tuple[int, ...]]
    values: dict[str, np.ndarray]
    failed: list[tuple[str, str]]  # (node id, ONNX Runtime's message), in the order they failed

    @property
    def ok(self) -> bool:
        return not self.failed


class Runner:
    """Runs a model with every intermediate exposed as an output; prunes the nodes that fail."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.ort = require("onnxruntime", "the empirical pass of `dynashape check`")
        self._sessions: dict[frozenset[int], tuple[Any, list[str]]] = {}

    def _session(self, dropped: frozenset[int]) -> tuple[Any, list[str]]:
        if dropped in self._sessions:
            return self._sessions[dropped]
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(self.graph.model)
        keep = [n for k, n in enumerate(self.graph.nodes) if k not in dropped]
        del m.graph.node[:]
        m.graph.node.extend(keep)
        del m.graph.value_info[:]
        produced = [o for n in keep for o in n.output if o]
        del m.graph.output[:]
        m.graph.output.extend(onnx.ValueInfoProto(name=o) for o in produced)
        opts = self.ort.SessionOptions()
        # NOTE: no graph optimization: fusions and constant folding would hide the very nodes we report.
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 4
        opts.intra_op_num_threads = 1
        try:
            sess = self.ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime's InvalidGraph, Fail, NotImplemented...: the model is at fault
            from .._errors import ModelError

            raise ModelError(
                f"ONNX Runtime cannot load the model: {_short(str(e))}",
                "a valid ONNX graph whose ops ONNX Runtime's CPU provider knows",
                "fix or re-export the model, or pass --no-run for the symbolic check only",
            ) from e
        self._sessions[dropped] = (sess, produced)
        return sess, produced

    def run(self, feeds: Mapping[str, np.ndarray], *, max_failures: int = 4) -> Run:
        dropped: frozenset[int] = frozenset()
        failed: list[tuple[str, str]] = []
        while True:
            sess, names = self._session(dropped)
            try:
                outs = sess.run(names, dict(feeds))
            except Exception as e:  # ONNX Runtime raises its own Fail/InvalidArgument/RuntimeException types
                text = str(e)
                m = _NODE_IN_ERROR.search(text)
                node = self.graph.by_id.get(m.group(1)) if m else None
                if node is None or len(failed) >= max_failures:
                    failed.append((m.group(1) if m else "?", _short(text)))
                    return Run({n: tuple(v.shape) for n, v in feeds.items()}, {}, failed)
                failed.append((node_id(node), _short(text)))
                dropped = dropped | self.graph.descendants([node])
                continue
            shapes = {n: tuple(v.shape) for n, v in feeds.items()}
            values: dict[str, np.ndarray] = {}
            for n, v in zip(names, outs, strict=True):
                if not isinstance(v, np.ndarray):
                    continue
                shapes[n] = tuple(v.shape)
                if v.dtype.kind in "iu" and v.ndim <= 1 and v.size <= 64:
                    values[n] = v
            return Run(shapes, values, failed)


def _short(text: str) -> str:
    """ONNX Runtime's message without its source path and C++ signature."""
    text = text.split("Status Message:", 1)[-1].strip()
    text = re.sub(r"^/onnxruntime_src\S*:\d+ [^(]*\([^)]*\)\s*", "", text)
    text = re.sub(r"^[^.]*was false\.\s*", "", text)
    return text.splitlines()[0][:300] if text else text


def run_plain(model_bytes: bytes, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run a model as users will (default optimizations), returning its outputs."""
    ort = require("onnxruntime", "verifying a model")
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return list(sess.run(None, dict(feeds)))
