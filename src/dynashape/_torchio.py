"""Uniform inputs and outputs for a ``torch.nn.Module``: named positional inputs, a flat tuple of outputs.

Both the ONNX export and the inductor backend trace the same adapter, so input and output names
mean the same thing in an ONNX file and in an engine built straight from the module.
"""

from __future__ import annotations

import inspect as _inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ._errors import ModelError


def forward_params(module: torch.nn.Module) -> list[str]:
    sig = _inspect.signature(module.forward)
    return [
        p.name for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def normalize_inputs(
    module: torch.nn.Module, example_inputs: Any, input_names: Sequence[str] | None
) -> tuple[list[str], list[torch.Tensor], bool]:
    """-> (names, tensors, by_keyword). ``example_inputs``: a tensor, a tuple/list of tensors, or a dict."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if isinstance(example_inputs, Mapping):
        names = [str(k) for k in example_inputs]
        tensors = list(example_inputs.values())
        if input_names is not None and list(input_names) != names:
            raise ModelError(
                f"input_names {list(input_names)} differ from the example_inputs keys {names}",
                "either dict example inputs (their keys are the names) or input_names, not two different lists",
            )
        # NOTE: dict keys name the inputs; they are passed by keyword only when the forward has
        # parameters of those names (a Sequential's forward takes one positional `input`).
        by_keyword = all(n in forward_params(module) for n in names)
    elif isinstance(example_inputs, (tuple, list)):
        tensors = list(example_inputs)
        params = forward_params(module)
        names = list(input_names) if input_names is not None else (
            params[: len(tensors)] if len(params) >= len(tensors) else [f"input_{i}" for i in range(len(tensors))]
        )
        if len(names) != len(tensors):
            raise ModelError(
                f"{len(names)} input names {names} for {len(tensors)} example inputs",
                "one name per example input",
            )
        by_keyword = False
    else:
        raise ModelError(
            f"example_inputs of type {type(example_inputs).__name__}",
            "a torch.Tensor, a tuple/list of tensors, or a dict of input name -> tensor",
        )
    for n, t in zip(names, tensors, strict=True):
        if not isinstance(t, torch.Tensor):
            raise ModelError(f"example input '{n}' is a {type(t).__name__}", "a torch.Tensor", "pass tensors only")
    if len(set(names)) != len(names):
        raise ModelError(f"input names {names} repeat a name", "unique input names")
    return names, tensors, by_keyword


def flatten_outputs(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, Mapping):
        return [t for v in out.values() for t in flatten_outputs(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in flatten_outputs(v)]
    if hasattr(out, "to_tuple"):  # transformers' ModelOutput
        return flatten_outputs(out.to_tuple())
    raise ModelError(f"the model returned a {type(out).__name__}", "tensors, or tuples/lists/dicts of tensors")


def output_names_for(n: int, given: Sequence[str] | None) -> list[str]:
    if given is None:
        return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]
    if len(given) != n:
        raise ModelError(f"{len(given)} output names {list(given)} for {n} outputs", "one name per output")
    return list(given)


class IOAdapter(torch.nn.Module):
    """``forward(*inputs)`` in ``input_names`` order -> a flat tuple of outputs, post-ops applied."""

    def __init__(
        self,
        module: torch.nn.Module,
        input_names: Sequence[str],
        by_keyword: bool,
        post_ops: Mapping[int, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    ) -> None:
        super().__init__()
        self.inner = module
        self.input_names = list(input_names)
        self.by_keyword = by_keyword
        self.post_ops = dict(post_ops or {})

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.by_keyword:
            out = self.inner(**dict(zip(self.input_names, args, strict=True)))
        else:
            out = self.inner(*args)
        flat = flatten_outputs(out)
        for i, fn in self.post_ops.items():
            flat[i] = fn(flat[i])
        return tuple(flat)
