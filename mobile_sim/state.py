"""What a phone keeps between runs: its identity, keys and everything needed offline.

Plain dataclasses with a CBOR (RFC 8949) form. Byte strings stay byte strings; nothing here
talks to the network or the disk (see :mod:`kagiya.phone.keystore`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kagiya.sdk.i18n import N_
from kagiya.sdk.protocol import Permission
from kagiya.server.client import DownloadedKey

FORMAT_VERSION = 1
# key statuses as shown (catalogue msgids, translated where displayed)
STATUS_WORDS = (N_("valid"), N_("not yet valid"), N_("expired"), N_("cancelled"))


def perm_names(bits: int) -> list[str]:
    """Human names of a permission bit field (protocol §3 ``kgy_perm``)."""
    names = [str(p.name).lower() for p in Permission if bits & p]
    return names or [N_("status only")]


@dataclass
class StoredKey(DownloadedKey):
    """A downloaded digital key (:class:`~kagiya.server.client.DownloadedKey`: the signed
    credential plus its per-key secret ``K``, drawn by this phone and wrapped to the lock;
    the server only ever saw the wrap) and what the phone learnt about it since."""

    downloaded_at: int = 0
    accepted_by_lock: bool = False  # the lock cached it: no need to resend the credential
    cancelled: str = ""  # why it no longer opens the vehicle (the lock said REVOKED), or ""

    @property
    def key_id_hex(self) -> str:
        """The key ID (``cti``) as hex."""
        return self.key_id.hex()

    def status_at(self, now: int) -> str:
        """``valid``, ``not yet valid``, ``expired`` or ``cancelled`` at unix time ``now``
        (the lock decides; ``cancelled`` once a lock refused the key as revoked)."""
        if self.cancelled:
            return "cancelled"
        if now < self.nbf:
            return "not yet valid"
        if now >= self.exp:
            return "expired"
        return "valid"

    def to_cbor(self) -> dict[str, Any]:
        """A CBOR-ready dict."""
        return asdict(self)

    @classmethod
    def from_cbor(cls, data: dict[str, Any]) -> StoredKey:
        """Inverse of :meth:`to_cbor` (unknown fields are ignored for forward compatibility)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RevocationEntry:
    """The newest server-signed revocation update held for one lock (protocol §7)."""

    version: int
    update: bytes
    fetched_at: int = 0
    decommission: bytes | None = None  # the lock was retired: carry this to it (§7a)


@dataclass
class WithdrawnKey:
    """A key that no longer opens the vehicle, kept so the app can say so (not "no keys")."""

    key_id: bytes
    lock_id: str
    reason: str  # a catalogue msgid (kagiya.sdk.i18n), shown in the user's language
    at: int
    exp: int = 0


MAX_WITHDRAWN = 10


