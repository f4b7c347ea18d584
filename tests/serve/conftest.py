"""One bert_like ONNX Runtime engine for the serve tests, with a wider batch range than the suite's."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dynashape

# batch 1..16 so that batches of several requests fit one profile; seq 4..64.
SERVE_DIMS = {"batch": (1, 4, 16), "seq": (4, 16, 64)}


@pytest.fixture(scope="session")
def serve_engine(bert_onnx: str) -> dynashape.Engine:
    return dynashape.build(bert_onnx, dims=SERVE_DIMS, backend="onnxruntime")


@pytest.fixture(scope="session")
def serve_engine_file(tmp_path_factory: pytest.TempPathFactory, serve_engine: dynashape.Engine) -> Path:
    path = tmp_path_factory.mktemp("serve") / "bert_like.engine"
    serve_engine.save(path)
    return path


def tokens(batch: int, seq: int, seed: int) -> dict[str, np.ndarray]:
    """bert_like inputs; the last row carries a padded tail so the mask matters."""
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[-1, max(1, seq - 3):] = 0
    return {"input_ids": rng.integers(0, 100, (batch, seq), dtype=np.int64), "attention_mask": mask}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def make_free_port():  # type: ignore[no-untyped-def]
    return free_port


@pytest.fixture(scope="session")
def make_tokens():  # type: ignore[no-untyped-def]
    return tokens


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray cluster (node on 127.0.0.1, 2 CPUs) for every serve test: it takes ~10 s to start."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.serve")
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2, logging_level="ERROR",
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
