"""Bounds on the numbers a user (or a file) hands to dynashape: threads, dims, tensor sizes, timings.

Each check raises a :class:`DynashapeError` that says what was received, what is allowed and what to
do, so that an absurd value is refused at the boundary instead of crashing a runtime or allocating
for minutes.
"""

from __future__ import annotations

import math
import numbers
import os

from ._errors import DynashapeError, ProfileError

# NOTE: a shape's element count must fit a signed 64-bit integer: that is the index type of ONNX
# Runtime, PyTorch and TensorRT (>= 10); past it, products wrap around silently.
MAX_ELEMENTS = 2**63 - 1

# NOTE: one input or output of more than 16 GiB is far beyond any inference workload this project
# targets (an H200 holds 141 GB in all), while 1x3x100000x100000 fp32 (120 GB) is a typo that
# builds in 0.1 s and fails only when something allocates. The bound is per tensor, from the
# profile's max shape and the input's dtype; DYNASHAPE_MAX_TENSOR_BYTES raises or lowers it.
DEFAULT_MAX_TENSOR_BYTES = 16 * 2**30
MAX_TENSOR_BYTES_ENV = "DYNASHAPE_MAX_TENSOR_BYTES"

# NOTE: ONNX Runtime creates one OS thread per intra-op thread when the session starts: 1024 threads
# took 20 s to start on the 2-core CI machines and 100000 crashed the process. More threads than 4
# per core never helps a CPU-bound inference, so 4 x cores (at most 1024) is the bound.
HARD_MAX_THREADS = 1024


def max_threads() -> int:
    """The largest thread count accepted on this machine: 4 per core, at most 1024."""
    return max(1, min(HARD_MAX_THREADS, 4 * (os.cpu_count() or 1)))


def max_tensor_bytes() -> int:
    """The per-tensor byte limit: ``DYNASHAPE_MAX_TENSOR_BYTES`` if set, else 16 GiB."""
    text = os.environ.get(MAX_TENSOR_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_TENSOR_BYTES
    if not text.isdecimal() or int(text) < 1:
        raise DynashapeError(
            f"{MAX_TENSOR_BYTES_ENV}={text!r}",
            "a positive number of bytes, e.g. 34359738368 for 32 GiB",
            f"fix or unset {MAX_TENSOR_BYTES_ENV}",
        )
    return int(text)


def is_integer(value: object) -> bool:
    """True for Python and numpy integers; False for bools, floats and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def check_threads(value: object, what: str = "threads") -> int | None:
    """None (the backend's default) or an integer in 1..:func:`max_threads`."""
    if value is None:
        return None
    top = max_threads()
    if not is_integer(value) or not 1 <= int(value) <= top:  # type: ignore[call-overload]
        raise DynashapeError(
            f"{what}={value!r}",
            f"an integer from 1 to {top} (4 per core on this {os.cpu_count()}-core machine, at most {HARD_MAX_THREADS})",
            "leave it unset to use every core",
        )
    return int(value)  # type: ignore[call-overload]


def element_count(shape: tuple[int, ...], what: str) -> int:
    """The number of elements of ``shape``, refused when it does not fit a signed 64-bit integer."""
    n = math.prod(shape)
    if n > MAX_ELEMENTS:
        raise ProfileError(
            f"{what} {'x'.join(map(str, shape))} has {n:.3g} elements",
            "at most 2**63 - 1 elements per tensor (the index type of every runtime)",
            "check the dims for a typo",
        )
    return n


def check_tensor_bytes(shape: tuple[int, ...], itemsize: int, what: str) -> None:
    """Refuse a shape whose tensor would exceed :func:`max_tensor_bytes`."""
    nbytes = element_count(shape, what) * itemsize
    limit = max_tensor_bytes()
    if nbytes > limit:
        raise ProfileError(
            f"{what} {'x'.join(map(str, shape))} needs {nbytes / 2**30:.3g} GiB",
            f"at most {limit / 2**30:.3g} GiB per tensor",
            f"check the dims for a typo, or set {MAX_TENSOR_BYTES_ENV} (bytes) to allow more",
        )


def check_number(value: object, what: str, *, minimum: float = 0.0, integer: bool = False,
                 positive: bool = False) -> float:
    """A finite real number >= ``minimum`` (> 0 with ``positive``), an integer with ``integer``."""
    ok = (is_integer(value) if integer else isinstance(value, numbers.Real) and not isinstance(value, bool))
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(v) and v >= minimum and (v > 0 or not positive)
    if not ok:
        kind = "an integer" if integer else "a finite number"
        bound = f"> {minimum:g}" if positive else f">= {minimum:g}"
        raise DynashapeError(f"{what}={value!r}", f"{kind} {bound}", f"pass {what} as {kind} {bound}")
    return float(value)  # type: ignore[arg-type]
