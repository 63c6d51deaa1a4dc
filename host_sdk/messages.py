"""Protocol messages (docs/protocol.md §9): one frozen dataclass per message type.

Every message is a CBOR map whose key 0 is the message type. :func:`encode` writes the
deterministic encoding; :func:`decode` is strict: not CBOR / not a map / a missing or
mistyped field → ``MALFORMED``; over 2048 bytes → ``TOO_LARGE``; an unknown type, or an
unknown command in ``COMMAND`` → ``UNKNOWN_MESSAGE``. Unknown keys are ignored (§9).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from . import cbor
from .credential import is_lock_id
from .errors import ErrorCode, ProtocolError
from .protocol import (
    CHALLENGE_WINDOW_MS,
    KEY_MAC,
    KEY_TYPE,
    KIND_LEN,
    KIND_MAX,
    MAX_MESSAGE,
    MESSAGES,
    SESSION_COMMANDS,
    Command,
    Kind,
    LockState,
    MessageType,
)
from .protocol import VERSION as PROTOCOL_VERSION

__all__ = ["KEY_MAC", "KEY_TYPE", "MAX_MESSAGE", "MESSAGE_CLASSES", "PROTOCOL_VERSION", "Ack",
           "Challenge", "Command", "CommandRequest", "ErrorReply", "Hello", "Info", "LockInfo",
           "LockState", "LogFetch", "LogReceiptMessage", "LogReply", "Message", "MessageType",
           "Result", "RevocationMessage", "TimeMessage", "decode", "encode", "log_mac_body",
           "mac_body", "message_fields"]

_LISTS = (Kind.UINTS, Kind.BLOBS)


def _fields(mtype: MessageType) -> tuple[tuple[int, str, Kind, bool], ...]:
    """``FIELDS`` of a message class, from the protocol definition."""
    return tuple((f.key, f.name, f.kind, f.optional) for f in MESSAGES[mtype].fields)


def _valid(kind: Kind, v: Any) -> bool:
    if kind in KIND_MAX:  # the unsigned kinds and COMMAND (a u8)
        return type(v) is int and 0 <= v <= KIND_MAX[kind]
    if kind == Kind.KEY:
        return isinstance(v, bytes) and len(v) in (0, KIND_LEN[kind])
    if kind in KIND_LEN:
        return isinstance(v, bytes) and len(v) == KIND_LEN[kind]
    if kind == Kind.BYTES:
        return isinstance(v, bytes)
    if kind == Kind.TEXT:
        return isinstance(v, str)
    if kind == Kind.LOCK_ID:
        return is_lock_id(v)
    if kind == Kind.BOOL:
        return isinstance(v, bool)
    if kind == Kind.UINTS:
        return isinstance(v, list) and all(type(x) is int and x >= 0 for x in v)
    if kind == Kind.BLOBS:
        return isinstance(v, list) and all(isinstance(x, bytes) for x in v)
    raise AssertionError(kind)


class Message:
    """Base of all messages: ``TYPE`` and ``FIELDS`` = ((key, attribute, kind, optional)…)."""

    TYPE: ClassVar[MessageType]
    FIELDS: ClassVar[tuple[tuple[int, str, Kind, bool], ...]]


@dataclass(frozen=True)
class Hello(Message):
    """Phone → lock: start a session; the protocol versions the phone supports."""

    versions: tuple[int, ...] = (PROTOCOL_VERSION,)
    TYPE = MessageType.HELLO
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class Challenge(Message):
    """Lock → phone: the session nonce and the lock's status.

    Not authenticated: ``lock_time``, ``state`` and ``revocation_version`` are hints the
    phone may use to decide what to push; it relies only on the MACed RESULT / LOG
    fields (v2). ``window_ms``: a request must reach the lock within this many ms of the
    nonce it is proved over."""

    version: int
    lock_id: str
    nonce: bytes
    lock_time: int
    state: int
    revocation_version: int
    window_ms: int = CHALLENGE_WINDOW_MS
    TYPE = MessageType.CHALLENGE
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class CommandRequest(Message):
    """Phone → lock: an authenticated command (credential on first use)."""

    cti: bytes
    counter: int
    command: int
    proof: bytes
    credential: bytes | None = None
    TYPE = MessageType.COMMAND
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class Result(Message):
    """Lock → phone: the outcome of a command, MACed with the key's secret over every
    field (v2): state, lock time, revocation version and the session's next nonce."""

    counter: int
    command: int
    code: int
    state: int
    lock_time: int
    revocation_version: int
    next_nonce: bytes
    mac: bytes
    TYPE = MessageType.RESULT
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class TimeMessage(Message):
    """Phone → lock: carries a server-signed time statement (§6)."""

    statement: bytes
    TYPE = MessageType.TIME
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class RevocationMessage(Message):
    """Phone → lock: carries a server-signed revocation update (§7)."""

    update: bytes
    TYPE = MessageType.REVOCATION
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class DecommissionMessage(Message):
    """Phone or installer → lock: carries a server-signed decommission update (§7a)."""

    update: bytes
    TYPE = MessageType.DECOMMISSION
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class LogReceiptMessage(Message):
    """Phone → lock: carries the key server's receipt for uploaded log records (§11)."""

    receipt: bytes
    TYPE = MessageType.LOG_RECEIPT
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class Ack(Message):
    """Lock → phone: reply to TIME / REVOCATION (code 0 = applied). Not authenticated:
    a hint only; the MACed RESULT's ``revocation_version`` confirms an update."""

    code: int
    lock_time: int
    revocation_version: int
    TYPE = MessageType.ACK
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class LogFetch(Message):
    """Phone → lock: fetch usage-log records from ``from_seq`` (authenticated, command 16)."""

    cti: bytes
    counter: int
    from_seq: int
    proof: bytes
    credential: bytes | None = None
    TYPE = MessageType.LOG_FETCH
    FIELDS = _fields(TYPE)


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
    lock_time: int = 0
    revocation_version: int = 0
    next_nonce: bytes = bytes(16)

    TYPE = MessageType.LOG
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class Info(Message):
    """Phone → lock: ask for the lock's public information (no session needed)."""

    TYPE = MessageType.INFO
    FIELDS = _fields(TYPE)


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
    FIELDS = _fields(TYPE)


