"""The engine file: one file holding a JSON manifest and the backend's payloads.

Layout::

    b"DYNASHAPE-ENGINE"  (16 bytes, magic)
    u64 little-endian    length of the manifest
    manifest             UTF-8 JSON (see :class:`Manifest`)
    payloads             concatenated; the manifest lists each one's offset, size and sha256

NOTE: a flat layout rather than a zip: a reader can check magic, format version and the total size
before reading any payload, and every payload is verified with its own checksum, so a truncated or
corrupt file is named as such instead of failing deep inside a backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time

from .._errors import EngineFileError
from .._records import FORMAT_VERSION, Manifest

MAGIC = b"DYNASHAPE-ENGINE"
_HEADER = struct.Struct("<Q")


def write_engine(path: str | os.PathLike[str], manifest: Manifest, payloads: dict[str, bytes]) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path = os.fspath(path)
    entries, offset = [], 0
    for name, data in payloads.items():
        entries.append({"name": name, "offset": offset, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        offset += len(data)
    if not manifest.created:
        manifest.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    header = json.dumps(manifest.to_json(entries), indent=1).encode()
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise EngineFileError(f"folder '{folder}' does not exist", "an existing folder for the engine file", f"mkdir -p {folder}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".dynashape-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC)
            f.write(_HEADER.pack(len(header)))
            f.write(header)
            for data in payloads.values():
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_engine(path: str | os.PathLike[str]) -> tuple[Manifest, dict[str, bytes]]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EngineFileError(f"engine file '{path}' does not exist", "a file written by Engine.save or --saveEngine", "check the path")
    with open(path, "rb") as f:
        blob = f.read()
    if not blob.startswith(MAGIC):
        hint = "an ONNX file: build it first (dynashape build --onnx ...)" if b"\x08" in blob[:2] else "a dynashape engine"
        raise EngineFileError(
            f"'{path}' is not a dynashape engine file (it starts with {blob[:16]!r})",
            f"a file starting with {MAGIC!r}",
            f"this looks like {hint}" if "ONNX" in hint else "build an engine with `dynashape build` or Engine.save",
        )
    start = len(MAGIC) + _HEADER.size
    if len(blob) < start:
        raise EngineFileError(f"'{path}' is truncated ({len(blob)} bytes)", "a complete engine file", "rebuild or copy the file again")
    (hlen,) = _HEADER.unpack_from(blob, len(MAGIC))
    if start + hlen > len(blob):
        raise EngineFileError(
            f"'{path}' is truncated: its manifest needs {hlen} bytes, {len(blob) - start} remain",
            "a complete engine file", "rebuild or copy the file again",
        )
    try:
        data = json.loads(blob[start:start + hlen])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EngineFileError(f"'{path}' has a corrupt manifest ({e})", "valid JSON after the header", "rebuild the engine") from e
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EngineFileError(
            f"'{path}' has engine format version {version} (written by dynashape {data.get('dynashape_version', '?')})",
            f"format version {FORMAT_VERSION} or older, which this dynashape reads",
            "upgrade dynashape (pip install -U dynashape), or rebuild the engine with this version",
        )
    body = start + hlen
    payloads: dict[str, bytes] = {}
    for entry in data.get("payloads", []):
        lo, hi = body + entry["offset"], body + entry["offset"] + entry["size"]
        if hi > len(blob):
            raise EngineFileError(
                f"'{path}' is truncated: payload '{entry['name']}' ends at byte {hi}, the file has {len(blob)}",
                "a complete engine file", "rebuild or copy the file again",
            )
        chunk = blob[lo:hi]
        if hashlib.sha256(chunk).hexdigest() != entry["sha256"]:
            raise EngineFileError(
                f"'{path}' is corrupt: payload '{entry['name']}' fails its sha256 checksum",
                "the bytes that were written", "rebuild or copy the file again",
            )
        payloads[entry["name"]] = chunk
    try:
        manifest = Manifest.from_json(data)
    except (KeyError, TypeError, ValueError) as e:
        raise EngineFileError(f"'{path}' has an incomplete manifest ({type(e).__name__}: {e})", "every manifest field", "rebuild the engine") from e
    return manifest, payloads