@dataclass
class PhoneState:
    """Everything the phone stores; sealed as one file by the keystore."""

    profile: str
    device_key: bytes  # Ed25519 private key (RFC 8032 seed, 32 bytes)
    created_at: int = field(default_factory=lambda: int(time.time()))
    server_url: str = ""
    phone_id: str = ""
    user_id: str = ""
    token: str = ""
    token_expires_at: int = 0
    keys: dict[bytes, StoredKey] = field(default_factory=dict)
    time_statement: bytes = b""
    time_statement_iat: int = 0
    revocations: dict[str, RevocationEntry] = field(default_factory=dict)
    log_cursors: dict[str, int] = field(default_factory=dict)  # lock ID -> next from_seq
    last_sync: int = 0
    last_sync_error: str = ""
    issuer_keys: dict[bytes, bytes] = field(default_factory=dict)  # kid -> Ed25519 public
    withdrawn: list[WithdrawnKey] = field(default_factory=list)  # newest first
    # secrets this phone drew and sent wrapped, not yet in a downloaded key: wrap -> K
    wrapped_secrets: dict[bytes, bytes] = field(default_factory=dict)
    # the key server's signed log receipts to carry to each lock (protocol §11 "Receipts")
    log_receipts: dict[str, bytes] = field(default_factory=dict)

    @property
    def enrolled(self) -> bool:
        """True once the phone holds a server token."""
        return bool(self.phone_id and self.token)

    def note_withdrawn(self, key: StoredKey, reason: str, at: int) -> None:
        """Remember that ``key`` stopped working and why (bounded, newest first)."""
        self.withdrawn = [w for w in self.withdrawn if w.key_id != key.key_id]
        self.withdrawn.insert(0, WithdrawnKey(key.key_id, key.lock_id, reason, at, key.exp))
        del self.withdrawn[MAX_WITHDRAWN:]

    def usable_keys(self, lock_id: str, now: int) -> list[StoredKey]:
        """Keys for ``lock_id`` valid now by the phone's clock and not cancelled."""
        return [k for k in self.keys_for(lock_id) if k.status_at(now) == "valid"]

    def usable_keys_any(self, now: int) -> bool:
        """Is any key on this phone usable now?"""
        return any(k.status_at(now) == "valid" for k in self.keys.values())

    def keys_for(self, lock_id: str) -> list[StoredKey]:
        """Keys for ``lock_id``, newest expiry first."""
        return sorted(
            (k for k in self.keys.values() if k.lock_id == lock_id), key=lambda k: -k.exp
        )

    def to_cbor(self) -> dict[str, Any]:
        """A CBOR-ready dict with a format version."""
        return {
            "format": FORMAT_VERSION,
            "profile": self.profile,
            "device_key": self.device_key,
            "created_at": self.created_at,
            "server_url": self.server_url,
            "phone_id": self.phone_id,
            "user_id": self.user_id,
            "token": self.token,
            "token_expires_at": self.token_expires_at,
            "keys": [k.to_cbor() for k in self.keys.values()],
            "time_statement": self.time_statement,
            "time_statement_iat": self.time_statement_iat,
            "revocations": {lid: asdict(r) for lid, r in self.revocations.items()},
            "log_cursors": dict(self.log_cursors),
            "last_sync": self.last_sync,
            "last_sync_error": self.last_sync_error,
            "issuer_keys": dict(self.issuer_keys),
            "withdrawn": [asdict(w) for w in self.withdrawn],
            "wrapped_secrets": dict(self.wrapped_secrets),
            "log_receipts": dict(self.log_receipts),
        }

    @classmethod
    def from_cbor(cls, data: dict[str, Any]) -> PhoneState:
        """Inverse of :meth:`to_cbor`; raises ``ValueError`` on an unknown format."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise ValueError("unknown keystore format")
        keys = [StoredKey.from_cbor(k) for k in data.get("keys", [])]
        return cls(
            profile=data["profile"],
            device_key=data["device_key"],
            created_at=data.get("created_at", 0),
            server_url=data.get("server_url", ""),
            phone_id=data.get("phone_id", ""),
            user_id=data.get("user_id", ""),
            token=data.get("token", ""),
            token_expires_at=data.get("token_expires_at", 0),
            keys={k.key_id: k for k in keys},
            time_statement=data.get("time_statement", b""),
            time_statement_iat=data.get("time_statement_iat", 0),
            revocations={
                lid: RevocationEntry(**r) for lid, r in data.get("revocations", {}).items()
            },
            log_cursors=dict(data.get("log_cursors", {})),
            last_sync=data.get("last_sync", 0),
            last_sync_error=data.get("last_sync_error", ""),
            issuer_keys=dict(data.get("issuer_keys", {})),
            withdrawn=[WithdrawnKey(**w) for w in data.get("withdrawn", [])],
            wrapped_secrets=dict(data.get("wrapped_secrets", {})),
            log_receipts={str(k): bytes(v) for k, v in data.get("log_receipts", {}).items()},
        )
