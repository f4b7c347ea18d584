"""Failures after import (torch.export, AOTInductor's compile) named by the ONNX node they come from.

The importer tags every FX node with its ONNX node (``meta["onnx_node"]``). torch.export keeps FX
node names in its messages ("While executing %reshape_3", Inductor's "Source Nodes: [...]"), so the
first imported node named in the error (or its causes) identifies the ONNX node.
"""

from __future__ import annotations

import re
from typing import Any

from ..._errors import BackendError


def onnx_node_in(error: BaseException, module: Any) -> tuple[str, str] | None:
    """(ONNX node name, op type) of the first imported node the error mentions, else None."""
    gm = _graph_module(module)
    if gm is None:
        return None
    by_fx = {n.name: n.meta["onnx_node"] for n in gm.graph.nodes if "onnx_node" in n.meta}
    by_onnx = {v[0]: v for v in by_fx.values() if v[0]}
    texts: list[str] = []
    e: BaseException | None = error
    while e is not None and len(texts) < 8:
        texts.append(str(e))
        e = e.__cause__ or e.__context__
    text = "\n".join(texts)
    for m in re.finditer(r"[A-Za-z_][\w./:-]*", text):
        word = m.group(0)
        if word in by_onnx:
            return by_onnx[word]
        if word.lstrip("%") in by_fx:
            return by_fx[word.lstrip("%")]
    return None


def build_error(error: BaseException, module: Any, backend: str) -> BackendError:
    """One error for a model imported from ONNX that the backend could not build."""
    node = onnx_node_in(error, module)
    first = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "(no message)")[:400]
    where = f" at ONNX node '{node[0]}' ({node[1]})" if node else ""
    return BackendError(
        f"the {backend} backend could not build the model imported from ONNX{where}: {type(error).__name__}: {first}",
        "an ONNX graph whose imported PyTorch module torch.export and Inductor accept",
        "build it on onnxruntime (--backend onnxruntime), or build on inductor from the PyTorch module itself; "
        "please report the node",
    )


def _graph_module(module: Any) -> Any:
    """The imported GraphModule inside the adapters that wrap it."""
    import torch

    seen = 0
    stack = [module]
    while stack and seen < 64:
        m = stack.pop()
        seen += 1
        if isinstance(m, torch.fx.GraphModule) and any("onnx_node" in n.meta for n in m.graph.nodes):
            return m
        if isinstance(m, torch.nn.Module):
            stack.extend(m.children())
    return None
