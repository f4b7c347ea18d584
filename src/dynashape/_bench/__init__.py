"""Measure and compare engines: trtexec-style latency reports (:mod:`.timing`) and parity checks (:mod:`.compare`)."""

from __future__ import annotations

from .compare import CompareResult, compare
from .timing import BenchResult, bench, runtime_overhead

__all__ = ["BenchResult", "CompareResult", "bench", "compare", "runtime_overhead"]
