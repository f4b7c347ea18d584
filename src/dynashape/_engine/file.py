"""The engine file: one file holding a JSON manifest and the backend's payloads.

Layout, format 2::

    b"DYNASHAPE-ENGINE"  (16 bytes, magic)
    u64 little-endian    length of the manifest
    manifest             UTF-8 JSON (see :class:`Manifest` and :mod:`.schema`)
    u64 little-endian    length of the seal
    seal                 UTF-8 JSON: {"sha256": digest, "signature": null or an Ed25519 signature}
    payloads             concatenated; the manifest lists each one's offset, size, compression and
                         the sha256 of its uncompressed bytes

The digest is the sha256 of everything but the seal: magic, manifest length, manifest and the
payload bytes as stored. NOTE: loading an engine runs native code (an AOTInductor ``.so``, a
TensorRT plan with plugins), so the reader checks, in this order and before any backend is imported
or any payload extracted: magic and sizes (against ``os.stat``, before reading payloads), the
manifest's schema, the signature (when a verify key is given or required), then the digest while it
streams the payloads in. The digest alone guards against damage, not against an attacker, who can
recompute it; only a signature checked against a key you trust does that.

Format 1 (no seal, payloads stored uncompressed, a sha256 per payload) is still read, with the same
schema checks. NOTE: that is as safe as an unsigned format-2 file (anyone can write either), and no
safer: in require-signed mode a format-1 file is refused, with "rebuild" as the fix.

NOTE: a flat layout rather than a zip: a reader can check magic, format version and every declared
size before reading any payload, so a truncated or corrupt file is named as such instead of failing
deep inside a backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import struct
import time
import zlib
from collections.abc import Iterator
from typing import IO, Any

from .._errors import DynashapeError, EngineFileError
from .._io import open_atomic
from .._records import FORMAT_VERSION, Manifest
from . import signing
from .schema import FORMAT_VERSIONS, MAX_MANIFEST_BYTES, check_manifest

log = logging.getLogger("dynashape")

MAGIC = b"DYNASHAPE-ENGINE"
_HEADER = struct.Struct("<Q")
_MAX_SEAL_BYTES = 1 << 16
# NOTE: payloads are compressed with zlib level 6 when that saves at least an eighth of a sample of
# them: AOTInductor packages (compiled code) shrink 3-4x, float weights hardly at all and are
# stored as they are, so loading them costs no decompression (numbers: BENCHMARKS.md, "Engine
# file size"). lzma saves a little more on code and is several times slower on both ends.
_ZLIB_LEVEL = 6
_SAMPLE = 1 << 20
_CHUNK = 1 << 24


def _compress(data: bytes) -> tuple[str, bytes]:
    sample = data[:_SAMPLE]
    if len(data) < 4096 or len(zlib.compress(sample, 1)) > len(sample) * 7 // 8:
        return "none", data
    packed = zlib.compress(data, _ZLIB_LEVEL)
    return ("zlib", packed) if len(packed) < len(data) else ("none", data)


def write_engine(path: str | os.PathLike[str], manifest: Manifest, payloads: dict[str, bytes], *,
                 signing_key: Any = None) -> None:
    """Write atomically (see :mod:`dynashape._io`); sign with ``signing_key`` (a PEM path or key), if given.

    ``signing_key=None`` means ``$DYNASHAPE_SIGNING_KEY`` when that is set, else no signature.
    """
    if signing_key is None:
        signing_key = os.environ.get(signing.ENV_SIGNING_KEY) or None
    if signing_key is not None:
        signing.load_signing_key(signing_key)  # a bad key fails before the work, not after it
    entries, stored, offset = [], [], 0
    for name, data in payloads.items():
        kind, packed = _compress(data)
        entries.append({"name": name, "offset": offset, "size": len(packed), "compression": kind,
                        "raw_size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        stored.append(packed)
        offset += len(packed)
    if not manifest.created:
        manifest.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc = manifest.to_json(entries)
    doc["format_version"] = FORMAT_VERSION
    header = json.dumps(doc, indent=1).encode()
    h = hashlib.sha256(MAGIC + _HEADER.pack(len(header)) + header)
    for packed in stored:
        h.update(packed)
    digest = h.digest()
    sig = signing.sign(digest, signing_key) if signing_key is not None else None
    seal = json.dumps({"sha256": digest.hex(), "signature": sig}).encode()
    with open_atomic(path, what="engine file", error=EngineFileError) as f:
        f.write(MAGIC)
        f.write(_HEADER.pack(len(header)))
        f.write(header)
        f.write(_HEADER.pack(len(seal)))
        f.write(seal)
        for packed in stored:
            f.write(packed)


def _truncated(where: str, what: str) -> EngineFileError:
    return EngineFileError(f"{where} is truncated: {what}", "a complete engine file", "rebuild or copy the file again")


def _read_exact(f: IO[bytes], n: int, where: str, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _truncated(where, what)
    return data


def _json(raw: bytes, where: str, what: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise EngineFileError(f"{where} has a corrupt {what} ({e})", f"valid JSON in the {what}", "rebuild the engine") from e


def _open(path: str) -> tuple[IO[bytes], int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise EngineFileError(f"engine file '{path}' does not exist", "a file written by Engine.save or --saveEngine", "check the path") from None
    except OSError as e:
        raise EngineFileError(f"engine file '{path}' cannot be read ({e.strerror})", "a readable engine file", "check the path and its permissions") from e
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise EngineFileError(f"'{path}' is {kind}", "an engine file written by Engine.save or --saveEngine", "give the path of the .engine file")
    try:
        return open(path, "rb"), st.st_size
    except OSError as e:
        raise EngineFileError(f"engine file '{path}' cannot be read ({e.strerror})", "a readable engine file", "check the path and its permissions") from e


def read_engine(path: str | os.PathLike[str], *, verify_key: Any = None,
                require_signature: bool | None = None) -> tuple[Manifest, dict[str, bytes]]:
    """Read, check and verify an engine file; nothing in it is executed here.

    ``verify_key`` (a PEM path or key; None: ``$DYNASHAPE_VERIFY_KEY``): a signed engine must carry
    this key's signature. ``require_signature`` (None: ``$DYNASHAPE_REQUIRE_SIGNED=1``): refuse
    engines without a valid signature; it needs a verify key.
    """
    path = os.fspath(path)
    where = f"'{path}'"
    if verify_key is None:
        verify_key = os.environ.get(signing.ENV_VERIFY_KEY) or None
    if require_signature is None:
        require_signature = os.environ.get(signing.ENV_REQUIRE_SIGNED, "").strip() not in ("", "0")
    if require_signature and verify_key is None:
        raise EngineFileError(f"signed engines are required ({signing.ENV_REQUIRE_SIGNED} or --require-signed), and no verify key is given",
                              "the public key that engines must be signed with",
                              f"pass --verify-key FILE (verify_key=) or set ${signing.ENV_VERIFY_KEY}")
    if verify_key is not None:
        verify_key = signing.load_verify_key(verify_key)  # a bad key is named even for an unsigned engine
    f, size = _open(path)
    with f:
        return _read(f, size, where, verify_key, bool(require_signature))


def _read(f: IO[bytes], size: int, where: str, verify_key: Any, require_signature: bool) -> tuple[Manifest, dict[str, bytes]]:
    head = f.read(len(MAGIC) + _HEADER.size)
    if not head.startswith(MAGIC):
        hint = "an ONNX file: build it first (dynashape build --onnx ...)" if head[:1] == b"\x08" else "a dynashape engine"
        raise EngineFileError(
            f"{where} is not a dynashape engine file (it starts with {head[:16]!r})",
            f"a file starting with {MAGIC!r}",
            f"this looks like {hint}" if "ONNX" in hint else "build an engine with `dynashape build` or Engine.save",
        )
    if len(head) < len(MAGIC) + _HEADER.size:
        raise EngineFileError(f"{where} is truncated ({size} bytes)", "a complete engine file", "rebuild or copy the file again")
    (hlen,) = _HEADER.unpack_from(head, len(MAGIC))
    if hlen > MAX_MANIFEST_BYTES:
        raise EngineFileError(f"{where} declares a manifest of {hlen} bytes", f"at most {MAX_MANIFEST_BYTES} bytes", "rebuild the engine")
    if len(head) + hlen > size:
        raise _truncated(where, f"its manifest needs {hlen} bytes, {size - len(head)} remain")
    header = _read_exact(f, hlen, where, "inside the manifest")
    data = _json(header, where, "manifest")
    version = data.get("format_version") if isinstance(data, dict) else None
    if type(version) is not int:
        check_manifest(data, where, payload_region=0)  # names the field
    assert isinstance(version, int) and isinstance(data, dict)
    if version > FORMAT_VERSION:
        raise EngineFileError(
            f"{where} has engine format version {version} (written by dynashape {data.get('dynashape_version', '?')})",
            f"format version {FORMAT_VERSION} or older, which this dynashape reads",
            "upgrade dynashape (pip install -U dynashape), or rebuild the engine with this version",
        )
    if version not in FORMAT_VERSIONS:
        raise EngineFileError(f"{where} has engine format version {version}", f"one of {FORMAT_VERSIONS}", "rebuild the engine")
    body = len(head) + hlen
    seal: dict[str, Any] = {}
    if version >= 2:
        slen_raw = _read_exact(f, _HEADER.size, where, "inside its seal")
        (slen,) = _HEADER.unpack(slen_raw)
        if slen > _MAX_SEAL_BYTES or body + _HEADER.size + slen > size:
            raise _truncated(where, f"its seal needs {slen} bytes") if slen <= _MAX_SEAL_BYTES else EngineFileError(
                f"{where} declares a seal of {slen} bytes", f"at most {_MAX_SEAL_BYTES}", "rebuild the engine")
        seal = _json(_read_exact(f, slen, where, "inside its seal"), where, "seal")
        body += _HEADER.size + slen
        if not isinstance(seal, dict) or not isinstance(seal.get("sha256"), str) or len(seal["sha256"]) != 64:
            raise EngineFileError(f"{where} has a corrupt seal", "a JSON object with the file's sha256", "rebuild the engine")
    entries = check_manifest(data, where, payload_region=size - body)
    digest = _check_signature(seal, version, where, verify_key, require_signature)
    h = hashlib.sha256(head + header) if version >= 2 else None
    stored: dict[str, bytes] = {}
    for e in entries:
        chunk = b"".join(_chunks(f, e["size"], where, e["name"]))
        if h is not None:
            h.update(chunk)
        stored[e["name"]] = chunk
    if f.read(1):
        raise EngineFileError(f"{where} grew while it was read", "an engine file nobody writes to during loading", "load it again")
    if h is not None and h.digest() != digest:
        bad = next((e["name"] for e in entries if _unpack(stored[e["name"]], e, where, strict=False) is None), None)
        what = f"payload '{bad}' fails its sha256 checksum" if bad else "its manifest does not match its sha256 digest"
        raise EngineFileError(f"{where} is corrupt: {what}", "the bytes that were written", "rebuild or copy the file again")
    payloads = {}
    for e in data["payloads"]:  # the order they were saved in
        raw = _unpack(stored.pop(e["name"]), e, where, strict=True)
        assert raw is not None
        payloads[e["name"]] = raw
    try:
        manifest = Manifest.from_json(data)
    except (KeyError, TypeError, ValueError, IndexError, DynashapeError) as e:  # the schema should have caught it: say which field anyway
        raise EngineFileError(f"{where} has an invalid manifest ({type(e).__name__}: {e})", "every manifest field", "rebuild the engine") from e
    manifest.format_version = FORMAT_VERSION  # what save() would write for it
    return manifest, payloads


def _chunks(f: IO[bytes], n: int, where: str, name: str) -> Iterator[bytes]:
    while n:
        chunk = f.read(min(n, _CHUNK))
        if not chunk:
            raise _truncated(where, f"payload '{name}' ends early")
        n -= len(chunk)
        yield chunk


def _unpack(chunk: bytes, e: dict[str, Any], where: str, *, strict: bool) -> bytes | None:
    """The payload's raw bytes, checked against its sha256; None (or an error if ``strict``) if they fail."""
    raw: bytes | None = chunk
    if e.get("compression", "none") == "zlib":
        try:
            d = zlib.decompressobj()
            raw = d.decompress(chunk, e["raw_size"] + 1)
            if not d.eof or d.unconsumed_tail or len(raw) != e["raw_size"]:
                raw = None
        except zlib.error:
            raw = None
    if raw is None or hashlib.sha256(raw).hexdigest() != e["sha256"]:
        if strict:
            raise EngineFileError(f"{where} is corrupt: payload '{e['name']}' fails its sha256 checksum",
                                  "the bytes that were written", "rebuild or copy the file again")
        return None
    return raw


