"""Engine files: round trip, atomic saving, and a clear EngineFileError for every kind of bad file.

Signatures, the payload cache and package members: tests/engine/test_trust.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from _craft import craft, split

import dynashape
from dynashape._engine.file import MAGIC, read_engine
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
    header = blob[len(MAGIC) + 8:len(MAGIC) + 8 + n]
    manifest = json.loads(header)
    assert manifest["format_version"] == FORMAT_VERSION == 2
    assert manifest["backend"] == "onnxruntime" and manifest["device"] == "cpu"
    at = len(MAGIC) + 8 + n
    s = int.from_bytes(blob[at:at + 8], "little")
    seal = json.loads(blob[at + 8:at + 8 + s])
    body = blob[at + 8 + s:]
    assert sum(p["size"] for p in manifest["payloads"]) == len(body)
    # One digest over header, manifest and payloads; no signature without a key.
    assert seal == {"sha256": hashlib.sha256(blob[:at] + body).hexdigest(), "signature": None}


def test_truncated_file(tmp_path: Path, seg_engine_file: Path) -> None:
    blob = seg_engine_file.read_bytes()
    bad = tmp_path / "truncated.engine"
    bad.write_bytes(blob[: len(blob) - 100])
    msg = _load_error(bad)
    assert "is truncated: its payloads need" in msg and "rebuild or copy the file again" in msg
    bad.write_bytes(blob[: len(MAGIC) + 8 + 10])  # inside the manifest
    assert "is truncated: its manifest needs" in _load_error(bad)
    bad.write_bytes(blob[: len(MAGIC) + 3])  # inside the header
    assert "is truncated (19 bytes)" in _load_error(bad)
    bad.write_bytes(blob + b"extra")
    assert "manifest field 'payloads'" in _load_error(bad) and "the payloads fill the file to its end" in _load_error(bad)


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


def test_flipped_byte_in_manifest(tmp_path: Path, seg_engine_file: Path) -> None:
    """A change to the manifest that keeps it valid JSON (a dim, here) fails the file's digest."""
    blob = seg_engine_file.read_bytes()
    at = blob.index(b'"max": [')
    bad = tmp_path / "manifest.engine"
    i = blob.index(b"768", at)
    bad.write_bytes(blob[:i] + b"769" + blob[i + 3:])
    assert "is corrupt: its manifest does not match its sha256 digest" in _load_error(bad)


def test_newer_format_version(tmp_path: Path, seg_engine_file: Path) -> None:
    doc, _, raw = split(seg_engine_file)
    bad = tmp_path / "future.engine"
    craft(bad, {**doc, "format_version": 999, "dynashape_version": "9.9.9"}, raw)
    msg = _load_error(bad)
    assert "has engine format version 999 (written by dynashape 9.9.9)" in msg
    assert f"format version {FORMAT_VERSION} or older" in msg and "upgrade dynashape" in msg


