"""``dynashape serve`` and ``dynashape export-triton``: thin wrappers over :mod:`dynashape.serve`."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any


def _name(args: argparse.Namespace) -> str:
    return args.name or os.path.splitext(os.path.basename(args.loadEngine))[0]


def cmd_serve(args: argparse.Namespace) -> int:
    import dynashape.serve

    application = dynashape.serve.app(args.loadEngine, name=args.name, plan=args.plan, replicas=args.replicas,
                                      max_batch=args.max_batch, max_delay_ms=args.max_delay_ms,
                                      max_queue=args.max_queue, workers=args.workers)
    import ray

    stop = threading.Event()
    # NOTE: SIGTERM (a service manager, `kill`) stops like Ctrl-C: stop() answers in-flight requests first.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        url = dynashape.serve.start(application, model=_name(args), host=args.host, port=args.port,
                                    address=args.address, num_cpus=args.num_cpus)
        print(f"serving '{_name(args)}' at {url} (Ctrl-C stops)", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if ray.is_initialized():
            dynashape.serve.stop()
            ray.shutdown()
    return 0


def cmd_export_triton(args: argparse.Namespace) -> int:
    import dynashape.serve

    folder = dynashape.serve.export_triton(args.loadEngine, args.output, name=args.name, plan=args.plan,
                                           max_batch=args.max_batch, max_delay_ms=args.max_delay_ms)
    print(f"wrote {folder} (config.pbtxt, 1/model.py, 1/{os.path.basename(folder)}.engine)")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve an engine over HTTP (Open Inference Protocol v2) on Ray Serve, with shape-aware batching")
    p.add_argument("--loadEngine", metavar="FILE", required=True, help="engine file")
    p.add_argument("--plan", metavar="PLAN.json", help="plan from `dynashape plan`: its bucket ladder (padding only where the build found it safe)")
    p.add_argument("--name", help="model name in the URL (default: the engine file's stem)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--replicas", type=int, help="replicas, each on one GPU (CUDA engines) or one CPU (default 1)")
    p.add_argument("--max-batch", type=int, help="most rows per engine call (default 8; 1 turns batching off)")
    p.add_argument("--max-delay-ms", type=float, help="longest wait for batch-mates, in ms (default 2)")
    p.add_argument("--max-queue", type=int, help="waiting requests per replica before answering 503 (default 256)")
    p.add_argument("--workers", type=int, help="engine calls at once per replica (default 2 for CPU engines, 1 for CUDA engines)")
    p.add_argument("--address", help="join this Ray cluster (ray://HOST:10001 or auto) instead of starting a local one")
    p.add_argument("--num-cpus", type=int, help="logical CPUs of the local Ray cluster (default: the machine's)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export-triton", help="write a Triton model repository (Python backend) for an engine")
    p.add_argument("--loadEngine", metavar="FILE", required=True, help="engine file")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="model repository folder (created if missing)")
    p.add_argument("--plan", metavar="PLAN.json", help="plan from `dynashape plan`: its batch ladder becomes preferred_batch_size")
    p.add_argument("--name", help="model name (default: the engine file's stem)")
    p.add_argument("--max-batch", type=int, help="cap max_batch_size (default: the largest batch a profile allows)")
    p.add_argument("--max-delay-ms", type=float, help="dynamic_batching max_queue_delay in ms (default 2)")
    p.set_defaults(func=cmd_export_triton)
