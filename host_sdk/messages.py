"""Protocol messages (docs/protocol.md §9): one frozen dataclass per message type.

Every message is a CBOR map whose key 0 is the message type. :func:`encode` writes the
deterministic encoding; :func:`decode` is strict: not CBOR / not a map / a missing or
mistyped field → ``MALFORMED``; over 2048 bytes → ``TOO_LARGE``; an unknown type, or an
unknown command in ``COMMAND`` → ``UNKNOWN_MESSAGE``. Unknown keys are ignored (§9).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum, IntFlag
from typing import Any, ClassVar

from . import cbor
from .credential import is_lock_id
from .errors import ErrorCode, ProtocolError

PROTOCOL_VERSION = 1
MAX_MESSAGE = cbor.MAX_MESSAGE
KEY_TYPE = 0
KEY_MAC = 15


class MessageType(IntEnum):
    """Message type numbers (key 0 of every message)."""

    HELLO = 1
    CHALLENGE = 2
    COMMAND = 3
    RESULT = 4
    TIME = 5
    REVOCATION = 6
    ACK = 7
    LOG_FETCH = 8
    LOG = 9
    INFO = 10
    LOCK_INFO = 11
    ERROR = 15


class Command(IntEnum):
    """Command codes (§8); LOG_FETCH is the command number a LOG_FETCH proof covers."""

    UNLOCK = 1
    LOCK = 2
    DRIVE_ENABLE = 3
    DRIVE_DISABLE = 4
    STATUS = 5
    LOG_FETCH = 16


class LockState(IntFlag):
    """Lock state bits (§8)."""

    DOORS_LOCKED = 1
    DRIVE_ENABLED = 2
    MOVING = 4
    TIME_TRUSTED = 8


# Field kinds: how a value is checked on decode.
_U8, _U16, _U32, _U64 = "u8", "u16", "u32", "u64"
_B16, _B32, _B64, _BYTES = "b16", "b32", "b64", "bytes"
_KEY = "key"  # 32-byte public key, or empty before provisioning
_TEXT, _LOCK_ID, _BOOL = "text", "lock_id", "bool"
_UINTS, _BLOBS = "uints", "blobs"
_COMMAND = "command"

_UMAX = {_U8: 0xFF, _U16: 0xFFFF, _U32: 0xFFFFFFFF, _U64: (1 << 64) - 1}
_BLEN = {_B16: 16, _B32: 32, _B64: 64}


def _valid(kind: str, v: Any) -> bool:
    if kind in _UMAX:
        return type(v) is int and 0 <= v <= _UMAX[kind]
    if kind in _BLEN:
        return isinstance(v, bytes) and len(v) == _BLEN[kind]
    if kind == _BYTES:
        return isinstance(v, bytes)
    if kind == _KEY:
        return isinstance(v, bytes) and len(v) in (0, 32)
    if kind == _TEXT:
        return isinstance(v, str)
    if kind == _LOCK_ID:
        return is_lock_id(v)
    if kind == _BOOL:
        return isinstance(v, bool)
    if kind == _UINTS:
        return isinstance(v, list) and all(type(x) is int and x >= 0 for x in v)
    if kind == _BLOBS:
        return isinstance(v, list) and all(isinstance(x, bytes) for x in v)
    if kind == _COMMAND:
        return type(v) is int and 0 <= v <= 0xFF
    raise AssertionError(kind)


class Message:
    """Base of all messages: ``TYPE`` and ``FIELDS`` = ((key, attribute, kind, optional)…)."""

    TYPE: ClassVar[MessageType]
    FIELDS: ClassVar[tuple[tuple[int, str, str, bool], ...]]


@dataclass(frozen=True)
class Hello(Message):
    """Phone → lock: start a session; the protocol versions the phone supports."""

    versions: tuple[int, ...] = (PROTOCOL_VERSION,)
    TYPE = MessageType.HELLO
    FIELDS = ((1, "versions", _UINTS, False),)


@dataclass(frozen=True)
class Challenge(Message):
    """Lock → phone: the session nonce and the lock's status."""

    version: int
    lock_id: str
    nonce: bytes
    lock_time: int
    state: int
    revocation_version: int
    TYPE = MessageType.CHALLENGE
    FIELDS = ((1, "version", _U64, False), (2, "lock_id", _LOCK_ID, False),
              (3, "nonce", _B16, False), (4, "lock_time", _U64, False),
              (5, "state", _U8, False), (6, "revocation_version", _U64, False))


