"""The trust model of engine files: digest, signatures, the private payload cache, package members.

Loading an engine runs native code from it (README: "Engine files run native code"). These tests
play the attacker: they rewrite engine files as someone with write access to the file (or to the
cache) could, and check that nothing they planted is loaded.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _craft import craft, split

import dynashape
from dynashape._engine.signing import generate_keypair
from dynashape._errors import EngineFileError


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    pytest.importorskip("cryptography")
    return generate_keypair(tmp_path_factory.mktemp("keys") / "signer")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache root (XDG_CACHE_HOME) and a fresh temp folder, where the payload cache used to be."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    from dynashape import _io

    monkeypatch.setattr(_io, "_fallback", {})
    return tmp_path / "xdg" / "dynashape" / "aoti"


def _error(path: Path, **kw: object) -> str:
    with pytest.raises(EngineFileError) as e:
        dynashape.load(path, **kw)  # type: ignore[arg-type]
    return str(e.value)


# -- signatures (ONNX Runtime engines: fast) -------------------------------------------------------

def test_signed_engine_round_trip(tmp_path: Path, seg_engine: dynashape.Engine, keys: tuple[str, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    priv, pub = keys
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    path = tmp_path / "signed.engine"
    seg_engine.save(path, signing_key=priv)
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    loaded = dynashape.load(path, verify_key=pub, require_signature=True)
    np.testing.assert_array_equal(loaded.run({"input_1": x})["output_1"], seg_engine.run({"input_1": x})["output_1"])
    # The same through the environment.
    monkeypatch.setenv("DYNASHAPE_SIGNING_KEY", priv)
    env_path = tmp_path / "env.engine"
    seg_engine.save(env_path)
    monkeypatch.delenv("DYNASHAPE_SIGNING_KEY")
    monkeypatch.setenv("DYNASHAPE_VERIFY_KEY", pub)
    monkeypatch.setenv("DYNASHAPE_REQUIRE_SIGNED", "1")
    assert dynashape.load(env_path).backend == "onnxruntime"
    assert split(env_path)[1]["signature"]["algorithm"] == "ed25519"


def test_unsigned_engine_in_require_signed_mode(seg_engine_file: Path, keys: tuple[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    msg = _error(seg_engine_file, verify_key=keys[1], require_signature=True)
    assert "is not signed | an engine signed with the private key of the verify key" in msg
    assert "--signing-key" in msg
    monkeypatch.setenv("DYNASHAPE_REQUIRE_SIGNED", "1")
    assert "no verify key is given" in _error(seg_engine_file)
    monkeypatch.setenv("DYNASHAPE_VERIFY_KEY", keys[1])
    assert "is not signed" in _error(seg_engine_file)


def test_wrong_key(tmp_path: Path, seg_engine: dynashape.Engine, keys: tuple[str, str]) -> None:
    other_priv, other_pub = generate_keypair(tmp_path / "other")
    path = tmp_path / "signed.engine"
    seg_engine.save(path, signing_key=other_priv)
    msg = _error(path, verify_key=keys[1])
    assert "it is signed by key" in msg and "not by the verify key" in msg
    assert dynashape.load(path, verify_key=other_pub).backend == "onnxruntime"


def test_tampered_signed_manifest(tmp_path: Path, seg_engine: dynashape.Engine, keys: tuple[str, str]) -> None:
    """The attacker edits the manifest and recomputes the digest; the signature no longer matches."""
    path = tmp_path / "signed.engine"
    seg_engine.save(path, signing_key=keys[0])
    doc, seal, raw = split(path)
    doc["profiles"][0]["input_1"]["max"] = [1, 3, 1024, 1024]
    bad = tmp_path / "tampered.engine"
    craft(bad, doc, raw, seal=seal)
    msg = _error(bad, verify_key=keys[1])
    assert "its signature does not match its contents" in msg and "the file was changed after signing" in msg
    # Dropping the signature does not help in require-signed mode.
    craft(bad, doc, raw)
    assert "is not signed" in _error(bad, verify_key=keys[1], require_signature=True)


def test_bad_keys(tmp_path: Path, seg_engine: dynashape.Engine, seg_engine_file: Path, keys: tuple[str, str]) -> None:
    with pytest.raises(EngineFileError, match=r"signing key file '.*missing\.pem' cannot be read"):
        seg_engine.save(tmp_path / "x.engine", signing_key=tmp_path / "missing.pem")
    with pytest.raises(EngineFileError, match="the signing key is not an unencrypted PEM private key"):
        seg_engine.save(tmp_path / "x.engine", signing_key=keys[1])  # a public key
    assert not (tmp_path / "x.engine").exists()
    assert "the verify key is not a PEM public key" in _error(seg_engine_file, verify_key=str(seg_engine_file))


# -- inductor engines: the package payloads are native code -----------------------------------------

@pytest.fixture(scope="module")
def sr_file(tmp_path_factory: pytest.TempPathFactory, sr_engine: dynashape.Engine) -> Path:
    path = tmp_path_factory.mktemp("sr") / "superres.engine"
    sr_engine.save(path)
    return path


def _repack(pt2: bytes, *, replace_so: bytes | None = None, add: list[zipfile.ZipInfo] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pt2)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if replace_so is not None and info.filename.endswith(".so"):
                data = replace_so
            dst.writestr(info, data)
        for extra in add or []:
            dst.writestr(extra, b"planted")
    return out.getvalue()


def _sr_input() -> np.ndarray:
    return np.random.default_rng(1).random((1, 1, 32, 32), dtype=np.float32)


@pytest.mark.slow
def test_replaced_so_is_refused_before_it_is_loaded(tmp_path: Path, sr_engine: dynashape.Engine, sr_file: Path,
                                                    cache: Path, keys: tuple[str, str]) -> None:
    """(a) The .so inside a package is replaced and the payload's sha256 recomputed in the manifest.

    Format 1 checked only the per-payload sha256, which the attacker rewrote, and loaded the .so.
    The file digest covers the manifest too; an attacker who recomputes it as well is stopped by a
    signature (require-signed mode), never by a checksum.
    """
    doc, seal, raw = split(sr_file)
    raw["profile0.pt2"] = _repack(raw["profile0.pt2"], replace_so=b"\x7fELF" + b"\x00" * 64)
    bad = tmp_path / "replaced.engine"
    craft(bad, doc, raw, seal=seal, fix_digest=False)  # per-payload sha256 recomputed, digest not
    assert "is corrupt: its manifest does not match its sha256 digest" in _error(bad)
    assert not cache.exists() or not os.listdir(cache), "nothing was extracted"
    signed = tmp_path / "signed.engine"
    sr_engine.save(signed, signing_key=keys[0])
    doc, seal, raw = split(signed)
    raw["profile0.pt2"] = _repack(raw["profile0.pt2"], replace_so=b"\x7fELF" + b"\x00" * 64)
    craft(bad, doc, raw, seal=seal)  # digest recomputed too, signature kept
    assert "its signature does not match its contents" in _error(bad, verify_key=keys[1])
    assert not cache.exists() or not os.listdir(cache), "nothing was extracted"


@pytest.mark.slow
def test_planted_cache_file_is_not_executed(sr_engine: dynashape.Engine, sr_file: Path, cache: Path, tmp_path: Path) -> None:
    """(b) A file planted under the payload's cache name (where the cache is now, and in the
    world-writable temp folder where it used to be) is re-hashed, replaced and never loaded."""
    _, _, raw = split(sr_file)
    payload = raw["profile0.pt2"]
    digest = hashlib.sha256(payload).hexdigest()
    old = tmp_path / "tmp" / f"dynashape-{os.getuid()}" / "aoti"
    old.mkdir(parents=True)
    (old / f"{digest[:32]}.pt2").write_bytes(b"planted")
    cache.mkdir(parents=True, mode=0o700)
    os.chmod(cache.parent, 0o700)
    (cache / f"{digest}.pt2").write_bytes(b"planted")
    engine = dynashape.load(sr_file)
    x = _sr_input()
    np.testing.assert_array_equal(engine.run({"input": x})["output"], sr_engine.run({"input": x})["output"])
    assert (cache / f"{digest}.pt2").read_bytes() == payload


@pytest.mark.slow
@pytest.mark.parametrize("how", ["other-uid", "world-writable"])
def test_unsafe_cache_folder_is_not_used(sr_engine: dynashape.Engine, sr_file: Path, cache: Path, how: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """(b) A cache folder that someone else owns or may write is not used: a private temp folder is."""
    _, _, raw = split(sr_file)
    cache.mkdir(parents=True, mode=0o700)
    os.chmod(cache.parent, 0o700)
    planted = cache / f"{hashlib.sha256(raw['profile0.pt2']).hexdigest()}.pt2"
    planted.write_bytes(b"planted")
    if how == "other-uid":
        if os.getuid() != 0:
            pytest.skip("only root can give a folder to another uid")
        os.chown(cache, 12345, 12345)
        why = "is owned by uid 12345"
    else:
        os.chmod(cache, 0o777)
        why = "is writable by others (mode 777)"
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        engine = dynashape.load(sr_file)
    x = _sr_input()
    np.testing.assert_array_equal(engine.run({"input": x})["output"], sr_engine.run({"input": x})["output"])
    assert why in caplog.text and "using the private folder" in caplog.text
    assert planted.read_bytes() == b"planted", "the unsafe folder was neither used nor written"


def _member(name: str, *, symlink: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    if symlink:
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.slow
@pytest.mark.parametrize(("member", "why"), [
    (_member("superres/../../evil.txt"), "a '..' component"),
    (_member("/tmp/evil.txt"), "an absolute path"),
    (_member("C:/evil.txt"), "a drive letter"),
    (_member("superres/data/link", symlink=True), "a symbolic link"),
], ids=["dotdot", "absolute", "drive", "symlink"])
def test_package_members_are_checked(tmp_path: Path, sr_file: Path, cache: Path, member: zipfile.ZipInfo, why: str) -> None:
    """(c) A package member that would be written outside torch's extraction folder is refused."""
    doc, _, raw = split(sr_file)
    raw["profile1.pt2"] = _repack(raw["profile1.pt2"], add=[member])
    bad = tmp_path / "members.engine"
    craft(bad, doc, raw)  # everything recomputed: the file is self-consistent
    msg = _error(bad)
    assert f"payload 'profile1.pt2' has the member {member.filename!r}, {why}" in msg
    assert not list(tmp_path.rglob("evil.txt"))


@pytest.mark.slow
def test_cuda_engine_on_a_cpu_machine(tmp_path: Path, sr_file: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    doc, _, raw = split(sr_file)
    bad = tmp_path / "cuda.engine"
    craft(bad, {**doc, "device": "cuda", "build_settings": {**doc["build_settings"], "device": "cuda"}}, raw)
    msg = _error(bad)
    assert "is an engine for cuda, and this machine has no CUDA device" in msg
    assert "rebuild the engine here with --device cpu" in msg
