"""The Kagiya protocol's vocabulary, defined once (docs/protocol.md §3, §8–§13, §15).

This module is the single source of truth for every number and name both ends of the
protocol share: protocol versions, message types and their fields, command codes,
permission bits, lock state bits, error codes (with their fault classification and the
sentence an app shows), usage-log events, CWT claim keys, content types, GATT UUIDs and
the limits of §15. Everything on the host side imports it; the firmware cannot, so
``python -m kagiya.sdk.protocol_gen`` (``make protocol``) writes the firmware's
``const()`` blocks and the tables of docs/protocol.md from it, and tests fail when a
committed copy differs from what the generator writes.

To change the protocol, edit the tables here and run ``make protocol`` (see
docs/protocol.md "How the definition is maintained").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from .i18n import N_

# -- identifiers (§2) ------------------------------------------------------------------------

LOCK_ID_MIN = 4  #: characters of a lock ID (A-Z, 0-9, "-") ...
LOCK_ID_MAX = 20  #: ... at most
LOCK_ID_PATTERN = f"[A-Z0-9-]{{{LOCK_ID_MIN},{LOCK_ID_MAX}}}"  #: a whole lock ID (regex)
OPERATOR_ID_MAX = 64  #: characters of an operator ID (1 or more, printable ASCII)

# -- versions -----------------------------------------------------------------------------

#: The protocol version this implementation speaks; ``VERSIONS`` lists all it supports.
VERSION = 2
VERSIONS: tuple[int, ...] = (VERSION,)

# -- limits (§15) -------------------------------------------------------------------------

MAX_MESSAGE = 2048  #: bytes of one reassembled message (and of a signed object)
MAX_CREDENTIAL = 640  #: bytes of one credential
MAX_DEPTH = 8  #: CBOR nesting depth
MAX_ITEMS = 64  #: items in one CBOR array or map
MAX_TEXT = 64  #: bytes of one CBOR text string (except where stated)
MAX_REVOCATION_ENTRIES = 64  #: entries of one revocation update
REVOCATION_KEEP = 128  #: listed keys a lock keeps across merged updates
KEY_CACHE_SIZE = 16  #: verified keys the lock caches
MAX_TRUST_ANCHORS = 4  #: issuer keys a lock trusts
REASSEMBLY_TIMEOUT_MS = 2000  #: gap between two fragments that drops a partial message
SESSION_IDLE_MS = 30_000  #: a session ends this long after its last accepted request
SESSION_TOTAL_MS = 120_000  #: ... and this long after its first HELLO (a hard cap)
CHALLENGE_WINDOW_MS = 2000  #: default: a request must reach the lock this soon after its nonce
AUTH_DEADLINE_MS = 6000  #: a link without an accepted proof by then is dropped (§10)
MAX_CONNECTIONS = 3  #: BLE links at once; the oldest unauthenticated one is evicted (§10)
MAX_LIFETIME_S = 400 * 86400  #: longest validity window of a key (§3, INVALID_CLAIMS)

# What a peer without a valid proof can make the lock do (§11 "Flooding", §12 "Budgets"):
VERIFY_BUDGET = 4  #: Ed25519 verifies per connection until a proof was accepted on it
REFUSAL_BUDGET = 8  #: refusals per connection until then (past either: RATE_LIMITED)
PEER_RECORDS = 2  #: log records one unauthenticated connection may cause
KEY_RECORDS = 3  #: records of proof failures against one key ID
RECORD_BUCKET = 16  #: the token bucket of such records, shared by every peer ...
RECORD_REFILL_MS = 300_000  #: ... which gains one token this often

#: The lock's policy settings (§12, ``provisioning.set_policy``): name -> (default,
#: minimum, maximum); the bounds keep any setting from switching a defence off.
POLICY: dict[str, tuple[int, int, int]] = {
    "window_ms": (CHALLENGE_WINDOW_MS, 200, 10_000),  #: challenge window
    "presence_s": (30, 1, 120),  #: presence signal before / after DRIVE_ENABLE
    "drive_off_s": (300, 30, 86_400),  #: drive turns off parked with the doors locked
    "fresh_s": (60, 5, 300),  #: a fresh time statement must arrive this soon after its nonce
    "ahead_s": (3600, 60, 86_400),  #: a plain time statement this far ahead: TIME_IMPLAUSIBLE
}

# -- COSE (RFC 9052/9053) numbers this protocol fixes (§3, §4) ---------------------------------

ALG_EDDSA = -8  #: the issuer's signature (COSE_Sign1)
ALG_AES_CCM_16_128_128 = 30  #: the key wrap's content encryption
ALG_ECDH_ES_HKDF_256 = -25  #: the key wrap's recipient algorithm
HDR_ALG = 1  #: COSE header label: alg
HDR_CONTENT_TYPE = 3  #: COSE header label: content type
HDR_KID = 4  #: COSE header label: kid
HDR_IV = 5  #: COSE header label: IV (the key wrap's content layer)
HDR_EPHEMERAL_KEY = -1  #: COSE header label: ephemeral key (ECDH-ES recipient, RFC 9053 §6.4)
TAG_SIGN1 = 18  #: CBOR tag of a COSE_Sign1 (RFC 9052 §2)
SIGN1_PAYLOAD = 2  #: index of the payload in the COSE_Sign1 array (RFC 9052 §4.2)
COSE_KEY_KTY = 1  #: COSE_Key label kty (RFC 9052 §7.1)
COSE_KEY_CRV = -1  #: COSE_Key label crv of an OKP key (RFC 9053 §7.2)
COSE_KEY_X = -2  #: COSE_Key label x of an OKP key
COSE_KEY_K = -1  #: COSE_Key label k of a symmetric key (RFC 9053 §7.4)
KTY_OKP = 1  #: kty value: octet key pair
KTY_SYMMETRIC = 4  #: kty value: symmetric
CRV_X25519 = 4  #: crv value: X25519
CNF_ENCRYPTED_KEY = 2  #: the ``cnf`` map's key of an Encrypted_COSE_Key (RFC 8747 §3.3)
WRAP_IV_LEN = 13  #: bytes of the key wrap's AES-CCM nonce (§4)
WRAP_TAG_LEN = 16  #: bytes of its AES-CCM tag
WRAP_KEY_BITS = 128  #: the content key's length in the COSE_KDF_Context (RFC 9053 §5.2)
SECRET_LEN = 32  #: bytes of a key's secret K (§4)
KEY_ID_LEN = 8  #: bytes of an issuer / lock key ID (§2)
CTI_LEN = 16  #: bytes of a key ID ``cti`` (§2, §3)
NONCE_LEN = 16  #: bytes of a lock nonce (§8) and of a maintenance challenge

# -- framing (§10) ---------------------------------------------------------------------------

FRAME_FIRST = 0x80  #: first byte of a message's first fragment; continuations are 1..127
MIN_MTU = 23  #: smallest ATT MTU (a fragment carries at most MTU - 3 bytes)
MAX_MTU = 517  #: largest ATT MTU

# -- usage-log records (§11) ------------------------------------------------------------------

#: The fields of a record, the CBOR array ``[seq, time, event, code, cti/null, sub/null]``.
LOG_RECORD_FIELDS: tuple[str, ...] = ("seq", "time", "event", "code", "cti", "sub")

# -- GATT profile (§10) --------------------------------------------------------------------

SERVICE_UUID = "5d1a0001-1c6e-4b8e-9a7a-6b6167697961"
REQUEST_UUID = "5d1a0002-1c6e-4b8e-9a7a-6b6167697961"
RESPONSE_UUID = "5d1a0003-1c6e-4b8e-9a7a-6b6167697961"

# -- domain-separation labels (§8, §11; docs/uplink.md) ---------------------------------------

LABEL_CMD = b"KGY2-CMD"  #: command proof (§8, v2)
LABEL_RES = b"KGY2-RES"  #: reply MAC (§8, v2)
LABEL_LOG = b"KGY1-LOG"  #: h_0 of the usage-log chain (§11)
LABEL_HEAD = b"KGY1-HEAD"  #: the signed log head (§11)
LABEL_BEAT = b"KGY1-BEAT"  #: the signed uplink heartbeat (docs/uplink.md)
LABEL_REG = b"KGY2-REG"  #: the lock's registration proof of possession (§5, #14)
REG_CHALLENGE_LEN = 32  #: bytes of the key server's registration challenge (§5)

# -- signed objects (§3, §6, §7) ------------------------------------------------------------

CT_CWT = 61  #: COSE content type of a credential (application/cwt)
CT_TIME = "application/kgy-time+cbor"
#: payload key of a fresh time statement's nonce ({3: lock ID, 6: time, 7: nonce}, §6)
TIME_NONCE = 7
CT_REVOCATION = "application/kgy-revocation+cbor"
CT_MAINTENANCE = "application/kgy-maintenance+cbor"  #: maintenance authorisation (#18)
MAINTENANCE_MAX_LIFETIME_S = 900  #: longest exp - iat of a maintenance authorisation
MAINTENANCE_MAX_SIZE = 1024  #: bytes of a maintenance authorisation the lock reads
MAINTENANCE_CHALLENGE_S = 300  #: the lock's maintenance challenge expires this much later
#: what a maintenance authorisation may open (payload key ``Claim.KGY_MAINT_SCOPE``)
MAINTENANCE_SCOPES: tuple[str, ...] = ("repl", "anchors", "provision")
CT_DECOMMISSION = "application/kgy-decommission+cbor"  #: decommission update (§7a, #14)
CT_LOG_RECEIPT = "application/kgy-log-receipt+cbor"  #: server's receipt for log records (§11)


#: §15's table: (item, limit as written), generated into docs/protocol.md.
LIMITS: tuple[tuple[str, str], ...] = (
    ("message (reassembled)", f"{MAX_MESSAGE} bytes"),
    ("credential", f"{MAX_CREDENTIAL} bytes"),
    ("CBOR nesting depth", f"{MAX_DEPTH}"),
    ("items in one array or map", f"{MAX_ITEMS}"),
    ("text string", f"{MAX_TEXT} bytes (except where stated)"),
    ("revocation entries", f"{MAX_REVOCATION_ENTRIES} per update ({REVOCATION_KEEP} kept "
                           "at the lock)"),
    ("key cache", f"{KEY_CACHE_SIZE} keys"),
    ("trust anchors", f"{MAX_TRUST_ANCHORS}"),
    ("fragment reassembly timeout", f"{REASSEMBLY_TIMEOUT_MS // 1000} s"),
    ("session", f"{SESSION_IDLE_MS // 1000} s idle, {SESSION_TOTAL_MS // 1000} s total "
                "(a HELLO never extends it)"),
    ("challenge window (default, configurable 0.2-10 s)",
     f"{CHALLENGE_WINDOW_MS} ms from nonce to request"),
    ("BLE links", f"{MAX_CONNECTIONS}; unauthenticated ones dropped after "
                  f"{AUTH_DEADLINE_MS // 1000} s"),
    ("key validity window", f"{MAX_LIFETIME_S // 86400} days"),
    ("budget of a connection before a proof is accepted (§12)",
     f"{VERIFY_BUDGET} Ed25519 verifies, {REFUSAL_BUDGET} refusals"),
    ("log records peers without a proof cause (§11)",
     f"{PEER_RECORDS} per connection, {KEY_RECORDS} proof failures per key ID, from a shared "
     f"bucket of {RECORD_BUCKET} (one more every {RECORD_REFILL_MS // 60_000} min)"),
    ("maintenance authorisation",
     f"{MAINTENANCE_MAX_SIZE} bytes, {MAINTENANCE_MAX_LIFETIME_S} s lifetime, challenge at "
     f"most {MAINTENANCE_CHALLENGE_S} s old"),
)


class Claim(IntEnum):
    """Map keys of the CWT claims (RFC 8392) and of the time / revocation / decommission /
    anchor payloads."""

    ISS = 1
    SUB = 2
    AUD = 3
    EXP = 4
    NBF = 5
    IAT = 6
    CTI = 7
    CNF = 8
    KGY_PERM = -65537
    KGY_RV = -65538
    KGY_RV_VERSION = -65539
    KGY_RV_ENTRIES = -65540
    KGY_OP = -65541  #: operator ID (credential, revocation, decommission, maintenance)
    KGY_GEN = -65542  #: the lock's key generation a key was issued at
    KGY_RV_MIN_GENERATION = -65543  #: revocation: every key below this generation
    KGY_LOCK_KEY_ID = -65545  #: decommission: the lock identity it retires
    KGY_MAINT_SCOPE = -65546  #: maintenance authorisation: array of scope names
    KGY_LOG_RECEIVED = -65547  #: log receipt: the server holds every record up to this seq


# -- permissions, commands, state (§3, §8) ---------------------------------------------------


class Permission(IntFlag):
    """Permission bits of the ``kgy_perm`` claim (§3); the lower-case member name is the
    permission's name in the key server's API. STATUS needs none."""

    DOORS = 1
    DRIVE = 2
    LOG = 4


class Command(IntEnum):
    """Command codes (§8) with the permission each needs and its name in apps.

    LOG_FETCH is not sent in COMMAND: it is the command number a LOG_FETCH proof covers.
    """

    permission: Permission
    label: str
    session: bool

    def __new__(cls, value: int, *info: Any) -> Command:
        # (value, permission, label[, session]); ``*info`` keeps Command(n) a lookup
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.permission, obj.label = info[0], info[1]
        obj.session = info[2] if len(info) > 2 else True
        return obj

    UNLOCK = 1, Permission.DOORS, "unlock"
    LOCK = 2, Permission.DOORS, "lock"
    DRIVE_ENABLE = 3, Permission.DRIVE, "drive-on"
    DRIVE_DISABLE = 4, Permission.DRIVE, "drive-off"
    STATUS = 5, Permission(0), "status"
    LOG_FETCH = 16, Permission.LOG, "log-fetch", False


#: The commands a COMMAND message may carry (any other is UNKNOWN_MESSAGE).
SESSION_COMMANDS: frozenset[int] = frozenset(int(c) for c in Command if c.session)


class LockState(IntFlag):
    """Lock state bits (§8)."""

    DOORS_LOCKED = 1
    DRIVE_ENABLED = 2
    MOVING = 4
    TIME_TRUSTED = 8
    DECOMMISSIONED = 16  #: a decommission update was applied: every key is refused
    DRIVE_PENDING = 32  #: DRIVE_ENABLE waits for the in-vehicle presence signal (v2)

    @property
    def doors_locked(self) -> bool:
        """The doors are locked."""
        return bool(self & LockState.DOORS_LOCKED)

    @property
    def drive_enabled(self) -> bool:
        """The motor drive is enabled."""
        return bool(self & LockState.DRIVE_ENABLED)

    @property
    def moving(self) -> bool:
        """The vehicle is moving."""
        return bool(self & LockState.MOVING)

    @property
    def time_trusted(self) -> bool:
        """The lock's clock is trusted (set from a signed time statement, kept since)."""
        return bool(self & LockState.TIME_TRUSTED)

    @property
    def drive_pending(self) -> bool:
        """DRIVE_ENABLE waits for someone to press the brake pedal or the start button."""
        return bool(self & LockState.DRIVE_PENDING)

    @property
    def decommissioned(self) -> bool:
        """The lock was decommissioned (§7a): it refuses every key."""
        return bool(self & LockState.DECOMMISSIONED)

    def phrases(self) -> list[str]:
        """The state as short English phrases (the gettext msgids of the catalogue)."""
        return [
            N_("doors locked") if self.doors_locked else N_("doors unlocked"),
            N_("drive enabled") if self.drive_enabled else N_("drive disabled"),
            *([N_("drive pending")] if self.drive_pending else []),
            *([N_("moving")] if self.moving else []),
            N_("clock trusted") if self.time_trusted else N_("clock NOT trusted"),
            *([N_("decommissioned")] if self.decommissioned else []),
        ]

    def describe(self) -> str:
        """One line for people in the current language (``kagiya.sdk.i18n``), e.g.
        ``doors locked, drive disabled, clock trusted``."""
        from .i18n import _

        return _(", ").join(_(p) for p in self.phrases())

    def __str__(self) -> str:
        """Readable in English (``print(result.state)``); ``format()`` still gives the
        number, ``int(state)`` the bits."""
        return ", ".join(self.phrases())

    def __format__(self, spec: str) -> str:
        return int.__format__(int(self), spec)