@dataclass(frozen=True)
class ErrorReply(Message):
    """Lock → phone: an unauthenticated refusal (before a key was verified)."""

    code: int
    counter: int | None = None
    TYPE = MessageType.ERROR
    FIELDS = _fields(TYPE)


MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (Hello, Challenge, CommandRequest, Result, TimeMessage,
                              RevocationMessage, DecommissionMessage, LogReceiptMessage, Ack,
                              LogFetch, LogReply, Info, LockInfo, ErrorReply)
}


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
        if not _valid(kind, list(value) if kind in _LISTS else value):
            raise ValueError(f"{type(msg).__name__}.{attr}: invalid value {value!r}")
        out[key] = list(value) if kind in _LISTS else value
    return out


def encode(msg: Message, *, size_limit: bool = True) -> bytes:
    """Deterministic CBOR of a message. ValueError if a field is out of its range, or
    (unless ``size_limit`` is false: to measure, or to let the lock refuse it) if the
    message exceeds MAX_MESSAGE."""
    data = cbor.dumps(_to_map(msg))
    if size_limit and len(data) > MAX_MESSAGE:
        raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    return data


def mac_body(reply: Result | LogReply) -> bytes:
    """The ``body`` a reply MAC covers (v2): the deterministic CBOR of the RESULT or LOG
    without key 15, so every field of the reply is authenticated."""
    return cbor.dumps(_to_map(reply, without_mac=True))


log_mac_body = mac_body


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
        if kind == Kind.COMMAND and value not in SESSION_COMMANDS:
            raise ProtocolError(ErrorCode.UNKNOWN_MESSAGE, f"unknown command {value}")
        kwargs[attr] = tuple(value) if kind in _LISTS else value
    return cls(**kwargs)


def message_fields(msg: Message) -> dict[str, Any]:
    """The message's fields as a plain dict (bytes as bytes), for tools and vectors."""
    return {f.name: getattr(msg, f.name) for f in fields(msg)}  # type: ignore[arg-type]