def _check_signature(seal: dict[str, Any], version: int, where: str, verify_key: Any, require_signature: bool) -> bytes:
    sig = seal.get("signature")
    try:
        digest = bytes.fromhex(seal["sha256"]) if version >= 2 else b""
    except ValueError:
        raise EngineFileError(f"{where} has a corrupt seal", "a sha256 digest in hex", "rebuild the engine") from None
    if sig is None:
        if require_signature:
            raise EngineFileError(
                f"{where} is not signed" + (" (engine format 1 has no signatures)" if version < 2 else ""),
                "an engine signed with the private key of the verify key (signed engines are required)",
                "rebuild it and sign it: dynashape build ... --signing-key KEY.pem (Engine.save(path, signing_key=...))")
        if verify_key is not None:
            log.warning("%s is not signed; loading it because signatures are not required (--require-signed refuses it)", where)
        return digest
    if not isinstance(sig, dict) or sig.get("algorithm") != signing.ALGORITHM or not isinstance(sig.get("value"), str):
        raise EngineFileError(f"{where} has a signature this dynashape cannot check ({str(sig)[:80]})",
                              f"an {signing.ALGORITHM} signature", "rebuild and sign the engine with this dynashape")
    if verify_key is not None:
        signing.verify(sig, digest, verify_key, where)
    return digest
