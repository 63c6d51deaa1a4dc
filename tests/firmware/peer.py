"""A minimal, independent phone/server peer for the firmware tests (CPython).

Builds digital keys, time statements, revocation updates, proofs and messages straight
from docs/protocol.md with ``cryptography`` and ``cbor2``, so the firmware is checked
against a second reading of the spec (kagiya.sdk is checked against the same vectors in
test_vectors.py and used in test_sdk_peer.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

RAW = (Encoding.Raw, PublicFormat.Raw)
CT_TIME = "application/kgy-time+cbor"
CT_REVOCATION = "application/kgy-revocation+cbor"
CT_DECOMMISSION = "application/kgy-decommission+cbor"
OPERATOR = "op_test"
OP, GEN = -65541, -65542
PERM_DOORS, PERM_DRIVE, PERM_LOG = 1, 2, 4


def enc(obj: Any) -> bytes:
    """Deterministic CBOR (cbor2 canonical)."""
    return cbor2.dumps(obj, canonical=True)


def key_id(public: bytes) -> bytes:
    """First 8 bytes of SHA-256(public key) (protocol §2)."""
    return hashlib.sha256(public).digest()[:8]


@dataclass
class Issuer:
    """An issuer signing key (the key server's)."""

    sk: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public(self) -> bytes:
        """Raw 32-byte public key."""
        return self.sk.public_key().public_bytes(*RAW)

    @property
    def kid(self) -> bytes:
        """Issuer key ID."""
        return key_id(self.public)

    def sign1(self, payload: bytes, content_type: Any, *, alg: int = -8,
              kid: bytes | None = None, protected: dict | None = None) -> bytes:
        """A tagged COSE_Sign1 over ``payload`` (RFC 9052 §4.4)."""
        prot = protected if protected is not None else {
            1: alg, 3: content_type, 4: self.kid if kid is None else kid}
        pb = enc(prot)
        sig = self.sk.sign(enc(["Signature1", pb, b"", payload]))
        return enc(cbor2.CBORTag(18, [pb, {}, payload, sig]))


def wrap_key(secret: bytes, lock_x_public: bytes, *, lock_kid: bytes | None = None) -> dict:
    """The cnf claim: ``{2: Encrypted_COSE_Key}`` wrapping ``secret`` to the lock (§4)."""
    eph = X25519PrivateKey.generate()
    z = eph.exchange(X25519PublicKey.from_public_bytes(lock_x_public))
    rpb = enc({1: -25})
    info = enc([30, [None, None, None], [None, None, None], [128, rpb]])
    cek = HKDF(SHA256(), 16, bytes(32), info).derive(z)
    cpb = enc({1: 30})
    iv = os.urandom(13)
    ct = AESCCM(cek, tag_length=16).encrypt(iv, enc({1: 4, -1: secret}),
                                            enc(["Encrypt", cpb, b""]))
    runprot = {-1: {1: 1, -1: 4, -2: eph.public_key().public_bytes(*RAW)},
               4: lock_kid if lock_kid is not None else key_id(lock_x_public)}
    return {2: [cpb, {5: iv}, ct, [[rpb, runprot, b""]]]}


@dataclass
class Key:
    """A digital key as the phone holds it: credential bytes, cti and secret K."""

    credential: bytes
    cti: bytes
    secret: bytes


def issue(issuer: Issuer, lock_id: str, lock_x_public: bytes, *, nbf: int, exp: int,
          perm: int = 7, sub: str = "user-1", cti: bytes | None = None,
          secret: bytes | None = None, claims_override: dict | None = None,
          operator: str = OPERATOR, gen: int = 0, **sign_kw: Any) -> Key:
    """Issue a credential (COSE_Sign1 over CWT claims, §3)."""
    cti = cti or os.urandom(16)
    secret = secret or os.urandom(32)
    claims: dict = {1: "kagiya-test", 2: sub, 3: lock_id, 4: exp, 5: nbf, 6: nbf, 7: cti,
                    8: wrap_key(secret, lock_x_public), -65537: perm, -65538: 1,
                    OP: operator, GEN: gen}
    if claims_override:
        for k, v in claims_override.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
    return Key(issuer.sign1(enc(claims), 61, **sign_kw), cti, secret)


def time_statement(issuer: Issuer, t: int) -> bytes:
    """A signed time statement (§6)."""
    return issuer.sign1(enc({6: t}), CT_TIME)


def revocation(issuer: Issuer, lock_id: str, version: int,
               entries: list[tuple[bytes, int]], iat: int = 0, *,
               operator: str = OPERATOR, floor: int | None = None) -> bytes:
    """A signed revocation update (§7): listed keys and the generation floor."""
    p: dict = {3: lock_id, 6: iat, -65539: version, -65540: [list(e) for e in entries],
               OP: operator}
    if floor is not None:
        p[-65543] = floor
    return issuer.sign1(enc(p), CT_REVOCATION)


def decommission(issuer: Issuer, lock_id: str, lock_x_public: bytes, *,
                 operator: str = OPERATOR, iat: int = 0) -> bytes:
    """A signed decommission update (§7a) for the lock whose X25519 key is given."""
    return issuer.sign1(enc({3: lock_id, 6: iat, OP: operator,
                             -65545: key_id(lock_x_public)}), CT_DECOMMISSION)


def proof(secret: bytes, nonce: bytes, lock_id: str, cti: bytes, command: int,
          counter: int, arg: int = 0) -> bytes:
    """Command proof (§8, v2)."""
    lid = lock_id.encode()
    msg = (b"KGY2-CMD" + nonce + bytes([len(lid)]) + lid + cti + bytes([command])
           + counter.to_bytes(4, "big") + arg.to_bytes(4, "big"))
    return hmac.new(secret, msg, hashlib.sha256).digest()


def reply_mac(secret: bytes, nonce: bytes, lock_id: str, cti: bytes, command: int,
              counter: int, code: int, body: bytes) -> bytes:
    """Reply MAC (§8, v2): ``body`` is the reply's encoding without key 15."""
    lid = lock_id.encode()
    msg = (b"KGY2-RES" + nonce + bytes([len(lid)]) + lid + cti + bytes([command])
           + counter.to_bytes(4, "big") + code.to_bytes(2, "big")
           + hashlib.sha256(body).digest())
    return hmac.new(secret, msg, hashlib.sha256).digest()


def reply_body(reply: dict) -> bytes:
    """The bytes a v2 reply MAC covers: the reply map without key 15."""
    return enc({k: v for k, v in reply.items() if k != 15})


def check_reply_mac(key: Key, nonce: bytes, lock_id: str, reply: dict,
                    command: int | None = None) -> bool:
    """True iff a RESULT / LOG reply's MAC verifies under K for ``nonce``."""
    cmd = command if command is not None else reply[2] if reply[0] == 4 else 16
    code = reply[3] if reply[0] == 4 else 0
    want = reply_mac(key.secret, nonce, lock_id, key.cti, cmd, reply[1], code,
                     reply_body(reply))
    return hmac.compare_digest(reply[15], want)


def fresh_time_statement(issuer: Issuer, lock_id: str, t: int, nonce: bytes) -> bytes:
    """A fresh time statement bound to the lock and one of its nonces (§6, v2)."""
    return issuer.sign1(enc({3: lock_id, 6: t, 7: nonce}), CT_TIME)


def hello(versions: list[int] | None = None) -> bytes:
    """HELLO message (protocol version 2 by default)."""
    return enc({0: 1, 1: versions if versions is not None else [2]})


def command(key: Key, nonce: bytes, lock_id: str, cmd: int, counter: int, *,
            with_credential: bool = False, bad_proof: bool = False) -> bytes:
    """COMMAND message with a proof."""
    p = proof(key.secret, nonce, lock_id, key.cti, cmd, counter)
    if bad_proof:
        p = bytes([p[0] ^ 1]) + p[1:]
    m: dict = {0: 3, 1: key.cti, 2: counter, 3: cmd, 4: p}
    if with_credential:
        m[5] = key.credential
    return enc(m)


def log_fetch(key: Key, nonce: bytes, lock_id: str, counter: int, from_seq: int, *,
              with_credential: bool = False) -> bytes:
    """LOG_FETCH message."""
    m: dict = {0: 8, 1: key.cti, 2: counter, 3: from_seq,
               4: proof(key.secret, nonce, lock_id, key.cti, 16, counter, from_seq)}
    if with_credential:
        m[5] = key.credential
    return enc(m)


def verify_log_chain(lock_id: str, records: list[bytes], prev_hash: bytes) -> bytes:
    """Recompute the §11 chain over ``records`` from ``prev_hash``; the last hash."""
    h = prev_hash
    for r in records:
        h = hashlib.sha256(h + r).digest()
    return h


def log_h0(lock_id: str) -> bytes:
    """h_0 of the chain (§11)."""
    return hashlib.sha256(b"KGY1-LOG" + lock_id.encode()).digest()
