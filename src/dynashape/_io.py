"""Files dynashape writes: the one atomic writer, and the private per-user cache folder.

Every output file (engine files, ONNX exports, ``check --fix`` output, ``run --output`` arrays,
benchmark results) goes through :func:`atomic_output` / :func:`write_atomic`:

* the destination must be a regular file or not exist yet: a folder, a device node (``/dev/null``,
  a trtexec habit), a FIFO or a socket is refused with a clear error and left as it is;
* NOTE: a symlink is followed: the file it points to is replaced atomically and the link stays.
  That is what ``cp`` and trtexec do, and it keeps a link into a model store working;
* the data goes to a temporary name in the destination's folder (same file system), is flushed and
  fsynced, and is renamed over the destination, so a reader sees the old file or the new one, never
  half of one; the temporary file is removed on any exception, KeyboardInterrupt included;
* an existing destination keeps its mode (and, where the process may, its owner and group); a new
  file gets ``0o666 & ~umask``, as ``open(path, "w")`` would give it;
* a missing folder or a folder the process may not write to is one clear error.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from ._errors import DynashapeError

log = logging.getLogger("dynashape")

_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")]


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def destination(path: str | os.PathLike[str], *, what: str = "output file",
                error: type[DynashapeError] = DynashapeError) -> tuple[str, os.stat_result | None]:
    """The file to write for ``path`` (symlinks resolved) and its current stat, or None if new.

    Raises ``error`` for a folder, a device node or another non-regular file, and for a missing folder.
    """
    path = os.fspath(path)
    if not path:
        raise error(f"an empty {what} path", "a file name", "give the file a name")
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise error(f"{what} '{path}' cannot be inspected ({e.strerror})", "a path this process may write",
                    "check the path and its permissions") from e
    if st is not None and not stat.S_ISREG(st.st_mode):
        via = f" (a link to '{target}')" if target != os.path.abspath(path) else ""
        raise error(f"{what} '{path}'{via} is {_kind(st.st_mode)}", "a regular file, or a new file name",
                    "give a file name (e.g. model.engine); dynashape never writes into a device node or over a folder")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise error(f"folder '{folder}' does not exist", f"an existing folder for the {what}", f"mkdir -p {folder}")
    return target, st


class PendingFile:
    """A temporary file beside ``path``: write to :attr:`tmp`, then :meth:`commit` (fsync, keep the
    destination's mode, rename) or :meth:`discard`. For code that cannot sit in one ``with`` block;
    :func:`atomic_output` is the same as a context manager."""

    def __init__(self, path: str | os.PathLike[str], *, what: str = "output file",
                 error: type[DynashapeError] = DynashapeError) -> None:
        self.target, self._st = destination(path, what=what, error=error)
        self._what, self._error = what, error
        self.tmp = _create_temp(os.path.dirname(self.target), os.path.basename(self.target), what, error)
        self.done = False

    def commit(self) -> None:
        _finish(self.tmp, self.target, self._st, self._what, self._error)
        self.done = True

    def discard(self) -> None:
        """Remove the temporary file unless committed; safe to call more than once."""
        if not self.done:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.done = True


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, what: str = "output file",
                  error: type[DynashapeError] = DynashapeError) -> Iterator[str]:
    """A temporary path to write to; on success it is fsynced and renamed onto ``path``.

    For writers that need a file name (``onnx.save``). See the module docstring.
    """
    pending = PendingFile(path, what=what, error=error)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str], *, what: str = "output file",
                error: type[DynashapeError] = DynashapeError) -> Iterator[IO[bytes]]:
    """A binary file object to write to; on success the file replaces ``path`` atomically."""
    with atomic_output(path, what=what, error=error) as tmp:
        with open(tmp, "wb") as f:
            try:
                yield f
            except OSError as e:
                raise _os_error(e, path, what, error) from e


def write_atomic(path: str | os.PathLike[str], data: bytes | str | Iterable[bytes], *, what: str = "output file",
                 error: type[DynashapeError] = DynashapeError) -> None:
    """Write ``data`` (bytes, text as UTF-8, or chunks of bytes) to ``path`` atomically."""
    chunks: Iterable[bytes] = [data.encode()] if isinstance(data, str) else [data] if isinstance(data, bytes) else data
    with open_atomic(path, what=what, error=error) as f:
        for chunk in chunks:
            f.write(chunk)


def _create_temp(folder: str, base: str, what: str, error: type[DynashapeError]) -> str:
    # NOTE: not tempfile.mkstemp: it creates the file 0o600, and a new output file must get the
    # usual 0o666 & ~umask. os.open applies the umask (and a folder's default ACL) itself, and
    # O_EXCL with a random name is what mkstemp does to be safe in a shared folder.
    for _ in range(100):
        tmp = os.path.join(folder, f".{base[:80]}.{secrets.token_hex(6)}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise _os_error(e, os.path.join(folder, base), what, error) from e
        os.close(fd)
        return tmp
    raise error(f"cannot create a temporary file in '{folder}'", "a folder this process may write")


def _finish(tmp: str, target: str, st: os.stat_result | None, what: str, error: type[DynashapeError]) -> None:
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
            if st is not None:
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
                if hasattr(os, "fchown") and (st.st_uid, st.st_gid) != (os.fstat(fd).st_uid, os.fstat(fd).st_gid):
                    with contextlib.suppress(OSError):  # only root may give a file away
                        os.fchown(fd, st.st_uid, st.st_gid)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
            dfd = os.open(os.path.dirname(target), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as e:
        raise _os_error(e, target, what, error) from e


def _os_error(e: OSError, path: str | os.PathLike[str], what: str, error: type[DynashapeError]) -> DynashapeError:
    path = os.fspath(path)
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        folder = os.path.dirname(os.path.abspath(path))
        return error(f"cannot write {what} '{path}': {e.strerror}", f"a folder this process may write ('{folder}')",
                     "write somewhere else or fix the folder's permissions")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return error(f"cannot write {what} '{path}': {e.strerror}", "free space for the file",
                     "free disk space or write elsewhere; the old file, if any, is unchanged")
    return error(f"cannot write {what} '{path}': {e.strerror or e}", "a writable regular file path", "check the path")


# -- the private per-user cache ---------------------------------------------------------------------

def _cache_root() -> str:
    # NOTE: one root for every dynashape cache (packages, Inductor's compile cache, calibrations):
    # $DYNASHAPE_CACHE_DIR when set, so a benchmark or a test can use a throwaway root.
    own = os.environ.get("DYNASHAPE_CACHE_DIR")
    if own and os.path.isabs(own):
        return own
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dynashape")


def _unsafe(path: str) -> str | None:
    """Why ``path`` is not a folder only this user can write, or None if it is."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"cannot be inspected ({e.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"is {_kind(st.st_mode)}"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    if st.st_mode & 0o022:
        return f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    parent = os.lstat(os.path.dirname(path))
    if parent.st_mode & 0o002 and not parent.st_mode & stat.S_ISVTX:
        return "is inside a world-writable folder without the sticky bit"
    return None


_fallback: dict[str, str] = {}


def private_cache_dir(name: str) -> str:
    """``$DYNASHAPE_CACHE_DIR/<name>``, else ``$XDG_CACHE_HOME/dynashape/<name>`` (or ``~/.cache/dynashape/<name>``), created 0700.

    NOTE: files in this folder are loaded as native code, so the folder must be this user's alone:
    owned by this uid, writable by nobody else, not a link. If the folder (or ``dynashape/`` above
    it) fails that, the cache is not used: a fresh private temporary folder serves this process
    instead, and a warning names the folder and why. Callers still re-hash every file they reuse.
    """
    root = _cache_root()
    folder = os.path.join(root, name)
    why = None
    try:
        os.makedirs(os.path.dirname(root), exist_ok=True)
        for p in (root, folder):
            with contextlib.suppress(FileExistsError):
                os.mkdir(p, 0o700)
            why = _unsafe(p)
            if why:
                folder = p
                break
    except OSError as e:
        why = f"cannot be created ({e.strerror})"
    if why is None:
        return folder
    if name not in _fallback:
        _fallback[name] = tempfile.mkdtemp(prefix=f"dynashape-{name}-")  # 0700, owned by this user
        atexit.register(shutil.rmtree, _fallback[name], True)
        log.warning("the cache folder '%s' %s; using the private folder '%s' for this process instead "
                    "(fix: chmod 700 or remove '%s')", folder, why, _fallback[name], folder)
    return _fallback[name]
