"""Serve engines over the Open Inference Protocol v2 (KServe v2 / Triton HTTP) with shape-aware batching.

On Ray Serve::

    from ray import serve
    import dynashape.serve

    serve.run(dynashape.serve.app("bert.engine", max_batch=16, max_delay_ms=2), route_prefix="/")
    # POST http://127.0.0.1:8000/v2/models/bert/infer

or from the command line: ``dynashape serve --loadEngine bert.engine``. The pieces work without Ray
too: :class:`Batcher` is a plain asyncio class, :class:`ModelEndpoint` answers the protocol's
routes from bytes, :func:`run_grouped` batches a list of requests synchronously (Triton's Python
backend uses it), and :func:`export_triton` writes a Triton model repository.

``import dynashape.serve`` does not import Ray; :func:`app` does.
"""

from ._app import ModelReplica, app, read_plan
from ._batcher import Batcher, BatcherStats, Overloaded
from ._batching import BatchPolicy, run_grouped
from ._protocol import ModelEndpoint, ProtocolError
from ._server import start, stop
from ._triton import export_triton, triton_config

__all__ = [
    "BatchPolicy",
    "Batcher",
    "BatcherStats",
    "ModelEndpoint",
    "ModelReplica",
    "Overloaded",
    "ProtocolError",
    "app",
    "export_triton",
    "read_plan",
    "run_grouped",
    "start",
    "stop",
    "triton_config",
]
