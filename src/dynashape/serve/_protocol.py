"""The Open Inference Protocol v2 (KServe v2, Triton's HTTP API) over one engine, without a web framework.

:class:`ModelEndpoint` answers ``(method, path, headers, body) -> (status, headers, body)``, so the
Ray Serve replica, a test, or any ASGI server can put it behind HTTP. JSON tensors and Triton's
binary tensor extension (``Inference-Header-Content-Length``) are both understood.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import __version__
from .._errors import DynashapeError
from ._batcher import Batcher, Overloaded

# NOTE: one table between the engine's numpy dtype names and the protocol's datatype names.
V2_DATATYPES = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64", "bfloat16": "BF16",
}
_FROM_V2 = {v: k for k, v in V2_DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"
JSON_TYPE = "application/json"

Response = tuple[int, dict[str, str], bytes]


class ProtocolError(DynashapeError):
    """A request that does not follow the inference protocol (HTTP 400)."""


def _json(status: int, payload: Any) -> Response:
    return status, {"content-type": JSON_TYPE}, json.dumps(payload).encode()


def error_response(status: int, message: str) -> Response:
    return _json(status, {"error": message})


def v2_datatype(dtype: str) -> str:
    return V2_DATATYPES.get(dtype, dtype.upper())


class ModelEndpoint:
    """The v2 routes for one model served by one :class:`Batcher`."""

    def __init__(self, name: str, engine: Any, batcher: Batcher, *, version: str = "1") -> None:
        self.name = name
        self.engine = engine
        self.batcher = batcher
        self.version = version
        self.ready = True
        self._inputs = {s.name: s for s in engine.inputs}
        self._outputs = [s.name for s in engine.outputs]

    # -- metadata ----------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The model metadata: tensors with -1 for dynamic dims; ``profiles`` and ``dynashape`` are extensions."""
        def tensors(specs: Any) -> list[dict[str, Any]]:
            return [{"name": s.name, "datatype": v2_datatype(s.dtype),
                     "shape": [d if isinstance(d, int) else -1 for d in s.shape]} for s in specs]

        return {
            "name": self.name,
            "versions": [self.version],
            "platform": f"dynashape_{self.engine.backend}",
            "inputs": tensors(self.engine.inputs),
            "outputs": tensors(self.engine.outputs),
            "profiles": [{n: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max)} for n, r in p.items()}
                         for p in self.engine.profiles],
            "dynashape": {
                "version": __version__, "backend": self.engine.backend, "device": self.engine.device,
                "precision": self.engine.precision,
                "dims": {s.name: [d if isinstance(d, str) else None for d in s.shape] for s in self.engine.inputs},
                "batch_dim": self.batcher.policy.batch_dim, "max_batch": self.batcher.max_batch,
                "max_delay_ms": self.batcher.max_delay * 1000.0, "max_queue": self.batcher.max_queue,
            },
        }

    def statistics(self) -> dict[str, Any]:
        """This replica's counters, in the shape of Triton's statistics extension (a subset)."""
        st = self.batcher.stats
        return {"model_stats": [{
            "name": self.name, "version": self.version,
            "inference_count": st.requests, "execution_count": st.batches, "rejected_count": st.rejected,
            "batch_stats": [{"batch_size": k, "count": v} for k, v in sorted(st.batch_sizes.items())],
        }]}

    # -- routing -----------------------------------------------------------------------------------

    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one HTTP request. ``headers`` keys are lower-case."""
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "v2":
            return error_response(404, f"no route '{path}': the v2 protocol lives under /v2")
        rest = parts[1:]
        if method == "GET" and rest == []:
            return _json(200, {"name": "dynashape", "version": __version__, "extensions": ["binary_tensor_data"]})
        if method == "GET" and rest == ["health", "live"]:
            return _json(200, {"live": True})
        if method == "GET" and rest == ["health", "ready"]:
            return _json(200 if self.ready else 503, {"ready": self.ready})
        if len(rest) >= 2 and rest[0] == "models":
            name, tail = rest[1], rest[2:]
            if name != self.name:
                return error_response(404, f"unknown model '{name}' | this server serves '{self.name}'")
            if len(tail) >= 2 and tail[0] == "versions":
                if tail[1] != self.version:
                    return error_response(404, f"unknown version '{tail[1]}' of model '{name}' | version {self.version}")
                tail = tail[2:]
            if method == "GET" and tail == []:
                return _json(200, self.metadata())
            if method == "GET" and tail == ["ready"]:
                return _json(200 if self.ready else 503, {"name": self.name, "ready": self.ready})
            if method == "GET" and tail == ["stats"]:
                return _json(200, self.statistics())
            if method == "POST" and tail == ["infer"]:
                return await self.infer(headers, body)
        return error_response(404, f"no route {method} '{path}'")

    # -- inference ---------------------------------------------------------------------------------

    async def infer(self, headers: Mapping[str, str], body: bytes) -> Response:
        try:
            request_id, inputs, wanted, binary_out = self.decode(headers, body)
            outputs = await self.batcher.infer(inputs)
        except Overloaded as e:
            return error_response(503, str(e))
        except DynashapeError as e:
            return error_response(400, str(e))
        return self.encode(request_id, outputs, wanted, binary_out)

    def decode(self, headers: Mapping[str, str], body: bytes
               ) -> tuple[str | None, dict[str, np.ndarray], list[tuple[str, bool]], bool]:
        """Request bytes -> (id, inputs, [(output, binary)], binary default). Raises ProtocolError / DynashapeError."""
        header_len = headers.get(HEADER_LENGTH)
        try:
            n = len(body) if header_len is None else int(header_len)
        except ValueError:
            raise ProtocolError(f"{HEADER_LENGTH}: {header_len!r}", "the length in bytes of the JSON header") from None
        if not 0 <= n <= len(body):
            raise ProtocolError(f"{HEADER_LENGTH}: {n} for a body of {len(body)} bytes", "a length within the body")
        try:
            request = json.loads(body[:n])
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ProtocolError(f"a request body that is not JSON ({e})", 'an inference request: {"inputs": [{"name", "shape", "datatype", "data"}]}') from None
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
            raise ProtocolError("a JSON body without an 'inputs' list", 'an inference request: {"inputs": [{"name", "shape", "datatype", "data"}]}')
        binary = memoryview(body)[n:]
        offset = 0
        inputs: dict[str, np.ndarray] = {}
        for item in request["inputs"]:
            array, used = self._tensor(item, binary[offset:])
            offset += used
            inputs[item["name"]] = array
        if offset != len(binary):
            raise ProtocolError(f"{len(binary) - offset} bytes of binary data left over", "binary_data_size of the inputs adding up to the data sent")
        params = request.get("parameters") or {}
        binary_out = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
        wanted = []
        for item in request.get("outputs") or []:
            if not isinstance(item, dict) or item.get("name") not in self._outputs:
                got = item.get("name") if isinstance(item, dict) else item
                raise ProtocolError(f"requested output {got!r}", f"one of the model's outputs: {self._outputs}")
            p = item.get("parameters") or {}
            wanted.append((item["name"], bool(p.get("binary_data", binary_out))))
        request_id = request.get("id")
        return (None if request_id is None else str(request_id)), inputs, wanted, binary_out

    def _tensor(self, item: Any, binary: memoryview) -> tuple[np.ndarray, int]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProtocolError(f"input entry {str(item)[:80]}", 'an object with "name", "shape", "datatype" and "data"')
        name = item["name"]
        spec = self._inputs.get(name)
        if spec is None:
            raise ProtocolError(f"unknown input '{name}'", f"the model's inputs: {list(self._inputs)}")
        shape = item.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ProtocolError(f"input '{name}' shape {shape!r}", "a list of non-negative integers")
        datatype = item.get("datatype")
        want = v2_datatype(spec.dtype)
        if datatype != want:
            raise ProtocolError(f"input '{name}' datatype {datatype!r}", f"{want}, the model's datatype for this input")
        dtype = np.dtype(_FROM_V2[want]) if want != "BF16" else None
        if dtype is None:
            raise ProtocolError(f"input '{name}' is BF16", "a datatype numpy can hold", "serve an engine with fp32 or fp16 inputs")
        count = int(np.prod(shape)) if shape else 1
        params = item.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if not isinstance(size, int) or size != count * dtype.itemsize or size > len(binary):
                raise ProtocolError(f"input '{name}' binary_data_size {size!r} ({len(binary)} bytes left)",
                                    f"{count * dtype.itemsize} bytes for shape {shape} of {want}")
            return np.frombuffer(binary[:size], dtype=dtype).reshape(shape).copy(), size
        if "data" not in item:
            raise ProtocolError(f"input '{name}' without 'data'", "its elements in row-major order, or binary_data_size")
        try:
            array = np.asarray(item["data"], dtype=dtype)
        except (TypeError, ValueError) as e:
            raise ProtocolError(f"input '{name}' data that is not {want} ({e})", f"numbers of type {want}") from None
        if array.size != count:
            raise ProtocolError(f"input '{name}' has {array.size} elements", f"{count}, the product of its shape {shape}")
        return array.reshape(shape), 0

    def encode(self, request_id: str | None, outputs: Mapping[str, np.ndarray], wanted: list[tuple[str, bool]],
               binary_out: bool) -> Response:
        selected = wanted or [(n, binary_out) for n in self._outputs]
        response: dict[str, Any] = {"model_name": self.name, "model_version": self.version, "outputs": []}
        if request_id is not None:
            response["id"] = request_id
        blobs = []
        for name, binary in selected:
            o = np.ascontiguousarray(outputs[name])
            entry: dict[str, Any] = {"name": name, "datatype": v2_datatype(o.dtype.name), "shape": list(o.shape)}
            if binary:
                blob = o.tobytes()
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = o.reshape(-1).tolist()
            response["outputs"].append(entry)
        head = json.dumps(response).encode()
        if not blobs:
            return 200, {"content-type": JSON_TYPE}, head
        return 200, {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}, head + b"".join(blobs)
