"""Progress on stderr for the steps that take long: export, verification, build per profile, validation.

Every stage prints one line when it starts: ``[dynashape 12.3s] build: profile 2 of 3 (inductor)``,
the time counted from the start of the outermost stage. On by default, from the Python API too:
``quiet=True`` on a call (or ``--quiet`` on the CLI) silences it. Stages nest (a build that exports
first prints both); a stage that took over two seconds also prints when it is done.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

# NOTE: a ContextVar, not a module global: two threads building at once each keep their own
# quiet setting and their own clock.
_quiet: ContextVar[bool] = ContextVar("dynashape_quiet", default=False)
_start: ContextVar[float | None] = ContextVar("dynashape_progress_start", default=None)
_default_quiet = False

# Stages shorter than this print no "done" line.
_LONG_S = 2.0


def set_default_quiet(quiet: bool) -> None:
    """The process-wide default (the CLI's ``--quiet``); a call's ``quiet=`` overrides it."""
    global _default_quiet
    _default_quiet = quiet


def is_quiet() -> bool:
    return _default_quiet or _quiet.get()


@contextmanager
def scope(quiet: bool | None) -> Iterator[None]:
    """Apply a public call's ``quiet`` argument (None: keep the surrounding setting) for its duration."""
    qtok = _quiet.set(bool(quiet)) if quiet is not None else None
    stok = _start.set(time.perf_counter()) if _start.get() is None else None
    try:
        yield
    finally:
        if stok is not None:
            _start.reset(stok)
        if qtok is not None:
            _quiet.reset(qtok)


def say(text: str) -> None:
    """One progress line (nothing when quiet)."""
    if is_quiet():
        return
    start = _start.get()
    elapsed = time.perf_counter() - start if start is not None else 0.0
    print(f"[dynashape {elapsed:5.1f}s] {text}", file=sys.stderr, flush=True)


@contextmanager
def stage(what: str, *, k: int | None = None, n: int | None = None) -> Iterator[None]:
    """A step: announced when it starts; when it took over two seconds, its duration when it ends."""
    label = f"{what} ({k} of {n})" if k is not None and n is not None else what
    stok = _start.set(time.perf_counter()) if _start.get() is None else None
    t = time.perf_counter()
    say(f"{label} ...")
    try:
        yield
        dt = time.perf_counter() - t
        if dt > _LONG_S:
            say(f"{label}: done in {dt:.1f} s")
    finally:
        if stok is not None:
            _start.reset(stok)


@contextmanager
def warnings_summary(what: str) -> Iterator[None]:
    """Collect the Python warnings a step raises (torch's and transformers' exporters raise dozens)
    and print one line that counts them by category; each one goes to the debug log (``-v``)."""
    import logging
    import warnings
    from collections import Counter

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    if not caught:
        return
    log = logging.getLogger("dynashape")
    for w in caught:
        log.debug("%s: %s: %s", what, w.category.__name__, str(w.message).splitlines()[0] if str(w.message) else "")
    counts = Counter(w.category.__name__ for w in caught)
    text = ", ".join(f"{n} {c}" for c, n in counts.most_common())
    say(f"{what}: {len(caught)} warning(s) from torch and the model ({text}); logged at debug level")


P = ParamSpec("P")
R = TypeVar("R")


def honours_quiet(fn: Callable[P, R]) -> Callable[P, R]:
    """For a public call with a ``quiet: bool | None`` keyword: its progress follows that keyword."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        quiet = kwargs.get("quiet")
        with scope(quiet if isinstance(quiet, bool) else None):
            return fn(*args, **kwargs)

    return wrapper
