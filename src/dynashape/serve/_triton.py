"""``dynashape export-triton``: a Triton model repository whose Python-backend model runs the engine.

The repository is ``<out>/<name>/config.pbtxt``, ``<out>/<name>/1/model.py`` and the engine file
beside it. ``config.pbtxt`` gives -1 for dynamic dims; with a shared dynamic batch dim it sets
``max_batch_size`` (the largest batch a profile allows, capped by ``max_batch``) and Triton's
``dynamic_batching``, whose preferred sizes come from the plan's batch ladder when it has one.
Triton hands the Python backend a list of requests; ``model.py`` groups those with the same
shapes and runs each group as one engine call (:func:`dynashape.serve.run_grouped`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from .._errors import DynashapeError
from ._batching import BatchPolicy

TRITON_TYPES = {
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32",
    "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16",
}

MODEL_PY = '''"""Triton Python-backend model serving a dynashape engine (written by `dynashape export-triton`).

Needs dynashape and the engine's runtime (onnxruntime or torch) in the Python backend's environment.
"""

import json
import os

import triton_python_backend_utils as pb_utils

import dynashape
from dynashape.serve import BatchPolicy, read_plan, run_grouped


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        engine_file = config["parameters"]["engine_file"]["string_value"]
        self.engine = dynashape.load(os.path.join(args["model_repository"], args["model_version"], engine_file))
        padding = read_plan(None, self.engine)  # pads to the engine's planned buckets where its build found it safe
        self.policy = BatchPolicy(self.engine, ladder=padding.ladder, pad_values=padding.pad_values, crops=padding.crops)
        self.max_batch = max(1, int(config.get("max_batch_size", 0)))
        self.inputs = [s.name for s in self.engine.inputs]
        self.outputs = [s.name for s in self.engine.outputs]

    def execute(self, requests):
        feeds, missing = [], {}
        for i, request in enumerate(requests):
            tensors = {n: pb_utils.get_input_tensor_by_name(request, n) for n in self.inputs}
            absent = [n for n, t in tensors.items() if t is None]
            if absent:
                missing[i] = f"missing input(s) {absent} | the model's inputs: {self.inputs}"
                tensors = {}
            feeds.append({n: t.as_numpy() for n, t in tensors.items()})
        # A request with a missing input is answered with its error and not run.
        runnable = [i for i in range(len(requests)) if i not in missing]
        results = dict(zip(runnable, run_grouped(self.policy, [feeds[i] for i in runnable], max_batch=self.max_batch)))
        responses = []
        for i in range(len(requests)):
            result = results.get(i, missing.get(i))
            if isinstance(result, (Exception, str)):
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(result))))
            else:
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor(n, result[n]) for n in self.outputs]))
        return responses
'''


def _dims(shape: Sequence[Any]) -> str:
    return "[ " + ", ".join(str(d) if isinstance(d, int) else "-1" for d in shape) + " ]"


def triton_config(engine: Any, name: str, *, max_batch: int | None = None, max_delay_ms: float | None = None,
                  preferred_batch_sizes: Sequence[int] = ()) -> str:
    """The ``config.pbtxt`` text for this engine (protobuf text format of Triton's ModelConfig)."""
    policy = BatchPolicy(engine)
    batched = policy.batch_dim is not None
    limit = max((min(p[s.name].max[0] for s in engine.inputs) for p in engine.profiles), default=0) if batched else 0
    if batched and max_batch is not None:
        limit = min(limit, int(max_batch))
    lines = [f'name: "{name}"', 'backend: "python"', f"max_batch_size: {limit}"]
    for kind, specs in (("input", engine.inputs), ("output", engine.outputs)):
        entries = []
        for s in specs:
            if s.dtype not in TRITON_TYPES:
                raise DynashapeError(f"{kind} '{s.name}' of dtype {s.dtype}", f"one of Triton's types: {sorted(TRITON_TYPES)}")
            entries.append(f'  {{\n    name: "{s.name}"\n    data_type: {TRITON_TYPES[s.dtype]}\n'
                           f"    dims: {_dims(s.shape[1:] if limit else s.shape)}\n  }}")
        lines.append(f"{kind} [\n" + ",\n".join(entries) + "\n]")
    if limit:
        sizes = sorted({int(b) for b in preferred_batch_sizes if 1 <= int(b) <= limit})
        delay_us = round((2.0 if max_delay_ms is None else float(max_delay_ms)) * 1000)
        body = [f"  preferred_batch_size: [ {', '.join(map(str, sizes))} ]"] if sizes else []
        body.append(f"  max_queue_delay_microseconds: {delay_us}")
        lines.append("dynamic_batching {\n" + "\n".join(body) + "\n}")
    kind = "KIND_GPU" if engine.device.startswith("cuda") else "KIND_CPU"
    lines.append(f"instance_group [\n  {{\n    count: 1\n    kind: {kind}\n  }}\n]")
    lines.append(f'parameters: {{\n  key: "engine_file"\n  value: {{ string_value: "{name}.engine" }}\n}}')
    return "\n".join(lines) + "\n"


def export_triton(engine_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, name: str | None = None,
                  plan: str | os.PathLike[str] | None = None, max_batch: int | None = None,
                  max_delay_ms: float | None = None) -> str:
    """Write a Triton model repository for the engine under ``out_dir``; return the model's folder.

    The model folder is assembled under a temporary name and renamed into place, so a reader never
    sees half a repository; an existing model folder of that name is replaced.
    """
    import dynashape

    from ._app import read_plan

    engine_path = os.fspath(engine_path)
    engine = dynashape.load(engine_path)
    name = name or os.path.splitext(os.path.basename(engine_path))[0]
    if not name or "/" in name or name.startswith("."):
        raise DynashapeError(f"model name {name!r}", "a folder name (no '/', not starting with '.')", "pass --name NAME")
    padding = read_plan(plan, engine)
    config = triton_config(engine, name, max_batch=max_batch, max_delay_ms=max_delay_ms,
                           preferred_batch_sizes=padding.batch_sizes)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    final = os.path.join(out_dir, name)
    tmp = tempfile.mkdtemp(dir=out_dir, prefix=f".{name}-")
    try:
        os.makedirs(os.path.join(tmp, "1"))
        with open(os.path.join(tmp, "config.pbtxt"), "w") as f:
            f.write(config)
        with open(os.path.join(tmp, "1", "model.py"), "w") as f:
            f.write(MODEL_PY)
        shutil.copyfile(engine_path, os.path.join(tmp, "1", f"{name}.engine"))
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
