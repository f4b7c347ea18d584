"""The one atomic writer (dynashape._io): regular files only, links followed, mode kept, never half a file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dynashape import DynashapeError
from dynashape._io import PendingFile, destination, open_atomic, private_cache_dir, write_atomic


def test_new_file_gets_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a.bin", b"abc")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["a.bin"]


def test_overwrite_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")
    os.chmod(path, 0o604)
    write_atomic(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o604


def test_symlink_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "store" / "model.engine"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "current.engine"
    link.symlink_to(real)
    write_atomic(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(os.listdir(real.parent)) == ["model.engine"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "store" / "new.engine")
    write_atomic(dangling, b"x")
    assert (tmp_path / "store" / "new.engine").read_bytes() == b"x" and dangling.is_symlink()


def test_device_nodes_folders_and_pipes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DynashapeError, match=r"output file '/dev/null' is a character device \| a regular file"):
        write_atomic("/dev/null", b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode), "the node is still a device"
    with pytest.raises(DynashapeError, match="is a folder"):
        write_atomic(tmp_path, b"x")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DynashapeError, match="is a named pipe"):
        write_atomic(fifo, b"x")
    link = tmp_path / "null-link"
    link.symlink_to("/dev/null")
    with pytest.raises(DynashapeError, match=r"a link to '/dev/null'\) is a character device"):
        write_atomic(link, b"x")
    assert sorted(os.listdir(tmp_path)) == ["null-link", "pipe"]


def test_missing_folder_and_permission_denied(tmp_path: Path) -> None:
    with pytest.raises(DynashapeError, match=r"folder '.*/missing' does not exist \| .* \| mkdir -p"):
        write_atomic(tmp_path / "missing" / "a.bin", b"x")
    assert not (tmp_path / "missing").exists()
    # NOTE: root may write anywhere, so the permission case uses a read-only file system (/proc).
    with pytest.raises(DynashapeError, match="cannot write output file '/proc/dynashape-test'"):
        write_atomic("/proc/dynashape-test", b"x")


@pytest.mark.parametrize("fault", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file(tmp_path: Path, fault: BaseException) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises((DynashapeError, KeyboardInterrupt)) as e:
        with open_atomic(path) as f:
            f.write(b"half")
            raise fault
    if isinstance(fault, OSError):
        assert "No space left on device" in str(e.value) and "the old file, if any, is unchanged" in str(e.value)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"], "no temporary file is left"


def test_pending_file(tmp_path: Path) -> None:
    p = PendingFile(tmp_path / "out.onnx", what="ONNX file")
    Path(p.tmp).write_bytes(b"data")
    assert not (tmp_path / "out.onnx").exists()
    p.commit()
    p.discard()  # after commit: nothing to do
    assert (tmp_path / "out.onnx").read_bytes() == b"data" and os.listdir(tmp_path) == ["out.onnx"]
    q = PendingFile(tmp_path / "other.onnx")
    q.discard()
    assert os.listdir(tmp_path) == ["out.onnx"]
    assert destination(tmp_path / "new")[1] is None


def test_private_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from dynashape import _io

    monkeypatch.setattr(_io, "_fallback", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = private_cache_dir("aoti")
    assert folder == str(tmp_path / "dynashape" / "aoti")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700 and stat.S_IMODE(os.stat(tmp_path / "dynashape").st_mode) == 0o700
    os.chmod(tmp_path / "dynashape", 0o777)
    other = private_cache_dir("aoti")
    assert other != folder and stat.S_IMODE(os.stat(other).st_mode) == 0o700
    assert "is writable by others (mode 777)" in caplog.text
    assert private_cache_dir("aoti") == other, "one fallback folder per process"