# -- usage-log events (§11) ------------------------------------------------------------------


class LogEvent(IntEnum):
    """The ``event`` of a usage-log record: a command code, or one of the lock's own events."""

    label: str

    def __new__(cls, value: int, *info: Any) -> LogEvent:
        obj = int.__new__(cls, value)
        obj._value_ = value
        (obj.label,) = info
        return obj

    UNLOCK = Command.UNLOCK.value, "unlock"
    LOCK = Command.LOCK.value, "lock"
    DRIVE_ENABLE = Command.DRIVE_ENABLE.value, "drive on"
    DRIVE_DISABLE = Command.DRIVE_DISABLE.value, "drive off"
    STATUS = Command.STATUS.value, "status"
    LOG_FETCH = Command.LOG_FETCH.value, "log fetch"
    BOOT = 32, "boot"
    TIME_SET = 33, "time set"
    REVOCATION_APPLIED = 34, "revocation applied"
    PROVISIONED = 35, "provisioned"
    MAINTENANCE = 48, "maintenance"
    LOCKDOWN = 49, "lockdown"
    ANCHORS_CHANGED = 50, "anchors changed"
    DRIVE_AUTO_OFF = 36, "drive off (parked)"
    DRIVE_PRESENCE = 37, "drive on (presence)"
    DECOMMISSIONED = 38, "decommissioned"


