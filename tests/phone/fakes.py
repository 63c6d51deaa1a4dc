"""In-memory stand-ins for the key server and a lock, to test the phone's own logic fast.

The real server and the virtual BLE lock are exercised in test_phone_e2e.py and
tests/test_demo.py; these fakes only implement the narrow ports of kagiya.phone.ports.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from kagiya.phone.ports import (
    Enrolled,
    LockState,
    LogBatch,
    Offline,
    ServerRefused,
    SyncBundle,
    TokenRejected,
)
from kagiya.phone.state import StoredKey
from kagiya.sdk.credential import sign_credential
from kagiya.sdk.dpop import verify_proof
from kagiya.sdk.enrollment import auth_message, enroll_message
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey, LockIdentity
from kagiya.sdk.keywrap import check_wrap_form


@dataclass
class FakeServer:
    """Holds codes, phones, keys per user, revocation updates and uploaded logs."""

    online: bool = True
    now: int = 1_000_000
    codes: dict[str, str] = field(default_factory=dict)  # code -> user
    phones: dict[str, str] = field(default_factory=dict)  # phone -> user
    tokens: dict[str, str] = field(default_factory=dict)  # token -> phone
    devices: dict[str, bytes] = field(default_factory=dict)  # phone -> device public key
    auth_proofs: set[tuple[str, int]] = field(default_factory=set)  # (phone, ts) used
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user -> keys
    revocations: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    reject_uploads: bool = False
    issuer: IssuerKey = field(default_factory=IssuerKey.generate)
    lock_keys: dict[str, LockIdentity] = field(default_factory=dict)  # lock ID -> identity
    proofs: list[str] = field(default_factory=list)  # DPoP proofs seen (all verified)

    def _check(self) -> None:
        if not self.online:
            raise Offline("connection refused")

    def add_key(self, user: str, lock_id: str, *, perms: int = 7, request: str = "kr_1",
                nbf: int | None = None, exp: int | None = None) -> dict[str, Any]:
        """A key request: pending until the phone sends its wrap, then a signed key with
        this ``key_id``."""
        lock = self.lock_keys.setdefault(lock_id, LockIdentity.generate())
        k = {
            "request_id": request, "request_version": 1, "key_id": secrets.token_hex(16),
            "lock_id": lock_id, "user_id": user, "nbf": self.now - 10 if nbf is None else nbf,
            "exp": self.now + 3600 if exp is None else exp, "iat": self.now,
            "permissions": perms, "kid": self.issuer.kid.hex(), "credential": "",
            "lock_kex_public": lock.kex_public.hex(),
        }
        self.keys.setdefault(user, []).append(k)
        return k

    def _sign(self, k: dict[str, Any], cnf: bytes) -> None:
        wrap = check_wrap_form(cnf, bytes.fromhex(k["lock_kex_public"]))
        credential, _cti = sign_credential(
            self.issuer, iss="fake", sub=k["user_id"], aud=k["lock_id"], nbf=k["nbf"],
            exp=k["exp"], iat=k["iat"], permissions=k["permissions"], request_version=1,
            cnf=wrap, cti=bytes.fromhex(k["key_id"]), operator="op_fake")
        k["credential"] = credential.hex()

    def _proof(self, token: str, prove: Any, method: str, path: str) -> None:
        header = prove(method, "https://fake" + path, token, None)
        verify_proof(header, device_public=self.devices[self.tokens[token]], method=method,
                     path=path, access_token=token, now=self.now)
        self.proofs.append(header)

    def cancel(self, user: str, key_id: str, lock_id: str) -> None:
        k = next(k for k in self.keys[user] if k["key_id"] == key_id)
        self.keys[user].remove(k)
        version = self.revocations.get(lock_id, (0, b""))[0] + 1
        self.revocations[lock_id] = (version, b"rev:" + bytes.fromhex(key_id))

    def enroll(self, code: str, device_public: bytes, signature: bytes) -> Enrolled:
        self._check()
        Ed25519PublicKey.from_public_bytes(device_public).verify(
            signature, enroll_message(code, device_public)
        )
        user = self.codes.pop(code)
        phone = "ph_" + secrets.token_hex(4)
        self.phones[phone] = user
        self.devices[phone] = device_public
        tok = secrets.token_hex(8)
        self.tokens[tok] = phone
        return Enrolled(phone, user, tok, 3600)

    def phone_token(self, phone_id: str, timestamp: int, signature: bytes) -> Enrolled:
        self._check()
        Ed25519PublicKey.from_public_bytes(self.devices[phone_id]).verify(
            signature, auth_message(phone_id, timestamp)
        )
        if (phone_id, timestamp) in self.auth_proofs:  # the server accepts each proof once
            raise ServerRefused(403, "replayed-proof", "this signed timestamp was already used")
        self.auth_proofs.add((phone_id, timestamp))
        tok = secrets.token_hex(8)
        self.tokens[tok] = phone_id
        return Enrolled(phone_id, self.phones[phone_id], tok, 3600)

    def _user(self, token: str) -> str:
        if token not in self.tokens:
            raise TokenRejected(401, "unauthorized", "token expired")
        return self.phones[self.tokens[token]]

    def sync(self, token: str, prove: Any,
             wraps: list[dict[str, str]] | None = None) -> SyncBundle:
        self._check()
        user = self._user(token)
        self._proof(token, prove, "POST" if wraps else "GET", "/v1/phone/keys")
        by_request = {w["request_id"]: bytes.fromhex(w["cnf"]) for w in wraps or []}
        for k in self.keys.get(user, []):
            if k["request_id"] in by_request:
                self._sign(k, by_request[k["request_id"]])
        keys = [dict(k) for k in self.keys.get(user, []) if k["credential"]]
        pending = [
            {"request_id": k["request_id"], "request_version": 1, "lock_id": k["lock_id"],
             "lock_kex_public": k["lock_kex_public"]}
            for k in self.keys.get(user, []) if not k["credential"]
        ]
        locks = {k["lock_id"] for k in keys} | set(self.revocations)
        revs = [
            {"lock_id": lid, "version": v, "entries": 1, "update": u.hex()}
            for lid, (v, u) in self.revocations.items() if lid in locks
        ]
        return SyncBundle(keys, revs, self.now, b"time@" + str(self.now).encode(),
                          pending=pending)

    def upload_log(self, token: str, payload: dict[str, Any], prove: Any,
                   idempotency_key: str | None = None) -> dict[str, Any]:
        self._check()
        self._user(token)
        self._proof(token, prove, "POST", "/v1/phone/logs")
        if self.reject_uploads:
            from kagiya.phone.ports import ServerRefused

            raise ServerRefused(422, "log-invalid", "head signature does not verify")
        self.uploads.append(payload)
        return {"accepted": len(payload["records"]), "duplicates": 0, "conflicts": []}


@dataclass
class FakeLock:
    """A lock that knows its ID, time, revoked key IDs and a log."""

    lock_id: str
    time: int = 1_000_000
    rev_version: int = 0
    revoked: set[bytes] = field(default_factory=set)
    bits: int = 0b1001
    log: list[bytes] = field(default_factory=list)
    decoded: list[list[Any]] = field(default_factory=list)  # [seq, time, event, code, cti, sub]
    seen_time_statements: list[bytes] = field(default_factory=list)

    def apply_revocation(self, update: bytes, version: int) -> None:
        if version > self.rev_version:
            self.rev_version = version
            self.revoked.add(update[4:])

    def run(self, key: StoredKey, command: str) -> LockState:
        if key.lock_id != self.lock_id:
            raise ProtocolError(ErrorCode.WRONG_LOCK, "audience")
        if self.time >= key.exp:
            raise ProtocolError(ErrorCode.EXPIRED)
        if key.key_id in self.revoked:
            raise ProtocolError(ErrorCode.REVOKED)
        self.bits = {
            "unlock": self.bits & ~1, "lock": self.bits | 1, "drive-on": self.bits | 2,
            "drive-off": self.bits & ~2, "status": self.bits,
        }[command]
        self.log.append(f"{len(self.log) + 1}:{command}".encode())
        return LockState(self.bits, self.time, self.rev_version)


class FakeSession:
    """The LockPort of one connection."""

    def __init__(self, lock: FakeLock) -> None:
        self.lock = lock

    @property
    def lock_id(self) -> str:
        return self.lock.lock_id

    async def command(self, key: Any, command: str) -> LockState:
        return self.lock.run(key, command)

    async def fetch_log(self, key: Any, from_seq: int) -> list[LogBatch]:
        recs = self.lock.log[from_seq - 1:]
        return [LogBatch(self.lock.lock_id, recs, b"\0" * 32, len(self.lock.log), b"\1" * 32, 0,
                         b"\2" * 64, next_seq=len(self.lock.log) + 1,
                         decoded=self.lock.decoded[from_seq - 1:])]


def connector(locks: dict[str, FakeLock]) -> Any:
    """A lock connector over fake locks (``KeyError`` -> not found)."""

    @asynccontextmanager
    async def connect(lock_id: str, *, timeout: float = 10.0, time_statement: bytes | None = None,
                      revocation: tuple[bytes, int] | None = None,
                      accepted: set[bytes] | None = None,
                      fresh_time: Any = None,
                      decommission: bytes | None = None,
                      log_receipt: bytes | None = None) -> AsyncIterator[FakeSession]:
        if lock_id not in locks:
            raise TimeoutError(f"lock {lock_id} not found")
        lock = locks[lock_id]
        if time_statement:
            lock.seen_time_statements.append(time_statement)
        if revocation:
            lock.apply_revocation(*revocation)
        yield FakeSession(lock)

    return connect
