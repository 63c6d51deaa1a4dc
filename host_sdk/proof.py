"""Session proofs (docs/protocol.md §8): the phone's command proof and the lock's reply MAC.

Both are HMAC-SHA-256 (RFC 2104, FIPS 180-4) keyed with the key's 32-byte secret K over a
domain-separated, fixed-layout message; comparisons use :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import ErrorCode, ProtocolError
from .protocol import LABEL_CMD as CMD_LABEL
from .protocol import LABEL_RES as RES_LABEL

MAC_LEN = 32


def _lock_id_field(lock_id: str | bytes) -> bytes:
    raw = lock_id.encode() if isinstance(lock_id, str) else bytes(lock_id)
    if len(raw) > 255:
        raise ValueError("lock ID longer than 255 bytes")
    return bytes((len(raw),)) + raw


def _u(value: int, width: int) -> bytes:
    if not 0 <= int(value) < (1 << (8 * width)):
        raise ValueError(f"{value} does not fit in {width} bytes")
    return int(value).to_bytes(width, "big")


def _fixed(value: bytes, n: int, what: str) -> bytes:
    if len(value) != n:
        raise ValueError(f"{what} must be {n} bytes")
    return bytes(value)


def command_message(nonce: bytes, lock_id: str | bytes, cti: bytes, command: int,
                    counter: int, arg: int = 0) -> bytes:
    """The bytes a command proof covers (§8)."""
    return (CMD_LABEL + _fixed(nonce, 16, "nonce") + _lock_id_field(lock_id)
            + _fixed(cti, 16, "cti") + _u(command, 1) + _u(counter, 4) + _u(arg, 4))


def command_proof(secret: bytes, nonce: bytes, lock_id: str | bytes, cti: bytes,
                  command: int, counter: int, arg: int = 0) -> bytes:
    """HMAC-SHA-256(K, "KGY2-CMD" || nonce || u8 len || lock_id || cti || u8 command
    || u32be counter || u32be arg) — ``arg`` is ``from_seq`` for LOG_FETCH, else 0."""
    msg = command_message(nonce, lock_id, cti, command, counter, arg)
    return hmac.new(bytes(secret), msg, hashlib.sha256).digest()


def verify_command_proof(secret: bytes, nonce: bytes, lock_id: str | bytes, cti: bytes,
                         command: int, counter: int, arg: int, proof: bytes) -> bool:
    """Constant-time check of a command proof (what the lock does before acting)."""
    expected = command_proof(secret, nonce, lock_id, cti, command, counter, arg)
    return hmac.compare_digest(expected, bytes(proof))


def reply_message(nonce: bytes, lock_id: str | bytes, cti: bytes, command: int, counter: int,
                  code: int, body: bytes) -> bytes:
    """The bytes a reply MAC covers (§8, v2); ``body`` is hashed with SHA-256."""
    return (RES_LABEL + _fixed(nonce, 16, "nonce") + _lock_id_field(lock_id)
            + _fixed(cti, 16, "cti") + _u(command, 1) + _u(counter, 4) + _u(code, 2)
            + hashlib.sha256(bytes(body)).digest())


def reply_mac(secret: bytes, nonce: bytes, lock_id: str | bytes, cti: bytes, command: int,
              counter: int, code: int, body: bytes) -> bytes:
    """HMAC-SHA-256(K, "KGY2-RES" || nonce || u8 len || lock_id || cti || u8 command
    || u32be counter || u16be code || SHA-256(body)).

    ``body`` is :func:`kagiya.sdk.messages.mac_body` of the RESULT or LOG: the whole
    reply without its MAC, so state, lock time, revocation version and next nonce are
    all authenticated. ``nonce`` is the one the request was proved over.
    """
    msg = reply_message(nonce, lock_id, cti, command, counter, code, body)
    return hmac.new(bytes(secret), msg, hashlib.sha256).digest()


def verify_reply_mac(secret: bytes, nonce: bytes, lock_id: str | bytes, cti: bytes,
                     command: int, counter: int, code: int, body: bytes,
                     mac: bytes) -> bool:
    """Constant-time check of a reply MAC; a reply failing this never counts as success."""
    expected = reply_mac(secret, nonce, lock_id, cti, command, counter, code, body)
    return hmac.compare_digest(expected, bytes(mac))


class ReplayGuard:
    """The lock's per-session counter rule (§8): accept only ``counter > last``.

    The counter is checked *before* the proof (a replay is refused as ``REPLAYED`` without
    spending an HMAC); ``last`` advances only after a proof was accepted.
    """

    def __init__(self) -> None:
        self.last = 0

    def check(self, counter: int) -> None:
        """Raise ProtocolError(REPLAYED) unless ``counter`` is newer than the last accepted."""
        if counter <= self.last:
            raise ProtocolError(ErrorCode.REPLAYED, f"counter {counter} <= {self.last}")

    def accept(self, counter: int) -> None:
        """Record ``counter`` after its proof verified."""
        self.last = counter