# -- error codes (§13) -------------------------------------------------------------------------


class ErrorCode(IntEnum):
    """The error codes (§13); numbers are wire values. Each carries its classification.

    * ``meaning``: one line, what the lock found (the §13 table);
    * ``retryable``: repeating the request later (new session or counter, after a short
      wait) can succeed with nothing else changed - no new key, sync or update;
    * ``may_have_succeeded``: the lock may have acted although it answered this code
      (only OK and INTERNAL); every other refusal is sent before the lock acts;
    * ``authenticated``: the code can arrive in a MACed RESULT (a refusal after the key
      was verified); every other refusal is an unauthenticated ERROR (or ACK);
    * ``remedy``: the English sentence an app shows a person (the gettext msgid of the
      phone app's catalogue).
    """

    meaning: str
    retryable: bool
    may_have_succeeded: bool
    authenticated: bool
    remedy: str

    def __new__(cls, value: int, *info: Any) -> ErrorCode:
        # (value, meaning, retryable, may_have_succeeded, authenticated, remedy)
        obj = int.__new__(cls, value)
        obj._value_ = value
        (obj.meaning, obj.retryable, obj.may_have_succeeded, obj.authenticated,
         obj.remedy) = info
        return obj

    OK = (0, "success", False, True, True, "Done.")
    MALFORMED = (
        1, "not well-formed CBOR/COSE, missing or mistyped field, untagged or wrongly "
        "tagged COSE", False, False, False,
        "The lock could not read the request (malformed message). Update the app.")
    TOO_LARGE = (2, "a size limit of §15 exceeded", False, False, False,
                 "The request was too large for the lock.")
    UNSUPPORTED_VERSION = (
        3, "no common protocol version", False, False, False,
        "This lock speaks a protocol version this app does not. Update the app or the "
        "lock firmware.")
    UNKNOWN_MESSAGE = (4, "unknown message type or command", False, False, False,
                       "The lock does not know this request.")
    FRAMING = (5, "fragment out of order or length mismatch", True, False, False,
               "The Bluetooth transfer was garbled. Try again.")
    UNKNOWN_ISSUER = (
        16, "`kid` names no trust anchor", False, False, False,
        "The lock does not trust the server that issued this key. The lock may belong to "
        "another operator or need its trust anchors updated.")
    BAD_SIGNATURE = (
        17, "issuer signature invalid (includes non-canonical S or points)", False, False,
        False,
        "The key's signature is invalid; it was damaged or forged. Sync to download it "
        "again.")
    WRONG_ALGORITHM = (18, "algorithm other than the one this protocol fixes", False, False,
                       False, "The key uses an algorithm the lock refuses.")
    WRONG_CONTENT_TYPE = (19, "a signed object of another kind", False, False, False,
                          "The lock was sent the wrong kind of signed object.")
    WRONG_LOCK = (20, "audience is another lock", False, False, False,
                  "This key is for a different vehicle's lock.")
    NOT_YET_VALID = (
        21, "now < nbf", True, False, False,
        "This key is not valid yet; its validity window has not started (or the lock's "
        "clock is behind — sync to carry a fresh time statement).")
    EXPIRED = (22, "now ≥ exp", False, False, False,
               "This key has expired. Sync while online to get a fresh key.")
    REVOKED = (23, "key ID in the revocation list", False, False, True,
               "This key was cancelled by the operator and no longer opens the vehicle.")
    PERMISSION_DENIED = (24, "key lacks the permission for the command", False, False, True,
                         "This key does not allow that action.")
    WRONG_RECIPIENT = (
        25, "key wrapped to another lock key", False, False, False,
        "This key was issued for another lock device (the lock was replaced or "
        "re-provisioned). Sync to get a new key.")
    BAD_KEY_WRAP = (26, "per-key secret could not be unwrapped", False, False, False,
                    "The lock could not unwrap this key's secret. Sync to get a new key.")
    BAD_PROOF = (
        27, "HMAC proof invalid (always an unauthenticated ERROR)", False, False, False,
        "The lock rejected the phone's proof; the stored key secret does not match. Sync "
        "to download the key again.")
    STALE_CHALLENGE = (
        28, "no live session, or the request came later than the challenge window after "
        "its nonce", True, False, False,
        "The request reached the lock too late (the Bluetooth session expired, or the "
        "request was held back on the way). Try again next to the vehicle.")
    REPLAYED = (29, "counter not greater than the last accepted one", True, False, False,
                "The lock saw this request before (replay). Try again.")
    KEY_UNKNOWN = (
        30, "no credential sent and the key is not cached, or the proof failed (the same "
        "answer either way)", True, False, False,
        "The lock does not know this key yet, or the key's secret on this phone is wrong. "
        "Sync to download the key again.")
    STALE_UPDATE = (
        31, "a revocation version or time statement not newer than the lock's", False,
        False, False, "The lock already has this update or a newer one.")
    RATE_LIMITED = (
        32, "this connection spent its budget of refusals or verifies; reconnect", True,
        False, False,
        "This connection made too many failed attempts; the lock drops it. Reconnect and "
        "try again.")
    VEHICLE_MOVING = (33, "drive cannot be disabled while moving", True, False, True,
                      "Drive cannot be disabled while the vehicle is moving.")
    BUSY = (
        34, "a request is in progress on this connection, or its session reached its cap",
        True, False, False,
        "The lock is still busy with the previous request, or this connection was open too "
        "long. Reconnect and try again.")
    NOT_PROVISIONED = (
        35, "the lock has no identity or trust anchors yet", False, False, False,
        "The lock is not set up yet; an installer must provision it.")
    INVALID_CLAIMS = (
        36, "claims inconsistent (nbf ≥ exp, lifetime too long)", False, False, False,
        "The key's validity window is inconsistent; sync to get a new key.")
    WRONG_OPERATOR = (
        37, "a credential or update issued for another operator than the lock's", False,
        False, False,
        "This vehicle belongs to another operator; this key cannot open it.")
    DECOMMISSIONED = (
        38, "the lock was decommissioned: it refuses every key", False, False, False,
        "This vehicle's lock has been retired; no key opens it any more.")
    PRESENCE_REQUIRED = (
        40, "DRIVE_ENABLE without the in-vehicle presence signal (drive turns on if it "
        "comes within the window)", True, False, True,
        "To start the vehicle, press the brake pedal or the start button inside it; the "
        "drive turns on if you do so within half a minute.")
    TIME_UNTRUSTED = (
        41, "the lock lost its time in a power cut; a fresh time statement is needed", True,
        False, False,
        "The vehicle's lock lost its clock in a power cut. Connect the phone to the "
        "internet once next to the vehicle and try again.")
    TIME_IMPLAUSIBLE = (
        42, "a plain time statement too far ahead of the lock's trusted time", False, False,
        False,
        "The lock refused a time far ahead of its own clock (a server clock fault); "
        "nothing changed.")
    INTERNAL = (
        63, "unexpected failure inside the lock (also: out of heap); the lock stays usable; "
        "never counted by the rate limit; retry", True, True, False,
        "The lock had an internal error; it stays usable. Try again.")


