"""Take engine files apart and put them back together with a correct digest, as an attacker (or a
careless hand-editor) can: the digest guards against damage, not against someone who rewrites it."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dynashape._engine.file import MAGIC

_U64 = struct.Struct("<Q")


def split(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, bytes]]:
    """(manifest, seal, raw payloads by name) of a format-2 file."""
    blob = path.read_bytes()
    at = len(MAGIC)
    (n,) = _U64.unpack_from(blob, at)
    doc = json.loads(blob[at + 8:at + 8 + n])
    at += 8 + n
    (s,) = _U64.unpack_from(blob, at)
    seal = json.loads(blob[at + 8:at + 8 + s])
    body = at + 8 + s
    raw = {}
    for e in doc["payloads"]:
        chunk = blob[body + e["offset"]:body + e["offset"] + e["size"]]
        raw[e["name"]] = zlib.decompress(chunk) if e["compression"] == "zlib" else chunk
    return doc, seal, raw


def craft(path: Path, doc: dict[str, Any], raw: dict[str, bytes], *, signature: Any = None,
          fix_payload_table: bool = True, fix_digest: bool = True, seal: dict[str, Any] | None = None,
          edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Write ``doc`` and ``raw`` payloads (stored uncompressed) as a format-2 file.

    ``fix_payload_table``: rewrite the manifest's payload entries, sha256 values included, to match
    ``raw``; ``edit``: then change the manifest; ``fix_digest``: recompute the file digest (with a
    given ``seal``); ``signature``: the seal's signature field.
    """
    doc = json.loads(json.dumps(doc))
    if fix_payload_table:
        entries, at = [], 0
        for name, data in raw.items():
            entries.append({"name": name, "offset": at, "size": len(data), "compression": "none",
                            "raw_size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            at += len(data)
        doc["payloads"] = entries
    if edit is not None:
        edit(doc)
    header = json.dumps(doc).encode()
    body = b"".join(raw.values())
    digest = hashlib.sha256(MAGIC + _U64.pack(len(header)) + header + body).hexdigest()
    if seal is None:
        seal = {"sha256": digest, "signature": signature}
    elif fix_digest:
        seal = {**seal, "sha256": digest}
    seal_bytes = json.dumps(seal).encode()
    path.write_bytes(MAGIC + _U64.pack(len(header)) + header + _U64.pack(len(seal_bytes)) + seal_bytes + body)
