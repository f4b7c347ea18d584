"""Starting Ray and Ray Serve for one application: a local single-node cluster on 127.0.0.1, or an existing one."""

from __future__ import annotations

import os
from typing import Any

from .._deps import require


def start(application: Any, *, model: str, name: str | None = None, host: str | None = None, port: int | None = None,
          address: str | None = None, num_cpus: int | None = None) -> str:
    """Run ``application`` (from :func:`app`) on Ray Serve and return the model's URL.

    Without ``address`` (and with Ray not yet initialized) a local cluster starts with its node on
    127.0.0.1, no dashboard and ``num_cpus`` logical CPUs (default: the machine's); ``address``
    (``ray://host:10001`` or ``auto``) joins an existing cluster instead. HTTP listens on ``host``
    (default 127.0.0.1: reachable from this machine only) and ``port`` (default 8000). Stop with
    :func:`stop`, which drains in-flight requests, then ``ray.shutdown()``.
    """
    ray = require("ray", "dynashape serve")
    serve = require("ray.serve", "dynashape serve")
    host = host or "127.0.0.1"
    port = 8000 if port is None else int(port)
    if not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level="WARNING")
        else:
            # NOTE: the node address is pinned to loopback: nothing outside this machine can reach
            # the cluster's ports unless the user asks for another host.
            ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, logging_level="WARNING",
                     num_cpus=num_cpus or os.cpu_count() or 1)
    serve.start(http_options={"host": host, "port": port})
    serve.run(application, name=name or model, route_prefix="/", blocking=False)
    return f"http://{host}:{port}/v2/models/{model}"


def stop() -> None:
    """Stop Ray Serve after answering every in-flight request (up to each deployment's graceful timeout).

    NOTE: ``ray.serve.shutdown()`` alone kills the HTTP proxy at once (Ray 2.60), so a client
    whose request is still running loses its connection without an answer. Deleting the
    applications first stops their replicas gracefully while the proxy still stands: each
    in-flight request is answered (a replica runs what its batcher holds before it exits), new
    ones get 404 for the removed route, and only then does the proxy go.
    """
    serve = require("ray.serve", "dynashape serve")
    for name in list(serve.status().applications):
        serve.delete(name)
    serve.shutdown()
