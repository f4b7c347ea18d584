"""dynashape.serve on a real local Ray cluster and a real HTTP server (127.0.0.1), CPU engine.

NOTE: one Ray cluster for the session (conftest), one Serve instance for this module, with two apps:
``bert_like`` (batching on) and ``bert_busy`` under /busy (a tiny queue and a long delay, so
overload is deterministic). Every request goes to 127.0.0.1 with a timeout.
"""

from __future__ import annotations

import concurrent.futures
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dynashape

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

TOL = {"rtol": 1e-4, "atol": 1e-5}



@pytest.fixture(scope="module")
def server(ray_cluster: Any, serve_engine_file: Path, make_free_port: Any) -> Iterator[str]:
    import dynashape.serve

    port = make_free_port()
    try:
        url = dynashape.serve.start(dynashape.serve.app(serve_engine_file, max_batch=16, max_delay_ms=5),
                                    model="bert_like", port=port)
        assert url == f"http://127.0.0.1:{port}/v2/models/bert_like"
        busy = dynashape.serve.app(serve_engine_file, name="bert_busy", max_batch=16, max_delay_ms=3000, max_queue=3,
                                   num_cpus=0.5)
        serve.run(busy, name="busy", route_prefix="/busy", blocking=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        dynashape.serve.stop()


def _http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _infer_json(base: str, inputs: dict[str, np.ndarray], *, request_id: str | None = None, model: str = "bert_like",
                prefix: str = "") -> tuple[int, Any]:
    payload: dict[str, Any] = {"inputs": [{"name": n, "shape": list(x.shape), "datatype": "INT64",
                                           "data": x.reshape(-1).tolist()} for n, x in inputs.items()]}
    if request_id is not None:
        payload["id"] = request_id
    status, _, body = _http("POST", f"{base}{prefix}/v2/models/{model}/infer", json.dumps(payload).encode(),
                            {"content-type": "application/json"})
    try:
        return status, json.loads(body)
    except json.JSONDecodeError:
        raise AssertionError(f"HTTP {status} with a body that is not JSON: {body[:300]!r}") from None


def test_health_and_metadata(server: str) -> None:
    assert _http("GET", f"{server}/v2/health/live")[0] == 200
    assert _http("GET", f"{server}/v2/health/ready")[0] == 200
    assert _http("GET", f"{server}/v2/models/bert_like/ready")[0] == 200
    status, _, body = _http("GET", f"{server}/v2/models/bert_like")
    meta = json.loads(body)
    assert status == 200
    assert meta["inputs"] == [{"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]},
                              {"name": "attention_mask", "datatype": "INT64", "shape": [-1, -1]}]
    assert meta["outputs"] == [{"name": "hidden", "datatype": "FP32", "shape": [-1, -1, 32]}]
    assert meta["profiles"][0]["input_ids"] == {"min": [1, 4], "opt": [4, 16], "max": [16, 64]}
    status, _, body = _http("GET", f"{server}/v2/models/nope")
    assert status == 404 and "unknown model 'nope'" in json.loads(body)["error"]


def test_16_concurrent_clients_mixed_shapes(server: str, serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    shapes = [(1, 5), (2, 8), (1, 16), (3, 8), (1, 8), (2, 23)]
    jobs = [(c, k, shapes[(c + k) % len(shapes)]) for c in range(16) for k in range(4)]  # 64 requests

    def client(c: int) -> list[tuple[str, dict[str, np.ndarray], int, Any]]:
        out = []
        for cc, k, (b, s) in jobs:
            if cc == c:
                inputs = make_tokens(b, s, seed=100 * c + k)
                status, body = _infer_json(server, inputs, request_id=f"{c}-{k}")
                out.append((f"{c}-{k}", inputs, status, body))
        return out

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(client, range(16)) for r in rs]
    assert len(results) == len(jobs)
    for rid, inputs, status, body in results:
        assert status == 200, body
        assert body["id"] == rid and body["model_name"] == "bert_like"
        (out,) = body["outputs"]
        want = serve_engine.run(inputs)["hidden"]
        assert out["name"] == "hidden" and out["datatype"] == "FP32" and out["shape"] == list(want.shape)
        np.testing.assert_allclose(np.asarray(out["data"], np.float32).reshape(want.shape), want, **TOL)
    stats = json.loads(_http("GET", f"{server}/v2/models/bert_like/stats")[2])["model_stats"][0]
    assert stats["inference_count"] >= len(jobs)
    assert stats["execution_count"] < stats["inference_count"], "concurrent requests of one shape share calls"


def test_bad_requests_get_400(server: str, make_tokens: Any) -> None:
    status, body = _infer_json(server, make_tokens(1, 100, seed=0))
    assert status == 400
    assert "input 'input_ids' dim 1 (seq) = 100 is outside every profile" in body["error"]
    assert "--maxShapes" in body["error"]
    url = f"{server}/v2/models/bert_like/infer"
    status, _, raw = _http("POST", url, b"{not json", {"content-type": "application/json"})
    assert status == 400 and "not JSON" in json.loads(raw)["error"]
    bad = {"inputs": [{"name": "input_ids", "shape": [1, 4], "datatype": "FP32", "data": [0.0] * 4}]}
    status, _, raw = _http("POST", url, json.dumps(bad).encode())
    assert status == 400 and "datatype 'FP32'" in json.loads(raw)["error"]
    short = {"inputs": [{"name": n, "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3]}
                        for n in ("input_ids", "attention_mask")]}
    status, _, raw = _http("POST", url, json.dumps(short).encode())
    assert status == 400 and "3 elements" in json.loads(raw)["error"]


def test_overload_gets_503(server: str, serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    # bert_busy holds requests up to 3 s for batch-mates and queues at most 3: of 8 sent at once,
    # 3 wait and are answered together, 5 are refused.
    def one(i: int) -> tuple[int, Any, dict[str, np.ndarray]]:
        inputs = make_tokens(1, 8, seed=i)
        status, body = _infer_json(server, inputs, model="bert_busy", prefix="/busy")
        return status, body, inputs

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    statuses = sorted(s for s, _, _ in results)
    assert statuses == [200] * 3 + [503] * 5, [b for _, b, _ in results]
    for status, body, inputs in results:
        if status == 503:
            assert "at most 3 queued" in body["error"]
        else:
            want = serve_engine.run(inputs)["hidden"]
            np.testing.assert_allclose(np.asarray(body["outputs"][0]["data"], np.float32).reshape(want.shape), want, **TOL)


def test_tritonclient_http(server: str, serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.removeprefix("http://"), network_timeout=30.0)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("bert_like")
    meta = client.get_model_metadata("bert_like")
    assert meta["inputs"][0]["shape"] == [-1, -1]
    inputs = make_tokens(2, 11, seed=7)
    want = serve_engine.run(inputs)["hidden"]
    for binary_in in (True, False):
        tensors = []
        for name, x in inputs.items():
            t = httpclient.InferInput(name, list(x.shape), "INT64")
            t.set_data_from_numpy(x, binary_data=binary_in)
            tensors.append(t)
        # outputs=None: all outputs in binary; an explicit JSON output otherwise
        for outputs in (None, [httpclient.InferRequestedOutput("hidden", binary_data=False)]):
            result = client.infer("bert_like", tensors, outputs=outputs, request_id="abc")
            np.testing.assert_allclose(result.as_numpy("hidden"), want, **TOL)
            assert result.get_response()["id"] == "abc"
    from tritonclient.utils import InferenceServerException

    t = httpclient.InferInput("input_ids", [1, 100], "INT64")
    t.set_data_from_numpy(make_tokens(1, 100, 0)["input_ids"])
    m = httpclient.InferInput("attention_mask", [1, 100], "INT64")
    m.set_data_from_numpy(make_tokens(1, 100, 0)["attention_mask"])
    with pytest.raises(InferenceServerException, match="outside every profile") as info:
        client.infer("bert_like", [t, m])
    assert info.value.status() == "400"
    client.close()
