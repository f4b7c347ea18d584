"""Engine files: round trip, atomic saving, and a clear EngineFileError for every kind of bad file."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import dynashape
from dynashape._engine.file import MAGIC, read_engine, write_engine
from dynashape._errors import EngineFileError
from dynashape._records import FORMAT_VERSION, Manifest


def _x(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(h * w).random((1, 3, h, w), dtype=np.float32)


def _load_error(path: Path) -> str:
    with pytest.raises(EngineFileError) as e:
        dynashape.load(path)
    return str(e.value)


def test_round_trip_gives_identical_outputs(tmp_path: Path, seg_engine: dynashape.Engine) -> None:
    path = tmp_path / "seg.engine"
    seg_engine.save(path)
    loaded = dynashape.load(path)
    assert loaded.backend == seg_engine.backend
    assert loaded.inputs == seg_engine.inputs and loaded.outputs == seg_engine.outputs
    assert loaded.profiles == seg_engine.profiles
    assert loaded.manifest.build_settings == seg_engine.manifest.build_settings
    for h, w in [(256, 256), (300, 500), (768, 768)]:
        x = _x(h, w)
        np.testing.assert_array_equal(loaded.run({"input_1": x})["output_1"], seg_engine.run({"input_1": x})["output_1"])
    # Saving the loaded engine writes the same payloads and manifest.
    again = tmp_path / "again.engine"
    loaded.save(again)
    m1, p1 = read_engine(path)
    m2, p2 = read_engine(again)
    assert p1 == p2 and m1 == m2


def test_file_layout(seg_engine_file: Path) -> None:
    blob = seg_engine_file.read_bytes()
    assert blob.startswith(MAGIC)
    n = int.from_bytes(blob[len(MAGIC):len(MAGIC) + 8], "little")
    manifest = json.loads(blob[len(MAGIC) + 8:len(MAGIC) + 8 + n])
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["backend"] == "onnxruntime" and manifest["device"] == "cpu"
    assert sum(p["size"] for p in manifest["payloads"]) == len(blob) - len(MAGIC) - 8 - n


def test_truncated_file(tmp_path: Path, seg_engine_file: Path) -> None:
    blob = seg_engine_file.read_bytes()
    bad = tmp_path / "truncated.engine"
    bad.write_bytes(blob[: len(blob) - 100])
    msg = _load_error(bad)
    assert "is truncated: payload 'model.onnx' ends at byte" in msg and "rebuild or copy the file again" in msg
    bad.write_bytes(blob[: len(MAGIC) + 8 + 10])  # inside the manifest
    assert "is truncated: its manifest needs" in _load_error(bad)
    bad.write_bytes(blob[: len(MAGIC) + 3])  # inside the header
    assert "is truncated (19 bytes)" in _load_error(bad)


def test_flipped_byte_in_payload(tmp_path: Path, seg_engine_file: Path) -> None:
    blob = bytearray(seg_engine_file.read_bytes())
    blob[-50] ^= 0xFF
    bad = tmp_path / "corrupt.engine"
    bad.write_bytes(bytes(blob))
    msg = _load_error(bad)
    assert "is corrupt: payload 'model.onnx' fails its sha256 checksum" in msg


def test_corrupt_manifest(tmp_path: Path, seg_engine_file: Path) -> None:
    blob = bytearray(seg_engine_file.read_bytes())
    blob[len(MAGIC) + 8] = ord("#")  # the manifest's opening brace
    bad = tmp_path / "manifest.engine"
    bad.write_bytes(bytes(blob))
    assert "has a corrupt manifest" in _load_error(bad)


def _rewrite(src: Path, dst: Path, **changes: object) -> None:
    manifest, payloads = read_engine(src)
    write_engine(dst, dataclasses.replace(manifest, **changes), payloads)


def test_newer_format_version(tmp_path: Path, seg_engine_file: Path) -> None:
    bad = tmp_path / "future.engine"
    _rewrite(seg_engine_file, bad, format_version=999, dynashape_version="9.9.9")
    msg = _load_error(bad)
    assert "has engine format version 999 (written by dynashape 9.9.9)" in msg
    assert f"format version {FORMAT_VERSION} or older" in msg and "upgrade dynashape" in msg


def test_cuda_engine_on_a_cpu_machine(tmp_path: Path, seg_engine_file: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    bad = tmp_path / "cuda.engine"
    _rewrite(seg_engine_file, bad, device="cuda")
    msg = _load_error(bad)
    assert "is an engine for cuda, and this machine has no CUDA device" in msg
    assert "rebuild the engine here with --device cpu" in msg


def test_not_an_engine(tmp_path: Path, seg_onnx: str) -> None:
    msg = _load_error(Path(seg_onnx))
    assert "is not a dynashape engine file" in msg and "this looks like an ONNX file: build it first" in msg
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    msg = _load_error(text)
    assert "is not a dynashape engine file (it starts with b'hello')" in msg
    assert "build an engine with `dynashape build`" in msg
    assert "does not exist" in _load_error(tmp_path / "missing.engine")
    assert "does not exist" in _load_error(tmp_path)  # a folder is not a file


def test_unknown_backend_in_manifest(tmp_path: Path, seg_engine_file: Path) -> None:
    bad = tmp_path / "other.engine"
    _rewrite(seg_engine_file, bad, backend="tvm")
    with pytest.raises(dynashape.DynashapeError, match="backend 'tvm'"):
        dynashape.load(bad)


# -- atomic saving ------------------------------------------------------------------------------

def test_save_into_missing_folder(tmp_path: Path, seg_engine: dynashape.Engine) -> None:
    target = tmp_path / "no" / "such" / "folder" / "x.engine"
    with pytest.raises(EngineFileError) as e:
        seg_engine.save(target)
    assert f"folder '{target.parent}' does not exist" in str(e.value) and "mkdir -p" in str(e.value)
    assert not (tmp_path / "no").exists()


class _FailingPayloads(dict):
    """Payloads that fail while being written, as a full disk would: write_engine reads items() for
    the manifest, then writes the header, then iterates values()."""

    def values(self):
        raise OSError(28, "No space left on device")


def test_failed_write_keeps_the_old_file(tmp_path: Path, seg_engine_file: Path) -> None:
    path = tmp_path / "seg.engine"
    shutil.copy(seg_engine_file, path)
    before = path.read_bytes()
    manifest, payloads = read_engine(path)
    with pytest.raises(OSError, match="No space left"):
        write_engine(path, manifest, _FailingPayloads(payloads))
    assert path.read_bytes() == before, "the old engine is intact"
    assert sorted(os.listdir(tmp_path)) == ["seg.engine"], "no temporary file is left behind"


def test_manifest_json_round_trip(seg_engine: dynashape.Engine) -> None:
    m = seg_engine.manifest
    back = Manifest.from_json(json.loads(json.dumps(m.to_json([]))))
    assert back == m
