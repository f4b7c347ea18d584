"""The batcher and the batching policy on a real ONNX Runtime engine, without Ray (fast)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

import dynashape
from dynashape.serve import Batcher, BatchPolicy, Overloaded, run_grouped

TOL = {"rtol": 1e-4, "atol": 1e-5}


def _check(engine: dynashape.Engine, inputs: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    want = engine.run(inputs)
    assert set(got) == set(want)
    for name, w in want.items():
        assert got[name].shape == w.shape, name
        np.testing.assert_allclose(got[name], w, **TOL)


def test_mixed_shapes_concurrently_match_engine_run(serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    tokens = make_tokens
    shapes = [(b, s) for b in (1, 2, 3) for s in (5, 8, 16)] * 3  # 27 requests, 9 shape groups
    requests = [tokens(b, s, seed=i) for i, (b, s) in enumerate(shapes)]

    async def main() -> tuple[list[dict[str, np.ndarray]], Batcher]:
        batcher = Batcher(serve_engine, max_batch=8, max_delay_ms=20)
        outs = await asyncio.gather(*(batcher.infer(r) for r in requests))
        await batcher.close()
        return list(outs), batcher

    outs, batcher = asyncio.run(main())
    for r, o in zip(requests, outs, strict=True):
        _check(serve_engine, r, o)
    st = batcher.stats
    assert st.requests == len(requests)
    assert st.batches < len(requests), "requests of one shape arriving together share a call"
    assert max(st.batch_sizes) <= 8


def test_batches_respect_max_batch_and_the_profile(serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    tokens = make_tokens
    # 10 requests of 3 rows each: at most 2 fit max_batch=7, so calls have 3 or 6 rows, never 9.
    requests = [tokens(3, 8, seed=i) for i in range(10)]

    async def main() -> Batcher:
        batcher = Batcher(serve_engine, max_batch=7, max_delay_ms=50)
        outs = await asyncio.gather(*(batcher.infer(r) for r in requests))
        for r, o in zip(requests, outs, strict=True):
            _check(serve_engine, r, o)
        await batcher.close()
        return batcher

    st = asyncio.run(main()).stats
    assert set(st.batch_sizes) <= {3, 6} and 6 in st.batch_sizes


def test_a_lone_request_waits_no_longer_than_its_delay(serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    tokens = make_tokens
    async def main() -> float:
        batcher = Batcher(serve_engine, max_batch=16, max_delay_ms=30)
        await batcher.infer(tokens(1, 8, 0))  # warm the session
        t0 = time.perf_counter()
        await batcher.infer(tokens(1, 8, 1))
        dt = time.perf_counter() - t0
        await batcher.close()
        return dt

    dt = asyncio.run(main())
    assert 0.025 <= dt < 0.5, dt


def test_full_queue_is_overloaded_and_close_drains(serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    tokens = make_tokens
    async def main() -> None:
        batcher = Batcher(serve_engine, max_batch=16, max_delay_ms=10_000, max_queue=3)
        tasks = [asyncio.create_task(batcher.infer(tokens(1, 8, i))) for i in range(3)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="at most 3 queued"):
            await batcher.infer(tokens(1, 8, 9))
        t0 = time.perf_counter()
        await batcher.close()  # runs the three queued requests now, not after 10 s
        assert time.perf_counter() - t0 < 5
        for i, t in enumerate(tasks):
            _check(serve_engine, tokens(1, 8, i), t.result())
        with pytest.raises(Overloaded, match="shuts down"):
            await batcher.infer(tokens(1, 8, 0))
        assert batcher.stats.rejected == 2

    asyncio.run(main())


def test_bad_requests_fail_alone_with_the_engine_message(serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    tokens = make_tokens
    async def main() -> None:
        batcher = Batcher(serve_engine, max_delay_ms=5)
        good = asyncio.create_task(batcher.infer(tokens(1, 8, 0)))
        with pytest.raises(dynashape.ShapeError, match="outside every profile"):
            await batcher.infer(tokens(1, 100, 0))
        bad = tokens(1, 8, 0)
        bad["input_ids"] = bad["input_ids"].astype(np.int32)
        with pytest.raises(dynashape.DynashapeError, match="dtype int32"):
            await batcher.infer(bad)
        _check(serve_engine, tokens(1, 8, 0), await good)
        await batcher.close()

    asyncio.run(main())


def test_padding_ladder_pads_batches_and_crops(serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    tokens = make_tokens
    # bert_like masks padded keys with -1e4 before the softmax: padding seq with mask 0 is safe.
    policy = BatchPolicy(serve_engine, ladder={"seq": [8, 16, 32]})
    assert policy.batch_dim == "batch"
    requests = [tokens(1, s, seed=s) for s in (5, 6, 7, 8, 11, 40)]
    prepared = [policy.prepare(r) for r in requests]
    assert [p.key[0] for p in prepared] == [(8,)] * 4 + [(16,), (40,)]  # 40 lies above the ladder
    outs = run_grouped(policy, requests)
    for r, o in zip(requests, outs, strict=True):
        assert isinstance(o, dict)
        _check(serve_engine, r, o)


def test_unknown_ladder_dim_is_refused(serve_engine: dynashape.Engine) -> None:
    with pytest.raises(dynashape.DynashapeError, match=r"ladder for dim\(s\) \['length'\] \| one dim of the engine's inputs: \['seq'\]"):
        BatchPolicy(serve_engine, ladder={"length": [8]})


def test_run_grouped_keeps_order_and_errors(serve_engine: dynashape.Engine, make_tokens: Any) -> None:
    tokens = make_tokens
    policy = BatchPolicy(serve_engine)
    requests = [tokens(1, 8, 0), tokens(2, 12, 1), tokens(1, 200, 2), tokens(1, 8, 3)]
    outs = run_grouped(policy, requests, max_batch=4)
    assert isinstance(outs[2], dynashape.ShapeError)
    for i in (0, 1, 3):
        out = outs[i]
        assert isinstance(out, dict)
        _check(serve_engine, requests[i], out)


def test_workers_default_to_two_on_the_cpu(serve_engine: dynashape.Engine) -> None:
    from dynashape.serve._batcher import default_workers

    assert serve_engine.device == "cpu" and Batcher(serve_engine).workers == 2
    assert default_workers("cuda:0") == 1 and Batcher(serve_engine, workers=1).workers == 1
