"""Ed25519 signatures over an engine file's digest, with the ``cryptography`` package (imported lazily).

Keys are PEM files: a private key (PKCS#8, unencrypted) signs, its public key verifies. Make a pair
with ``dynashape keygen -o NAME`` (NAME.pem and NAME.pub.pem) or with OpenSSL::

    openssl genpkey -algorithm ed25519 -out signing.pem
    openssl pkey -in signing.pem -pubout -out signing.pub.pem

What is signed is ``_CONTEXT + sha256 digest``; the digest covers the header, the manifest and
every payload (see :mod:`dynashape._engine.file`), so a signature vouches for all of the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Any

from .._deps import require
from .._errors import EngineFileError

ENV_SIGNING_KEY = "DYNASHAPE_SIGNING_KEY"
ENV_VERIFY_KEY = "DYNASHAPE_VERIFY_KEY"
ENV_REQUIRE_SIGNED = "DYNASHAPE_REQUIRE_SIGNED"
ALGORITHM = "ed25519"
_CONTEXT = b"dynashape engine file signature v1\x00"
_INSTALL = "pip install 'dynashape[sign]'"


def _crypto(purpose: str) -> Any:
    return require("cryptography.hazmat.primitives.serialization", purpose)


def _ed25519() -> Any:
    return require("cryptography.hazmat.primitives.asymmetric.ed25519", "Ed25519 engine signatures")


def _read_pem(key: str | os.PathLike[str] | bytes, what: str, env: str) -> bytes:
    if isinstance(key, bytes):
        return key
    path = os.fspath(key)
    try:
        with open(path, "rb") as f:
            return f.read(1 << 16)
    except OSError as e:
        raise EngineFileError(f"{what} file '{path}' cannot be read ({e.strerror})",
                              f"a PEM file with an Ed25519 {what} (from --{what.split()[0]}-key or ${env})",
                              "make a key pair with `dynashape keygen -o NAME`") from e


def load_signing_key(key: Any) -> Any:
    """An Ed25519 private key from a PEM path, PEM bytes, or a key object."""
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PrivateKey):
        return key
    serialization = _crypto("signing engine files")
    pem = _read_pem(key, "signing key", ENV_SIGNING_KEY)
    try:
        obj = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise EngineFileError(f"the signing key is not an unencrypted PEM private key ({e})",
                              "an Ed25519 private key in PEM (PKCS#8), as `dynashape keygen` writes",
                              "make one with `dynashape keygen -o NAME`") from e
    if not isinstance(obj, ed.Ed25519PrivateKey):
        raise EngineFileError(f"the signing key is a {type(obj).__name__}", "an Ed25519 private key",
                              "make one with `dynashape keygen -o NAME`")
    return obj


def load_verify_key(key: Any) -> Any:
    """An Ed25519 public key from a PEM path, PEM bytes, or a key object (a private key gives its public key)."""
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PublicKey):
        return key
    if isinstance(key, ed.Ed25519PrivateKey):
        return key.public_key()
    serialization = _crypto("verifying engine signatures")
    pem = _read_pem(key, "verify key", ENV_VERIFY_KEY)
    try:
        obj = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise EngineFileError(f"the verify key is not a PEM public key ({e})",
                              "an Ed25519 public key in PEM, as `dynashape keygen` writes (NAME.pub.pem)",
                              "pass the .pub.pem file of the key that signed the engine") from e
    if not isinstance(obj, ed.Ed25519PublicKey):
        raise EngineFileError(f"the verify key is a {type(obj).__name__}", "an Ed25519 public key",
                              "pass the .pub.pem file of the key that signed the engine")
    return obj


def key_id(public_key: Any) -> str:
    """A short fingerprint of a public key (the first 16 hex digits of the sha256 of its raw bytes)."""
    serialization = _crypto("engine signatures")
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(digest: bytes, key: Any) -> dict[str, str]:
    private = load_signing_key(key)
    return {"algorithm": ALGORITHM, "key_id": key_id(private.public_key()),
            "value": base64.b64encode(private.sign(_CONTEXT + digest)).decode()}


def verify(signature: dict[str, Any], digest: bytes, key: Any, where: str) -> None:
    """Raise EngineFileError unless ``signature`` is ``key``'s signature of ``digest``."""
    public = load_verify_key(key)
    exceptions = require("cryptography.exceptions", "verifying engine signatures")
    expected = key_id(public)
    try:
        value = base64.b64decode(signature["value"], validate=True)
        public.verify(value, _CONTEXT + digest)
    except (exceptions.InvalidSignature, binascii.Error, ValueError) as e:
        signer = signature.get("key_id", "?")
        why = (f"it is signed by key {signer}, not by the verify key {expected}" if signer != expected
               else f"its signature does not match its contents (key {expected}): the file was changed after signing")
        raise EngineFileError(f"{where}: {why}", "an engine signed by the verify key's private key",
                              "load only engines from a source you trust; rebuild and sign it, or pass the right --verify-key") from e


def generate_keypair(stem: str | os.PathLike[str]) -> tuple[str, str]:
    """Write ``STEM.pem`` (private, mode 0600) and ``STEM.pub.pem``; return both paths."""
    from .._io import write_atomic

    ed = _ed25519()
    serialization = _crypto("making signing keys")
    private = ed.Ed25519PrivateKey.generate()
    stem = os.fspath(stem)
    priv_path, pub_path = stem + ".pem", stem + ".pub.pem"
    for p in (priv_path, pub_path):
        if os.path.lexists(p):
            raise EngineFileError(f"'{p}' exists", "a name for a new key pair", "pick another -o NAME or remove the old files")
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # NOTE: the private key is created 0600 before a byte is written, not chmod-ed afterwards.
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    write_atomic(pub_path, private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
                 what="public key", error=EngineFileError)
    return priv_path, pub_path