@dataclass(frozen=True)
class CommandRequest(Message):
    """Phone → lock: an authenticated command (credential on first use)."""

    cti: bytes
    counter: int
    command: int
    proof: bytes
    credential: bytes | None = None
    TYPE = MessageType.COMMAND
    FIELDS = ((1, "cti", _B16, False), (2, "counter", _U32, False),
              (3, "command", _COMMAND, False), (4, "proof", _B32, False),
              (5, "credential", _BYTES, True))


@dataclass(frozen=True)
class Result(Message):
    """Lock → phone: the outcome of a command, MACed with the key's secret."""

    counter: int
    command: int
    code: int
    state: int
    lock_time: int
    mac: bytes
    TYPE = MessageType.RESULT
    FIELDS = ((1, "counter", _U32, False), (2, "command", _U8, False),
              (3, "code", _U16, False), (4, "state", _U8, False),
              (5, "lock_time", _U64, False), (15, "mac", _B32, False))


@dataclass(frozen=True)
class TimeMessage(Message):
    """Phone → lock: carries a server-signed time statement (§6)."""

    statement: bytes
    TYPE = MessageType.TIME
    FIELDS = ((1, "statement", _BYTES, False),)


@dataclass(frozen=True)
class RevocationMessage(Message):
    """Phone → lock: carries a server-signed revocation update (§7)."""

    update: bytes
    TYPE = MessageType.REVOCATION
    FIELDS = ((1, "update", _BYTES, False),)


@dataclass(frozen=True)
class Ack(Message):
    """Lock → phone: reply to TIME / REVOCATION (code 0 = applied)."""

    code: int
    lock_time: int
    revocation_version: int
    TYPE = MessageType.ACK
    FIELDS = ((1, "code", _U16, False), (2, "lock_time", _U64, False),
              (3, "revocation_version", _U64, False))


@dataclass(frozen=True)
class LogFetch(Message):
    """Phone → lock: fetch usage-log records from ``from_seq`` (authenticated, command 16)."""

    cti: bytes
    counter: int
    from_seq: int
    proof: bytes
    credential: bytes | None = None
    TYPE = MessageType.LOG_FETCH
    FIELDS = ((1, "cti", _B16, False), (2, "counter", _U32, False),
              (3, "from_seq", _U32, False), (4, "proof", _B32, False),
              (5, "credential", _BYTES, True))


@dataclass(frozen=True)
class LogReply(Message):
    """Lock → phone: a page of log records with the signed head (§11), MACed."""

    counter: int
    records: tuple[bytes, ...]
    prev_hash: bytes
    head_seq: int
    head_hash: bytes
    lost: int
    head_signature: bytes
    more: bool
    mac: bytes
    state: int = 0
    TYPE = MessageType.LOG
    FIELDS = ((1, "counter", _U32, False), (2, "records", _BLOBS, False),
              (3, "prev_hash", _B32, False), (4, "head_seq", _U64, False),
              (5, "head_hash", _B32, False), (6, "lost", _U32, False),
              (7, "head_signature", _B64, False), (8, "more", _BOOL, False),
              (9, "state", _U8, False), (15, "mac", _B32, False))


@dataclass(frozen=True)
class Info(Message):
    """Phone → lock: ask for the lock's public information (no session needed)."""

    TYPE = MessageType.INFO
    FIELDS = ()