#: The sentence for a code this implementation does not define (a newer lock).
UNKNOWN_CODE_REMEDY = "The lock refused with an error this app does not know."

#: Every sentence an app may show for a refusal: the msgids of the translation catalogue.
REMEDIES: tuple[str, ...] = (*(c.remedy for c in ErrorCode), UNKNOWN_CODE_REMEDY)

# -- messages (§9) ---------------------------------------------------------------------------


class Kind(IntEnum):
    """How a field's value is checked on decode (the numbers are the firmware's kinds)."""

    U8 = 0
    U16 = 1
    U32 = 2
    U64 = 3
    B16 = 4  #: exactly 16 bytes
    B32 = 5
    B64 = 6
    BYTES = 7  #: any byte string
    KEY = 8  #: a 32-byte public key, or empty before provisioning
    TEXT = 9
    LOCK_ID = 10  #: text, a valid lock ID (§2)
    BOOL = 11
    UINTS = 12  #: array of unsigned integers
    BLOBS = 13  #: array of byte strings
    COMMAND = 14  #: u8, and one of SESSION_COMMANDS (else UNKNOWN_MESSAGE)


#: The largest value of each unsigned kind (COMMAND is a u8 before its command check).
KIND_MAX: dict[Kind, int] = {Kind.U8: 0xFF, Kind.U16: 0xFFFF, Kind.U32: 0xFFFF_FFFF,
                             Kind.U64: (1 << 64) - 1, Kind.COMMAND: 0xFF}
