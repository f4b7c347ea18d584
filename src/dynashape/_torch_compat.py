"""Shape arithmetic of older torch releases that guards dims for no reason, fixed while a build traces.

Torch 2.11's meta function for pooling output sizes (``torch._meta_registrations.div_rtn``, used by
``pooling_output_shape_pad_lr`` for every max/avg pool) was ported from C++, where ``/`` truncates::

    q = x // y; r = x % y
    if r != 0 and (bool(r < 0) != bool(y < 0)): q -= 1

Python's ``//`` already rounds toward negative infinity and ``%`` takes the divisor's sign, so the
correction never applies and the result is always ``x // y``. But with symbolic sizes ``r != 0`` is
evaluated first and records a guard on the parity of the pool's input: ResNet's stem (a stride-2 conv,
then a 3x3 stride-2 max pool) guards ``((H - 1) // 2) % 2 != 0``. torch.export then refuses a plain
``Dim`` for H and W, and the guard split (:mod:`._backend.guard_split`) builds four packages (two
classes of H times two of W) where one serves every size. Measured on an H200 (2026-11-30, torch
2.11): FCN-ResNet50 and DeepLabV3-ResNet50 were built as 4 general packages plus the aligned one,
which made their dynamic builds 2.2-3.1x a static build. Torch 2.13 defines ``div_rtn`` as ``x // y``.

:func:`exact_shape_arithmetic` gives the old releases that definition while it is held: the value is the
same for every integer, so no trace changes except that the guard is gone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_holders = 0  # builds holding the fix now (threads of one process): the last one out restores
_saved: Any = None


def _floor_div(x: Any, y: Any) -> Any:
    """Division rounded toward negative infinity: Python's ``//`` (for ints and SymInts alike)."""
    return x // y


@contextlib.contextmanager
def exact_shape_arithmetic(torch: Any) -> Iterator[None]:
    """While held, pooling output sizes are computed with ``//`` and guard nothing (see the module
    docstring). A no-op on releases whose meta functions have no ``div_rtn``.

    NOTE: a module global, so every pooling meta function of this process sees it while held; another
    thread's trace then computes the same values without the guard, and nothing else changes. Builds
    in several threads share one replacement, restored when the last of them lets go.
    """
    global _holders, _saved
    module: Any = getattr(torch, "_meta_registrations", None)
    if getattr(module, "div_rtn", None) is None:
        yield
        return
    with _lock:
        if _holders == 0:
            _saved = module.div_rtn
            module.div_rtn = _floor_div
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                module.div_rtn = _saved
                _saved = None
