"""The phone keystore: sealed at rest, 0600, atomic, and loud about damage (never drops keys)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from kagiya.phone.keystore import Keystore, KeystoreCorrupt, KeystoreLocked, ProfileMissing
from kagiya.phone.state import RevocationEntry, StoredKey

PASS = "correct horse"  # noqa: S105 (a test passphrase, not a secret)


def _key(n: int, lock_id: str = "LOCK-1") -> StoredKey:
    return StoredKey(
        key_id=bytes([n]) * 16, lock_id=lock_id, user_id="u-1", nbf=100, exp=200,
        permissions=7, credential=b"\xd2cred" + bytes([n]), secret=bytes([n]) * 32,
    )


def _store_with_keys(tmp_path: Path, n: int = 3) -> Keystore:
    ks = Keystore(tmp_path / "p")
    ks.create("p")
    with ks.transaction() as st:
        for i in range(1, n + 1):
            k = _key(i)
            st.keys[k.key_id] = k
        st.revocations["LOCK-1"] = RevocationEntry(version=3, update=b"\xd2rev")
        st.time_statement = b"\xd2time"
    return ks


def test_roundtrip_keeps_keys_and_offline_material(tmp_path: Path) -> None:
    ks = _store_with_keys(tmp_path)
    st = Keystore(tmp_path / "p").load()
    assert sorted(k.key_id[0] for k in st.keys.values()) == [1, 2, 3]
    assert st.keys[bytes([2]) * 16].secret == bytes([2]) * 32
    assert st.revocations["LOCK-1"].version == 3
    assert st.time_statement == b"\xd2time"
    assert len(st.device_key) == 32
    assert ks.load().device_key == st.device_key


def test_files_are_private_and_secrets_not_in_clear(tmp_path: Path) -> None:
    ks = _store_with_keys(tmp_path)
    assert stat.S_IMODE(os.stat(ks.directory).st_mode) == 0o700
    for name in ("keystore.kgy", "keystore.prev", "profile.key"):
        assert stat.S_IMODE(os.stat(ks.directory / name).st_mode) == 0o600, name
    blob = ks.path.read_bytes()
    assert bytes([2]) * 32 not in blob
    assert ks.load().device_key not in blob


def test_truncated_file_is_a_clear_error_and_is_never_overwritten(tmp_path: Path) -> None:
    ks = _store_with_keys(tmp_path)
    good = ks.path.read_bytes()
    for cut in (0, 10, len(good) // 2, len(good) - 1):
        ks.path.write_bytes(good[:cut])
        with pytest.raises(KeystoreCorrupt, match=r"truncated|damaged"):
            Keystore(ks.directory).load()
    damaged = ks.path.read_bytes()
    # a save on a damaged store refuses instead of silently replacing it (and its keys)
    fresh = Keystore(ks.directory)
    with pytest.raises(KeystoreCorrupt):
        with fresh.transaction():
            pass
    with pytest.raises(KeystoreCorrupt):
        fresh.save(fresh._read(fresh.prev_path))
    assert ks.path.read_bytes() == damaged


def test_tampered_byte_is_detected(tmp_path: Path) -> None:
    ks = _store_with_keys(tmp_path)
    blob = bytearray(ks.path.read_bytes())
    blob[-20] ^= 1
    ks.path.write_bytes(bytes(blob))
    with pytest.raises(KeystoreCorrupt, match="tampered"):
        Keystore(ks.directory).load()


def test_restore_previous_copy_after_damage(tmp_path: Path) -> None:
    ks = _store_with_keys(tmp_path)
    with ks.transaction() as st:
        k = _key(9)
        st.keys[k.key_id] = k
    ks.path.write_bytes(ks.path.read_bytes()[:40])
    restored = Keystore(ks.directory).restore_previous()
    assert len(restored.keys) == 3  # the copy before the last save, explicitly chosen
    assert list(ks.directory.glob("keystore.damaged-*"))
    assert len(Keystore(ks.directory).load().keys) == 3


def test_wrong_passphrase_is_locked_not_corrupt(tmp_path: Path) -> None:
    ks = Keystore(tmp_path / "p", passphrase=PASS)
    ks.create("p")
    assert not (ks.directory / "profile.key").exists()
    assert Keystore(tmp_path / "p", passphrase=PASS).load().profile == "p"
    with pytest.raises(KeystoreLocked, match="wrong passphrase"):
        Keystore(tmp_path / "p", passphrase=PASS + "x").load()
    # no passphrase and no key file: locked, with a hint
    with pytest.raises(KeystoreLocked, match="KAGIYA_PHONE_PASSPHRASE"):
        Keystore(tmp_path / "p").load()


def test_passphrase_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_PHONE_PASSPHRASE", "s3cret")
    Keystore(tmp_path / "p").create("p")
    assert Keystore(tmp_path / "p").load().profile == "p"
    monkeypatch.setenv("KAGIYA_PHONE_PASSPHRASE", "other")
    with pytest.raises(KeystoreLocked):
        Keystore(tmp_path / "p").load()


def test_missing_profile_and_no_overwrite(tmp_path: Path) -> None:
    with pytest.raises(ProfileMissing):
        Keystore(tmp_path / "nope").load()
    ks = Keystore(tmp_path / "p")
    ks.create("p")
    with pytest.raises(FileExistsError):
        ks.create("p")


def test_damaged_key_file_is_locked(tmp_path: Path) -> None:
    ks = _store_with_keys(tmp_path)
    (ks.directory / "profile.key").write_bytes(b"short")
    with pytest.raises(KeystoreLocked, match="damaged"):
        Keystore(ks.directory).load()
