"""The corpus holds at least 500 cases (parametrized items plus hypothesis examples)."""

from __future__ import annotations

import pytest

from .conftest import FUZZ_DIR, MIN_CASES, corpus_count


def test_corpus_size(request: pytest.FixtureRequest) -> None:
    n, modules = corpus_count(request.config)
    every = {p.name for p in FUZZ_DIR.glob("test_*.py")}
    if modules != every:
        pytest.skip(f"only part of the corpus was collected ({len(modules)} of {len(every)} modules)")
    assert n >= MIN_CASES, f"the fuzz corpus has {n} cases; it should have at least {MIN_CASES}"