#: The length of each fixed-size byte-string kind (a KEY may also be empty).
KIND_LEN: dict[Kind, int] = {Kind.B16: 16, Kind.B32: 32, Kind.B64: 64, Kind.KEY: 32}


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
    DECOMMISSION = 12
    LOG_RECEIPT = 13
    ERROR = 15


KEY_TYPE = 0  #: map key of the message type in every message
KEY_MAC = 15  #: map key of the reply MAC in RESULT and LOG


@dataclass(frozen=True)
class Field:
    """One field of a message: map key, attribute name in the SDK, kind, and §9 label."""

    key: int
    name: str
    kind: Kind
    label: str
    optional: bool = False


@dataclass(frozen=True)
class MessageDef:
    """One message type: ``request`` (phone → lock) or reply, and its fields in key order."""

    type: MessageType
    request: bool
    fields: tuple[Field, ...]


def _f(key: int, name: str, kind: Kind, label: str = "", optional: bool = False) -> Field:
    return Field(key, name, kind, label or name.replace("_", " "), optional)


_MAC = _f(KEY_MAC, "mac", Kind.B32, "mac (32)")

#: Every message type with its fields, in key order (the §9 table).
MESSAGES: dict[MessageType, MessageDef] = {m.type: m for m in (
    MessageDef(MessageType.HELLO, True, (
        _f(1, "versions", Kind.UINTS, "[versions supported]"),)),
    MessageDef(MessageType.CHALLENGE, False, (
        _f(1, "version", Kind.U64, "version chosen"), _f(2, "lock_id", Kind.LOCK_ID, "lock ID"),
        _f(3, "nonce", Kind.B16, "nonce (16)"), _f(4, "lock_time", Kind.U64),
        _f(5, "state", Kind.U8), _f(6, "revocation_version", Kind.U64),
        _f(7, "window_ms", Kind.U32, "challenge window (ms)"))),
    MessageDef(MessageType.COMMAND, True, (
        _f(1, "cti", Kind.B16), _f(2, "counter", Kind.U32), _f(3, "command", Kind.COMMAND),
        _f(4, "proof", Kind.B32, "proof (32)"),
        _f(5, "credential", Kind.BYTES, "credential (optional)", True))),
    MessageDef(MessageType.RESULT, False, (
        _f(1, "counter", Kind.U32), _f(2, "command", Kind.U8), _f(3, "code", Kind.U16),
        _f(4, "state", Kind.U8), _f(5, "lock_time", Kind.U64),
        _f(6, "revocation_version", Kind.U64), _f(7, "next_nonce", Kind.B16, "next nonce (16)"),
        _MAC)),
    MessageDef(MessageType.TIME, True, (
        _f(1, "statement", Kind.BYTES, "time statement"),)),
    MessageDef(MessageType.REVOCATION, True, (
        _f(1, "update", Kind.BYTES, "revocation update"),)),
    MessageDef(MessageType.ACK, False, (
        _f(1, "code", Kind.U16), _f(2, "lock_time", Kind.U64),
        _f(3, "revocation_version", Kind.U64))),
    MessageDef(MessageType.LOG_FETCH, True, (
        _f(1, "cti", Kind.B16), _f(2, "counter", Kind.U32), _f(3, "from_seq", Kind.U32, "from_seq"),
        _f(4, "proof", Kind.B32, "proof (32)"),
        _f(5, "credential", Kind.BYTES, "credential (optional)", True))),
    MessageDef(MessageType.LOG, False, (
        _f(1, "counter", Kind.U32), _f(2, "records", Kind.BLOBS, "[record bytes...]"),
        _f(3, "prev_hash", Kind.B32, "prev_hash (32)"), _f(4, "head_seq", Kind.U64, "head_seq"),
        _f(5, "head_hash", Kind.B32, "head_hash (32)"), _f(6, "lost", Kind.U32),
        _f(7, "head_signature", Kind.B64, "head signature (64)"),
        _f(8, "more", Kind.BOOL, "more (bool)"), _f(9, "state", Kind.U8),
        _f(10, "lock_time", Kind.U64), _f(11, "revocation_version", Kind.U64),
        _f(12, "next_nonce", Kind.B16, "next nonce (16)"), _MAC)),
    MessageDef(MessageType.INFO, True, ()),
    MessageDef(MessageType.LOCK_INFO, False, (
        _f(1, "lock_id", Kind.TEXT, "lock ID"), _f(2, "firmware_version", Kind.TEXT),
        _f(3, "versions", Kind.UINTS, "[versions]"),
        _f(4, "sign_public", Kind.KEY, "Ed25519 public"),
        _f(5, "kex_public", Kind.KEY, "X25519 public"), _f(6, "lock_time", Kind.U64),
        _f(7, "state", Kind.U8), _f(8, "revocation_version", Kind.U64),
        _f(9, "log_head_seq", Kind.U64), _f(10, "provisioned", Kind.BOOL))),
    MessageDef(MessageType.DECOMMISSION, True, (
        _f(1, "update", Kind.BYTES, "decommission update (§7a); reply `ACK`"),)),
    MessageDef(MessageType.LOG_RECEIPT, True, (
        _f(1, "receipt", Kind.BYTES, "log receipt (§11); reply `ACK`"),)),
    MessageDef(MessageType.ERROR, False, (
        _f(1, "code", Kind.U16),
        _f(2, "counter", Kind.U32, "counter (if the request had one)", True))),
)}

