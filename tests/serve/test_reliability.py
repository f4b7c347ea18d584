"""A replica killed mid-request and a shutdown with requests in flight, on a real local Ray cluster.

Each test starts its own Serve instance (HTTP on 127.0.0.1) on the session's cluster and stops it.
Requests wait in the batcher (a long ``max_delay_ms``) so that they are in flight for certain when
the replica dies or the server stops.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dynashape

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

TOL = {"rtol": 1e-4, "atol": 1e-5}



def _infer_json(base: str, inputs: dict[str, np.ndarray], *, model: str) -> tuple[int, Any]:
    """POST one JSON inference request; (status, parsed body). A request without an answer raises OSError."""
    payload = {"inputs": [{"name": n, "shape": list(x.shape), "datatype": "INT64", "data": x.reshape(-1).tolist()}
                          for n, x in inputs.items()]}
    req = urllib.request.Request(f"{base}/v2/models/{model}/infer", data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _replica_actors(deployment: str) -> list[str]:
    """Names of the running replica actors of one deployment (Serve names them SERVE_REPLICA::app#deployment#id)."""
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith("SERVE_REPLICA::") and a["name"].split("#")[1:2] == [deployment])


def _check(body: Any, engine: dynashape.Engine, inputs: dict[str, np.ndarray]) -> None:
    want = engine.run(inputs)["hidden"]
    np.testing.assert_allclose(np.asarray(body["outputs"][0]["data"], np.float32).reshape(want.shape), want, **TOL)


def test_a_killed_replica_answers_503_and_is_replaced(ray_cluster: Any, serve_engine_file: Path,
                                                      serve_engine: dynashape.Engine, make_tokens: Any, make_free_port: Any) -> None:
    import dynashape.serve

    port = make_free_port()
    # max_batch 2: a 2-row request runs at once; a 1-row one waits 4 s for a batch-mate.
    dynashape.serve.start(dynashape.serve.app(serve_engine_file, name="bert_crash", max_batch=2, max_delay_ms=4000,
                                              num_cpus=0.5), model="bert_crash", port=port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _infer_json(base, make_tokens(2, 8, 0), model="bert_crash")[0] == 200
        (victim,) = _replica_actors("bert_crash")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(_infer_json, base, make_tokens(1, 8, 1), model="bert_crash")
            time.sleep(1.0)
            assert not slow.done()
            ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
            status, body = slow.result(timeout=30)
        assert status == 503, body
        assert body["error"] == ("the request's replica died before answering (Ray restarts it) | "
                                 "retry the request: inference has no side effects")
        # Serve replaces the replica (health checks every 2 s); a request sent meanwhile waits for it.
        t0 = time.monotonic()
        inputs = make_tokens(2, 11, 2)
        status, body = _infer_json(base, inputs, model="bert_crash")
        assert status == 200, body
        _check(body, serve_engine, inputs)
        assert time.monotonic() - t0 < 30
        (replacement,) = _replica_actors("bert_crash")
        assert replacement != victim
    finally:
        dynashape.serve.stop()


def test_stop_answers_every_in_flight_request(ray_cluster: Any, serve_engine_file: Path,
                                             serve_engine: dynashape.Engine, make_tokens: Any, make_free_port: Any) -> None:
    import dynashape.serve

    port = make_free_port()
    dynashape.serve.start(dynashape.serve.app(serve_engine_file, name="bert_drain", max_batch=16, max_delay_ms=3000,
                                              num_cpus=0.5), model="bert_drain", port=port)
    base = f"http://127.0.0.1:{port}"
    requests = [make_tokens(1, 8, i) for i in range(5)]
    stopped = False
    try:
        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            futures = [pool.submit(_infer_json, base, r, model="bert_drain") for r in requests]
            time.sleep(1.0)  # all five wait in the batcher for batch-mates
            assert not any(f.done() for f in futures)
            t0 = time.monotonic()
            dynashape.serve.stop()
            stopped = True
            assert time.monotonic() - t0 < 25
            results = [f.result(timeout=30) for f in futures]  # a lost request raises here
    finally:
        if not stopped:
            dynashape.serve.stop()
    for inputs, (status, body) in zip(requests, results, strict=True):
        assert status == 200, body
        _check(body, serve_engine, inputs)
    with pytest.raises(OSError):
        _infer_json(base, requests[0], model="bert_drain")
