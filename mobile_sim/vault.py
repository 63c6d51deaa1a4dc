"""Encrypted files at rest: the sealed-file format and its key sources.

Every file of a phone profile that holds secrets or queued data is *sealed*: AES-256-GCM
(NIST SP 800-38D) under a 32-byte profile key, with the file header as associated data so
the header cannot be swapped either. The profile key comes from one of two sources:

* a **passphrase** (``KAGIYA_PHONE_PASSPHRASE`` or ``--passphrase-file``), stretched with
  scrypt (RFC 7914, N=2^15, r=8, p=1) and a random per-profile salt;
* a **key file** ``profile.key`` (32 random bytes, mode 0600) next to the data — the
  simulator's default so that scripts run unattended.

Threat model, honestly: sealing protects the keys against someone who gets a copy of the
data files alone (a backup, a synced folder, a bug report attachment) and detects any
tampering or truncation. With the key-file source, anyone who can read the whole profile
directory as the same user can read the keys — exactly like any app data without hardware
backing. A real phone app keeps the profile key in the platform keystore (Android Keystore,
iOS Secure Enclave / Keychain) instead of a file; that is the one line an integrator changes.

File layout (all integers big-endian)::

    magic   8 bytes  b"KGYPHV01"
    kdf     u8       1 = key file, 2 = scrypt passphrase
    salt    16 bytes (zeros for a key file)
    check   16 bytes HMAC-SHA-256(key, "KGY-PHONE-KEYCHECK")[:16]  (wrong key vs. damage)
    nonce   12 bytes random
    body    AES-GCM ciphertext || 16-byte tag, AAD = all bytes before it
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"KGYPHV01"
KDF_KEYFILE = 1
KDF_SCRYPT = 2
HEADER_LEN = len(MAGIC) + 1 + 16 + 16 + 12
TAG_LEN = 16
KEYFILE_NAME = "profile.key"
SALT_NAME = "profile.salt"
PASSPHRASE_ENV = "KAGIYA_PHONE_PASSPHRASE"  # noqa: S105 (a variable name)
_CHECK_LABEL = b"KGY-PHONE-KEYCHECK"
_SCRYPT_N = 2**15


class VaultError(Exception):
    """Base class of the keystore's at-rest errors."""


class KeystoreCorrupt(VaultError):
    """A sealed file is truncated, tampered with or not a Kagiya file; nothing was dropped."""


class KeystoreLocked(VaultError):
    """The profile key is missing or wrong (wrong passphrase, key file gone)."""


@dataclass(frozen=True)
class ProfileKey:
    """The 32-byte key sealing a profile's files, with how it was obtained."""

    key: bytes
    kdf: int
    salt: bytes

    @property
    def check(self) -> bytes:
        """Key-check value stored in each header (tells a wrong key from a damaged file)."""
        return hmac.new(self.key, _CHECK_LABEL, hashlib.sha256).digest()[:16]


def _scrypt(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1)
    return kdf.derive(passphrase.encode("utf-8"))


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600 (new file, fsync, rename, fsync dir)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def open_profile_key(directory: Path, passphrase: str | None = None, *, create: bool) -> ProfileKey:
    """Return the profile key of ``directory``.

    With a passphrase (argument or ``$KAGIYA_PHONE_PASSPHRASE``) the key is derived with scrypt
    from the salt in ``profile.salt``; otherwise it is read from ``profile.key``. With
    ``create`` a missing salt or key file is generated (0600); without it a missing one is
    :class:`KeystoreLocked`.
    """
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    if passphrase is not None:
        salt_path = directory / SALT_NAME
        if salt_path.exists():
            salt = salt_path.read_bytes()
            if len(salt) != 16:
                raise KeystoreCorrupt(f"{salt_path}: salt file is damaged ({len(salt)} bytes)")
        elif create:
            salt = secrets.token_bytes(16)
            write_private(salt_path, salt)
        else:
            raise KeystoreLocked(
                f"{directory}: no passphrase salt; was this profile made with a key file?"
            )
        return ProfileKey(_scrypt(passphrase, salt), KDF_SCRYPT, salt)
    key_path = directory / KEYFILE_NAME
    if key_path.exists():
        key = key_path.read_bytes()
        if len(key) != 32:
            raise KeystoreLocked(f"{key_path}: key file is damaged ({len(key)} bytes, expected 32)")
    elif create:
        key = secrets.token_bytes(32)
        write_private(key_path, key)
    else:
        raise KeystoreLocked(
            f"{key_path} is missing: set {PASSPHRASE_ENV} if this profile uses a passphrase"
        )
    return ProfileKey(key, KDF_KEYFILE, bytes(16))


def seal(pkey: ProfileKey, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` into the sealed-file format."""
    header = MAGIC + bytes([pkey.kdf]) + pkey.salt + pkey.check + secrets.token_bytes(12)
    return header + AESGCM(pkey.key).encrypt(header[-12:], plaintext, header)


def unseal(pkey: ProfileKey, blob: bytes, *, name: str = "file") -> bytes:
    """Decrypt a sealed file; :class:`KeystoreCorrupt` or :class:`KeystoreLocked` on failure."""
    if len(blob) < HEADER_LEN + TAG_LEN:
        raise KeystoreCorrupt(
            f"{name} is truncated ({len(blob)} bytes; at least {HEADER_LEN + TAG_LEN} expected)"
        )
    if blob[: len(MAGIC)] != MAGIC:
        raise KeystoreCorrupt(f"{name} is not a Kagiya phone keystore file (bad magic)")
    header = blob[:HEADER_LEN]
    kdf = header[len(MAGIC)]
    check = header[len(MAGIC) + 17 : len(MAGIC) + 33]
    if kdf != pkey.kdf:
        kinds = {KDF_KEYFILE: "a key file", KDF_SCRYPT: "a passphrase"}
        raise KeystoreLocked(f"{name} is sealed with {kinds.get(kdf, f'kdf {kdf}')}")
    if not hmac.compare_digest(check, pkey.check):
        raise KeystoreLocked(f"{name}: wrong passphrase or key file")
    try:
        return AESGCM(pkey.key).decrypt(header[-12:], blob[HEADER_LEN:], header)
    except InvalidTag:
        raise KeystoreCorrupt(
            f"{name} is damaged or was tampered with (authentication tag mismatch)"
        ) from None


def read_sealed(pkey: ProfileKey, path: Path) -> bytes:
    """Read and unseal ``path``."""
    return unseal(pkey, path.read_bytes(), name=str(path))


def write_sealed(pkey: ProfileKey, path: Path, plaintext: bytes) -> None:
    """Seal ``plaintext`` and write it atomically with mode 0600."""
    write_private(path, seal(pkey, plaintext))