def test_format_1_is_still_read(tmp_path: Path, seg_engine_file: Path) -> None:
    """Format 1: magic, manifest, payloads stored as they are; no seal (see dynashape._engine.file)."""
    doc, _, raw = split(seg_engine_file)
    entries, at = [], 0
    for name, data in raw.items():
        entries.append({"name": name, "offset": at, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        at += len(data)
    header = json.dumps({**doc, "format_version": 1, "payloads": entries}).encode()
    old = tmp_path / "v1.engine"
    old.write_bytes(MAGIC + len(header).to_bytes(8, "little") + header + b"".join(raw.values()))
    engine = dynashape.load(old)
    x = _x(256, 256)
    np.testing.assert_array_equal(engine.run({"input_1": x})["output_1"], dynashape.load(seg_engine_file).run({"input_1": x})["output_1"])
    blob = bytearray(old.read_bytes())
    blob[-50] ^= 0xFF
    old.write_bytes(bytes(blob))
    assert "is corrupt: payload 'model.onnx' fails its sha256 checksum" in _load_error(old)


def test_not_an_engine(tmp_path: Path, seg_onnx: str) -> None:
    msg = _load_error(Path(seg_onnx))
    assert "is not a dynashape engine file" in msg and "this looks like an ONNX file: build it first" in msg
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    msg = _load_error(text)
    assert "is not a dynashape engine file (it starts with b'hello')" in msg
    assert "build an engine with `dynashape build`" in msg
    assert "does not exist" in _load_error(tmp_path / "missing.engine")
    assert f"'{tmp_path}' is a folder | an engine file" in _load_error(tmp_path)


# -- atomic saving ------------------------------------------------------------------------------

def test_save_into_missing_folder(tmp_path: Path, seg_engine: dynashape.Engine) -> None:
    target = tmp_path / "no" / "such" / "folder" / "x.engine"
    with pytest.raises(EngineFileError) as e:
        seg_engine.save(target)
    assert f"folder '{target.parent}' does not exist" in str(e.value) and "mkdir -p" in str(e.value)
    assert not (tmp_path / "no").exists()


def test_save_over_a_device_node_or_a_folder(tmp_path: Path, seg_engine: dynashape.Engine) -> None:
    """trtexec users pass --saveEngine /dev/null; as root, a rename would replace the node."""
    with pytest.raises(EngineFileError, match="engine file '/dev/null' is a character device"):
        seg_engine.save("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(EngineFileError, match=f"engine file '{tmp_path}' is a folder"):
        seg_engine.save(tmp_path)


def test_save_keeps_the_mode_and_follows_links(tmp_path: Path, seg_engine: dynashape.Engine, seg_engine_file: Path) -> None:
    real = tmp_path / "real.engine"
    shutil.copy(seg_engine_file, real)
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.engine"
    link.symlink_to(real)
    seg_engine.save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert real.read_bytes() == seg_engine_file.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["link.engine", "real.engine"]


def test_manifest_json_round_trip(seg_engine: dynashape.Engine) -> None:
    m = seg_engine.manifest
    back = Manifest.from_json(json.loads(json.dumps(m.to_json([]))))
    assert back == m


# -- the manifest's schema ----------------------------------------------------------------------
# Each case edits one field and rewrites the digest, as a hand-editor would; the error names the field.

def _set(path: str, value: object):
    def edit(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return edit


_DELETE = object()
_SCHEMA_CASES = [
    ("format_version", "2", "'format_version' = '2'"),
    ("format_version", True, "'format_version' = True"),
    ("backend", "tvm", "'backend' = 'tvm' | one of: onnxruntime, inductor, tensorrt"),
    ("device", "cuda", "'device' = 'cuda' | one of the onnxruntime backend's devices: cpu"),
    ("device", "cpu:x", "'device' = 'cpu:x'"),
    ("precision", "int4", "'precision' = 'int4'"),
    ("inputs", _DELETE, "lacks the field 'inputs'"),
    ("inputs", {}, "'inputs' = {}"),
    ("inputs.0.dtype", "float128", "'inputs[0].dtype' = 'float128'"),
    ("inputs.0.shape.0", -1, "'inputs[0].shape[0]' = -1"),
    ("inputs.0.shape.0", 2**40, "'inputs[0].shape[0]' = 1099511627776"),
    ("outputs.0.name", 7, "'outputs[0].name' = 7"),
    ("profiles", [], "'profiles' = []"),
    ("profiles.0.input_1.max", [1, 3, 768], "'profiles[0].input_1.max' = [1, 3, 768] | 4 ints"),
    ("profiles.0.input_1.min", [1, 3, 900, 256], "'profiles[0].input_1 dim 2' = (900, 512, 768) | min <= opt <= max"),
    ("profiles.0.input_1.max", [2, 3, 768, 768], "'profiles[0].input_1 dim 0' = (1, 1, 2) | 1, the input's static dim"),
    ("build_settings.threads", 100000, "'build_settings.threads' = 100000 | null or an int from 1 to 1024"),
    ("build_settings.threads", True, "'build_settings.threads' = True"),
    ("build_settings.device", "cuda", "'build_settings.device' = 'cuda' | 'cpu', the engine's device"),
    ("build_settings.optimization_level", "max", "'build_settings.optimization_level' = 'max'"),
    ("build_seconds", float("nan"), "'build_seconds' = nan"),
    ("library_versions", ["torch"], "'library_versions' = ['torch']"),
    ("payloads.0.name", "other.onnx", "the onnxruntime backend's payloads: model.onnx (missing ['model.onnx']) (unknown ['other.onnx'])"),
    ("payloads.0.offset", 8, "'payloads 'model.onnx'.offset' = 8"),
    ("payloads.0.sha256", "00", "'payloads[0].sha256' = '00'"),
    ("payloads.0.compression", "lz4", "'payloads[0].compression' = 'lz4'"),
    ("payloads.0.raw_size", 1, "'payloads[0].raw_size' = 1"),
    ("input_hints", {"nope": {"role": "ids"}}, "'input_hints' = {'nope': {'role': 'ids'}} | an object keyed by the inputs' names: input_1"),
    ("input_hints", {"input_1": {"role": "words"}}, "'input_hints.input_1.role' = 'words' | one of: ids, mask"),
    ("input_hints", {"input_1": {"role": "ids", "vocab": -3}}, "'input_hints.input_1.vocab' = -3"),
]


@pytest.mark.parametrize(("field", "value", "message"), _SCHEMA_CASES, ids=[f"{c[0]}={c[1]!r}"[:40] for c in _SCHEMA_CASES])
def test_manifest_schema(tmp_path: Path, seg_engine_file: Path, field: str, value: object, message: str) -> None:
    doc, _, raw = split(seg_engine_file)
    if doc["inputs"][0]["shape"][0] != 1:
        pytest.skip("the case assumes the segmentation net's static batch dim")
    bad = tmp_path / "edited.engine"
    craft(bad, doc, raw, edit=_set(field, value))
    msg = _load_error(bad)
    assert message in msg, msg
    assert "rebuild the engine" in msg or "upgrade dynashape" in msg or "does not exist" not in msg


def test_sizes_are_checked_before_payloads_are_read(tmp_path: Path, seg_engine_file: Path) -> None:
    """A 1.5 GB file (sparse: no disk used) whose payload table does not cover it is refused from
    os.stat and the header alone, without reading the rest into memory."""
    import tracemalloc

    big = tmp_path / "big.engine"
    shutil.copy(seg_engine_file, big)
    with open(big, "r+b") as f:
        f.truncate(1536 << 20)
    tracemalloc.start()
    try:
        msg = _load_error(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "the payloads fill the file to its end" in msg
    assert peak < 32 << 20, f"loading allocated {peak >> 20} MiB"
    doc, _, raw = split(seg_engine_file)
    doc["payloads"][0]["size"] = 1 << 40  # a declared size far beyond the file
    craft(big, doc, raw, fix_payload_table=False)
    assert "is truncated: its payloads need 1099511627776 bytes after the manifest" in _load_error(big)
