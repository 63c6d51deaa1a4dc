"""The phone's keystore: one sealed file per profile holding its :class:`PhoneState`.

Layout of a profile directory (mode 0700, every file 0600)::

    profile.key | profile.salt   the profile key source (see vault.py)
    keystore.kgy                 the sealed PhoneState (device key, keys + secrets, statements)
    keystore.prev                the previous good copy (hard link kept at every save)
    outbox/                      sealed queued uploads (see outbox.py)
    profile.lock                 advisory lock serialising processes on this profile

Saving never loses the old state: the new file is written and fsynced under a temporary
name, the current file is hard-linked to ``keystore.prev``, then the new file is renamed
over the current one. A damaged ``keystore.kgy`` raises :class:`KeystoreCorrupt`, is never
overwritten by a later save, and can be rolled back to ``keystore.prev`` explicitly.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from kagiya.phone.state import PhoneState
from kagiya.phone.vault import (
    KeystoreCorrupt,
    KeystoreLocked,
    ProfileKey,
    open_profile_key,
    seal,
    unseal,
    write_private,
)

STORE_NAME = "keystore.kgy"
PREV_NAME = "keystore.prev"
LOCK_NAME = "profile.lock"

__all__ = ["Keystore", "KeystoreCorrupt", "KeystoreLocked", "ProfileMissing"]


class ProfileMissing(Exception):
    """The profile has not been created (no keystore file)."""


def _new_device_key() -> bytes:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


class Keystore:
    """Sealed storage of one phone profile's state in ``directory``."""

    def __init__(self, directory: Path, passphrase: str | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STORE_NAME
        self.prev_path = self.directory / PREV_NAME
        self._passphrase = passphrase
        self._pkey: ProfileKey | None = None

    # -- key -----------------------------------------------------------------
    def profile_key(self, *, create: bool = False) -> ProfileKey:
        """The profile key (derived or read once per instance)."""
        if self._pkey is None:
            self._pkey = open_profile_key(self.directory, self._passphrase, create=create)
        return self._pkey

    # -- lifecycle -----------------------------------------------------------
    def exists(self) -> bool:
        """True if the profile has a keystore file (damaged or not)."""
        return self.path.exists()

    def create(self, profile: str) -> PhoneState:
        """Create a new profile with a fresh Ed25519 device key; refuses to overwrite one."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        if self.exists():
            raise FileExistsError(f"{self.path} already exists")
        state = PhoneState(profile=profile, device_key=_new_device_key())
        self._write(self.profile_key(create=True), state)
        return state

    def load(self) -> PhoneState:
        """Load the state; :class:`KeystoreCorrupt` / :class:`KeystoreLocked` on failure."""
        if not self.exists():
            raise ProfileMissing(f"no phone profile at {self.directory}")
        return self._read(self.path)

    def save(self, state: PhoneState) -> None:
        """Atomically replace the stored state, keeping the previous copy."""
        self._write(self.profile_key(), state)

    @contextmanager
    def transaction(self) -> Iterator[PhoneState]:
        """Exclusive read-modify-write: load under the profile lock, save on normal exit."""
        with self.locked():
            state = self.load()
            yield state
            self.save(state)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the profile's advisory lock (other processes on this profile wait)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def restore_previous(self) -> PhoneState:
        """Roll back to ``keystore.prev`` after checking it is intact; the damaged file is kept
        as ``keystore.damaged-<random>`` for inspection."""
        if not self.prev_path.exists():
            raise KeystoreCorrupt(f"no previous copy at {self.prev_path}")
        state = self._read(self.prev_path)
        if self.path.exists():
            self.path.rename(self.directory / f"keystore.damaged-{secrets.token_hex(3)}")
        os.link(self.prev_path, self.path)
        return state

    # -- internals -----------------------------------------------------------
    def _read(self, path: Path) -> PhoneState:
        blob = path.read_bytes()
        plain = unseal(self.profile_key(), blob, name=str(path))
        try:
            data = cbor2.loads(plain)
            return PhoneState.from_cbor(data)
        except (ValueError, KeyError, TypeError, cbor2.CBORDecodeError) as exc:
            raise KeystoreCorrupt(f"{path}: contents are not a phone state ({exc})") from None

    def _write(self, pkey: ProfileKey, state: PhoneState) -> None:
        if self.path.exists():
            self._read(self.path)  # never replace (or back up) a damaged store: raises
        blob = seal(pkey, cbor2.dumps(state.to_cbor(), canonical=True))
        tmp = self.directory / f".{STORE_NAME}.new"
        write_private(tmp, blob)
        if self.path.exists():
            link_tmp = self.directory / f".{PREV_NAME}.{secrets.token_hex(4)}"
            os.link(self.path, link_tmp)
            os.replace(link_tmp, self.prev_path)
        os.replace(tmp, self.path)
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
