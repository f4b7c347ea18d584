"""The Ray Serve application: replicas that each load the engine and batch in front of it, behind a thin HTTP ingress."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._deps import require
from .._errors import DynashapeError
from ._batcher import Batcher, default_workers
from ._protocol import ModelEndpoint


class PlanPadding:
    """What a plan lets the server do: pad along ``ladder`` (dim -> buckets) with ``pad_values`` and
    ``crops``, and prefer ``batch_sizes`` (Triton); all empty without a plan."""

    def __init__(self, ladder: Mapping[str, Sequence[int]] | None = None, pad_values: Mapping[str, float] | None = None,
                 crops: Mapping[str, Sequence[tuple[int, int, int]]] | None = None, batch_sizes: Sequence[int] = ()) -> None:
        self.ladder = dict(ladder or {})
        self.pad_values = dict(pad_values or {})
        self.crops = dict(crops or {})
        self.batch_sizes = tuple(batch_sizes)


def read_plan(plan_path: str | os.PathLike[str] | None, engine: Any) -> PlanPadding:
    """The plan's bucket ladder (from ``plan_path``, else the plan the engine was built from).

    NOTE: a ladder along a non-batch dim is used for padding only where the build's padding verdict
    (``Plan.padding``, stored in the engine's manifest by ``build --plan``) says safe; otherwise
    requests share a batch only at identical shapes. A ladder along the batch dim becomes Triton's
    preferred batch sizes.
    """
    from .._plan.record import Plan

    built = getattr(engine.manifest, "plan", None)
    plan = Plan.load(plan_path) if plan_path is not None else built
    if plan is None or plan.ladder is None:
        return PlanPadding()
    if plan.ladder.dim == _batch_dim(engine):
        return PlanPadding(batch_sizes=plan.ladder.buckets)
    padding = plan.padding or (built.padding if built is not None else None)
    if padding is None or not padding.safe:
        return PlanPadding()
    return PlanPadding({plan.ladder.dim: plan.ladder.buckets}, padding.pad_values, padding.crop)


def _batch_dim(engine: Any) -> str | None:
    from ._batching import BatchPolicy

    return BatchPolicy(engine).batch_dim


class ModelReplica:
    """One Ray Serve replica: the engine, its batcher and the v2 routes (a plain class; Ray wraps it)."""

    def __init__(self, engine_path: str, name: str, options: dict[str, Any]) -> None:
        import dynashape

        self.engine = dynashape.load(engine_path)
        padding = read_plan(options.get("plan"), self.engine)
        self.batcher = Batcher(self.engine, max_batch=options.get("max_batch"), max_delay_ms=options.get("max_delay_ms"),
                               max_queue=options.get("max_queue"), workers=options.get("workers"),
                               ladder=padding.ladder, pad_values=padding.pad_values, crops=padding.crops)
        self.endpoint = ModelEndpoint(name, self.engine, self.batcher)

    async def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request as plain values (the :class:`HttpIngress` forwards here)."""
        return await self.endpoint.handle(method, path, headers, body)

    async def check_health(self) -> None:
        """Ray Serve's health probe: a replica whose engine is loaded is healthy."""

    async def __del__(self) -> None:
        # NOTE: Ray Serve waits for in-flight requests (graceful_shutdown_timeout_s) before calling
        # this; close() then answers anything still queued instead of dropping it.
        self.endpoint.ready = False
        await self.batcher.close()


REPLICA_DIED = ("the request's replica died before answering (Ray restarts it)",
                None, "retry the request: inference has no side effects")


class HttpIngress:
    """The HTTP side of the application: forwards each request to a :class:`ModelReplica` and
    answers for it when the replica dies.

    NOTE: a replica that dies (a crash, an out-of-memory kill, a lost node) cannot answer its own
    in-flight requests, and Ray's proxy would answer them 500 in plain text. This thin ingress,
    a separate actor without CPUs of its own, turns that into the protocol's 503 with a
    ``Retry-After`` header. It does not retry by itself: a request that crashes the engine
    (a backend abort on some input) would take down a second replica and every request batched
    with it there; inference has no side effects, so the client retries (tritonclient and KServe
    clients treat 503 as retryable). Ray Serve's controller restarts the dead replica; requests
    sent meanwhile wait in the handle's queue for it (or go to another replica).
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    async def __call__(self, request: Any) -> Any:
        from ray.exceptions import RayActorError
        from starlette.responses import Response

        from ._protocol import error_response

        path = request.url.path
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            status, out_headers, payload = await self.model.respond.remote(request.method, path, headers, body)
        except RayActorError:
            status, out_headers, payload = error_response(503, str(DynashapeError(*REPLICA_DIED)))
            out_headers = {**out_headers, "retry-after": "1"}
        return Response(payload, status_code=status, headers=out_headers)


def app(engine_path: str | os.PathLike[str], *, name: str | None = None, plan: str | os.PathLike[str] | None = None,
        replicas: int | None = None, max_batch: int | None = None, max_delay_ms: float | None = None,
        max_queue: int | None = None, workers: int | None = None, num_cpus: float | None = None,
        graceful_shutdown_s: float | None = None) -> Any:
    """A Ray Serve application serving one engine over the Open Inference Protocol v2.

    ``serve.run(dynashape.serve.app("bert.engine"), route_prefix="/")`` then answers
    ``POST /v2/models/bert/infer``. ``name`` defaults to the engine file's stem. Each replica
    reserves one GPU (CUDA engines) or ``num_cpus`` CPUs (default 1) and loads the engine from
    ``engine_path``, which must be readable at that path on every node that runs a replica.
    ``replicas`` defaults to 1. Batching: ``max_batch`` rows (default 8; 1 turns it off),
    ``max_delay_ms`` (default 2), ``max_queue`` waiting requests per replica (default 256, then 503),
    ``workers`` engine calls at once per replica (default 2 on the CPU, 1 on CUDA). ``plan``: a plan file from
    ``dynashape plan`` (bucket ladder; padding only where the build found it safe).
    """
    serve = require("ray.serve", "dynashape.serve")
    from .._engine.file import read_engine

    engine_path = os.path.abspath(os.fspath(engine_path))
    manifest, _ = read_engine(engine_path)  # a bad file fails here, not in every replica
    name = name or os.path.splitext(os.path.basename(engine_path))[0]
    if "/" in name or not name:
        raise DynashapeError(f"model name {name!r}", "a name without '/'", "pass --name NAME")
    replicas = 1 if replicas is None else int(replicas)
    if replicas < 1:
        raise DynashapeError(f"replicas={replicas}", "at least 1")
    plan_path = None if plan is None else os.path.abspath(os.fspath(plan))
    if plan_path is not None:
        from .._plan.record import Plan

        Plan.load(plan_path)  # fail early on a bad plan file
    options = {"max_batch": max_batch, "max_delay_ms": max_delay_ms, "max_queue": max_queue, "workers": workers,
               "plan": plan_path}
    queue = 256 if max_queue is None else int(max_queue)
    in_flight = (8 if max_batch is None else int(max_batch)) * (default_workers(manifest.device) if workers is None else int(workers))
    actor: dict[str, Any] = {"num_cpus": 1 if num_cpus is None else num_cpus}
    if manifest.device.startswith("cuda"):
        actor["num_gpus"] = 1
    model = serve.deployment(
        ModelReplica,
        name=name,
        num_replicas=replicas,
        ray_actor_options=actor,
        # NOTE: Ray lets every queued request through to the replica's batcher, which owns the bound
        # (503 with the protocol's JSON error beyond max_queue). Ray's router queue in front of it
        # fills only when every replica already holds max_ongoing_requests; its cap is a safety net
        # for memory (Ray answers 503 in plain text there), kept wide so that requests that merely
        # arrive together pass through it.
        max_ongoing_requests=queue + in_flight,
        max_queued_requests=max(4 * queue, 64) * replicas,
        graceful_shutdown_timeout_s=20.0 if graceful_shutdown_s is None else graceful_shutdown_s,
        # NOTE: the controller learns of a dead replica from a failed health check; 2 s (Ray's
        # default is 10) starts its replacement sooner, for one no-op call per replica each period.
        health_check_period_s=2.0,
    )
    ingress = serve.deployment(
        HttpIngress,
        name=f"{name}_http",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": 0},
        max_ongoing_requests=queue + in_flight,
        max_queued_requests=max(4 * queue, 64) * replicas,
        graceful_shutdown_timeout_s=20.0 if graceful_shutdown_s is None else graceful_shutdown_s,
    )
    return ingress.bind(model.bind(engine_path, name, options))