@dataclass(frozen=True)
class LockInfo(Message):
    """Lock → phone/installer: identity, versions and status (keys empty if unprovisioned)."""

    lock_id: str
    firmware_version: str
    versions: tuple[int, ...]
    sign_public: bytes
    kex_public: bytes
    lock_time: int
    state: int
    revocation_version: int
    log_head_seq: int
    provisioned: bool
    TYPE = MessageType.LOCK_INFO
    FIELDS = ((1, "lock_id", _TEXT, False), (2, "firmware_version", _TEXT, False),
              (3, "versions", _UINTS, False), (4, "sign_public", _KEY, False),
              (5, "kex_public", _KEY, False), (6, "lock_time", _U64, False),
              (7, "state", _U8, False), (8, "revocation_version", _U64, False),
              (9, "log_head_seq", _U64, False), (10, "provisioned", _BOOL, False))


@dataclass(frozen=True)
class ErrorReply(Message):
    """Lock → phone: an unauthenticated refusal (before a key was verified)."""

    code: int
    counter: int | None = None
    TYPE = MessageType.ERROR
    FIELDS = ((1, "code", _U16, False), (2, "counter", _U32, True))


MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (Hello, Challenge, CommandRequest, Result, TimeMessage,
                              RevocationMessage, Ack, LogFetch, LogReply, Info, LockInfo,
                              ErrorReply)
}
_SESSION_COMMANDS = frozenset(int(c) for c in Command if c != Command.LOG_FETCH)


def _to_map(msg: Message, *, without_mac: bool = False) -> dict[int, Any]:
    out: dict[int, Any] = {KEY_TYPE: int(msg.TYPE)}
    for key, attr, kind, optional in msg.FIELDS:
        if without_mac and key == KEY_MAC:
            continue
        value = getattr(msg, attr)
        if value is None and optional:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            value = int(value)  # IntEnum / IntFlag members encode as plain integers
        if not _valid(kind, list(value) if kind in (_UINTS, _BLOBS) else value):
            raise ValueError(f"{type(msg).__name__}.{attr}: invalid value {value!r}")
        out[key] = list(value) if kind in (_UINTS, _BLOBS) else value
    return out


def encode(msg: Message) -> bytes:
    """Deterministic CBOR of a message. ValueError if a field is out of its range."""
    data = cbor.dumps(_to_map(msg))
    if len(data) > MAX_MESSAGE:
        raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    return data


def log_mac_body(reply: LogReply) -> bytes:
    """The ``body`` a LOG reply MAC covers: the deterministic CBOR of LOG without key 15."""
    return cbor.dumps(_to_map(reply, without_mac=True))


def decode(data: bytes) -> Message:
    """Decode one message strictly; raises ProtocolError (MALFORMED, TOO_LARGE,
    UNKNOWN_MESSAGE) on anything bad."""
    raw = bytes(data)
    obj = cbor.loads(raw, max_size=MAX_MESSAGE)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "message is not a CBOR map")
    mtype = obj.get(KEY_TYPE)
    if type(mtype) is not int:
        raise ProtocolError(ErrorCode.MALFORMED, "message type (key 0) missing or not an int")
    cls = MESSAGE_CLASSES.get(mtype)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_MESSAGE, f"unknown message type {mtype}")
    kwargs: dict[str, Any] = {}
    for key, attr, kind, optional in cls.FIELDS:
        if key not in obj:
            if optional:
                continue
            raise ProtocolError(ErrorCode.MALFORMED, f"{cls.TYPE.name}: field {key} missing")
        value = obj[key]
        if not _valid(kind, value):
            raise ProtocolError(ErrorCode.MALFORMED, f"{cls.TYPE.name}: field {key} mistyped")
        if kind == _COMMAND and value not in _SESSION_COMMANDS:
            raise ProtocolError(ErrorCode.UNKNOWN_MESSAGE, f"unknown command {value}")
        kwargs[attr] = tuple(value) if kind in (_UINTS, _BLOBS) else value
    return cls(**kwargs)


def message_fields(msg: Message) -> dict[str, Any]:
    """The message's fields as a plain dict (bytes as bytes), for tools and vectors."""
    return {f.name: getattr(msg, f.name) for f in fields(msg)}  # type: ignore[arg-type]
