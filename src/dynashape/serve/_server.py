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
    ``ray.serve.shutdown(); ray.shutdown()``; Serve then drains in-flight requests.
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