# -- uplink (docs/uplink.md; connected locks only) ---------------------------------------------

UPLINK_PREFIX = "kagiya/v1/locks/"  #: every topic of a lock: prefix + lock ID + "/" + leaf
UPLINK_DOWN = "down/"  #: server -> lock leaves start with this; each carries one message type
UPLINK_PUSHED: dict[str, MessageType] = {
    "revocation": MessageType.REVOCATION,
    "time": MessageType.TIME,
    "decommission": MessageType.DECOMMISSION,
    "receipt": MessageType.LOG_RECEIPT,  #: the key server's log receipt (§11)
}
UP_HEARTBEAT = "up/heartbeat"  #: lock -> server: the signed heartbeat
UP_LOG = "up/log"  #: lock -> server: a page of usage-log records ending at the signed head
#: Map keys of a heartbeat; the lock's Ed25519 signature (LABEL_BEAT) covers fields 1-6.
HEARTBEAT_KEYS: dict[str, int] = {
    "lock_id": 1, "lock_time": 2, "revocation_version": 3, "head_seq": 4, "head_hash": 5,
    "state": 6, "signature": KEY_MAC}
#: Map keys of a published log page (the fields of a phone's log upload, §11).
LOG_PAGE_KEYS: dict[str, int] = {
    "records": 1, "prev_hash": 2, "head_seq": 3, "head_hash": 4, "lost": 5,
    "head_signature": 6}
#: Keys of the lock's ``uplink`` state object (written by ``kagiya install uplink``).
UPLINK_CONFIG_KEYS: dict[str, int] = {
    "host": 1, "port": 2, "password": 3, "ca": 4, "server_name": 5, "heartbeat_s": 6}
HEARTBEAT_S = 300  #: default heartbeat period (s)
