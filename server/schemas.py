"""Request and response bodies of the HTTP API (pydantic v2); they define docs/openapi.json.

Every input is bounded: patterns for identifiers and hex, ranges for integers (unix seconds
fit in 32 bits, protocol §3), length limits for text, and unknown fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Literal

from kagiya.sdk.protocol import LOCK_ID_PATTERN, Permission
from pydantic import BaseModel, ConfigDict, Field

Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="32 bytes, lowercase hex")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{128}$", description="64 bytes, lowercase hex")]
LockId = Annotated[str, Field(pattern=f"^{LOCK_ID_PATTERN}$", description="protocol §2 lock ID")]
UserId = Annotated[str, Field(pattern=r"^[!-~]{1,64}$", description="user ID (printable ASCII)")]
ObjId = Annotated[str, Field(pattern=r"^[a-z]{2}_[0-9a-f]{1,40}$")]
Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[ -~\u00a0-\ud7ff\ue000-\ufffd]+$",
        description="printable text, no control characters",
    ),
]
UnixTime = Annotated[int, Field(ge=0, le=4294967295, description="unix seconds")]
PermName = Literal["doors", "drive", "log"]
Status = Literal["active", "suspended"]
# the vehicle's NOREL care plan (used-car lease terms): basic and light allow 2 drivers,
# standard 5; a key request for a further driver is refused (409 ``driver-cap-reached``)
CarePlan = Literal["basic", "light", "standard"]

PERM_BITS: dict[str, int] = {str(p.name).lower(): int(p) for p in Permission}


def perm_bits(names: list[PermName]) -> int:
    """Permission names to the protocol bit field (§3 ``kgy_perm``)."""
    bits = 0
    for n in names:
        bits |= PERM_BITS[n]
    return bits


def perm_names(bits: int) -> list[str]:
    """The protocol bit field to sorted permission names."""
    return [n for n, b in PERM_BITS.items() if bits & b]


class In(BaseModel):
    """Base of request bodies: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class ProblemError(BaseModel):
    """One schema violation of a request: where (``["body", "partner_id"]``), what, which kind."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``): every refusal and error.
    ``code`` is the stable machine-readable reason (docs/server.md lists them)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemError] | None = Field(
        default=None, description="422 invalid-request: each schema violation"
    )
    error: str | None = Field(
        default=None, description="OAuth token endpoint: the RFC 6749 §5.2 error code"
    )


class Page(BaseModel):
    """A page of results; pass ``next_cursor`` as ``cursor`` for the next page."""

    next_cursor: str | None


# --- auth -------------------------------------------------------------------------------


class TokenOut(BaseModel):
    """An OAuth2 access token (RFC 6749 §5.1)."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
    scope: str


class InstallerTokenIn(In):
    """Lifetime of an installer token (it can only register locks)."""

    ttl_s: int = Field(default=8 * 3600, ge=60, le=8 * 3600)


class IssuerKeyOut(BaseModel):
    """An issuer public key locks and phones may trust."""

    kid: str
    public_key: str
    state: Literal["next", "active", "retired"]


class IssuerKeysOut(BaseModel):
    """The issuer keys to trust now."""

    keys: list[IssuerKeyOut]


# --- users ------------------------------------------------------------------------------


class UserOut(BaseModel):
    """A user ID and its state (no personal data is stored)."""

    user_id: str
    status: Status
    leaked: bool
    created_at: int


class UserPage(Page):
    """A page of user IDs."""

    items: list[UserOut]


class EnrollmentCodeOut(BaseModel):
    """A one-time enrollment code for one of the user's phones (shown once)."""

    code: str
    user_id: str
    expires_at: int
    enrollment_link: str = Field(
        description="kagiya://enroll?server=…&code=…: the code with this server's URL, for the "
        "phone app (as text or a QR code), so a driver never types a server address")


class MyPageInvitationOut(BaseModel):
    """A one-time My Page link for one user: they create their passkey with it (shown once)."""

    user_id: str
    url: str
    expires_at: int


class DeletedOut(BaseModel):
    """What was deleted."""

    deleted: str


# --- partners ---------------------------------------------------------------------------


class PartnerIn(In):
    """A partner business."""

    name: Label


class PartnerOut(BaseModel):
    """A partner business."""

    partner_id: str
    name: str
    status: Status
    created_at: int


class PartnerPage(Page):
    """A page of partners."""

    items: list[PartnerOut]


# --- locks ------------------------------------------------------------------------------


class LockIn(In):
    """A provisioned lock: its ID, its two public identity keys and its proof of possession:
    the lock's Ed25519 signature over a registration challenge naming the lock ID, this
    operator and both keys (protocol §5)."""

    lock_id: LockId
    sign_public: Hex32
    kex_public: Hex32
    challenge: Hex32
    proof: Hex64
    vehicle_label: Label | None = None
    partner_id: ObjId | None = None
    care_plan: CarePlan | None = None


class LockIdentityIn(In):
    """The new public identity keys of a re-provisioned lock (protocol §5), hex, with the
    new identity's proof of possession over a registration challenge."""

    sign_public: Hex32
    kex_public: Hex32
    challenge: Hex32
    proof: Hex64


class RegistrationChallengeOut(BaseModel):
    """A one-time challenge for a lock to sign at registration (valid 10 minutes)."""

    challenge: str
    expires_at: int
    operator_id: str


class OperatorIdOut(BaseModel):
    """The operator a token belongs to (what a lock is provisioned for)."""

    operator_id: str


class DecommissionOut(BaseModel):
    """A retired lock and its signed decommission update (protocol §7a, hex) to carry to it."""

    lock_id: str
    lock_key_id: str
    revocation_version: int
    decommission_update: str


class LockPatch(In):
    """Changeable lock fields (``partner_id: null`` detaches the partner)."""

    vehicle_label: Label | None = None
    partner_id: ObjId | None = None
    care_plan: CarePlan | None = None


class LockOut(BaseModel):
    """A registered lock."""

    lock_id: str
    sign_public: str
    kex_public: str
    lock_key_id: str
    vehicle_label: str
    partner_id: str | None
    status: Status
    revocation_version: int
    created_at: int
    identity_changed_at: int | None = None
    care_plan: CarePlan | None = None
    log_head_seq: int | None = Field(
        default=None, description="newest log record seq the lock signed (null: no upload yet)")
    log_lost: int = Field(
        default=0, description="the lock's signed lost counter: records it dropped before any "
        "phone fetched them (protocol §11)")
    log_missing: int = Field(
        default=0, description="records missing between the oldest stored one and the head")
    log_uploaded_at: int | None = None


class LockPage(Page):
    """A page of locks."""

    items: list[LockOut]


# --- key requests -----------------------------------------------------------------------


class KeyRequestIn(In):
    """Ask for a key: user + lock + validity window + permissions."""

    user_id: UserId
    lock_id: LockId
    nbf: UnixTime
    exp: UnixTime
    permissions: list[PermName] = Field(min_length=1, max_length=3)


class KeyRequestPatch(In):
    """Change the window or the permissions (re-issues the key under a new key ID)."""

    nbf: UnixTime | None = None
    exp: UnixTime | None = None
    permissions: list[PermName] | None = Field(default=None, min_length=1, max_length=3)


class KeyRequestOut(BaseModel):
    """A key request."""

    request_id: str
    user_id: str
    lock_id: str
    nbf: int
    exp: int
    permissions: list[PermName]
    version: int
    status: Literal["active", "cancelled"]
    created_at: int
    updated_at: int


class KeyRequestPage(Page):
    """A page of key requests."""

    items: list[KeyRequestOut]


# --- usage logs -------------------------------------------------------------------------


class LogOut(BaseModel):
    """One verified usage-log record (protocol §11)."""

    lock_id: str
    seq: int
    time: int
    event: int
    event_name: str | None = Field(
        default=None, description="protocol §11 event name (UNLOCK, BOOT, …); null if unknown"
    )
    code: int
    code_name: str | None = Field(
        default=None, description="protocol §13 error-code name (OK, EXPIRED, …); null if unknown"
    )
    key_id: str | None
    user_id: str | None
    received_at: int


class LogPage(Page):
    """A page of usage-log records."""

    items: list[LogOut]


class AuditOut(BaseModel):
    """One audit entry."""

    at: int
    actor: str
    action: str
    target: str
    detail: str


class AuditPage(Page):
    """A page of audit entries."""

    items: list[AuditOut]


class UserExport(BaseModel):
    """Everything stored about one user ID (privacy: disclosure on request)."""

    user: UserOut
    key_requests: list[KeyRequestOut]
    phones: list[dict[str, str | int]]
    issued_keys: list[dict[str, str | int | bool]]
    usage_logs: list[LogOut]


# --- phone ------------------------------------------------------------------------------


class EnrollIn(In):
    """Enrollment: the one-time code, the device's Ed25519 public key and its signature over
    ``"KGY1-ENROLL" || code (ASCII) || device_public`` (docs/server.md)."""

    code: Annotated[str, Field(pattern=r"^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$")]
    device_public: Hex32
    signature: Hex64


class PhoneTokenIn(In):
    """Re-authentication of an enrolled phone: a signature over
    ``"KGY1-PHONE" || phone_id (ASCII) || u64be(timestamp)`` with the device key."""

    phone_id: ObjId
    timestamp: UnixTime
    signature: Hex64


class PhoneTokenOut(TokenOut):
    """A phone token, with the phone and user it belongs to."""

    phone_id: str
    user_id: str


class PhoneKey(BaseModel):
    """One downloaded key: the credential for the lock. Its secret K is the phone's own:
    the credential's ``cnf`` is the wrap the phone sent (§4); the server never had K."""

    request_id: str
    request_version: int
    key_id: str
    lock_id: str
    user_id: str
    nbf: int
    exp: int
    iat: int
    permissions: int
    kid: str
    credential: str
    lock_kex_public: str


class PendingKey(BaseModel):
    """An active request the phone has no usable key for: draw a secret K, wrap it to
    ``lock_kex_public`` (protocol §4) and send the wrap with ``POST /v1/phone/keys``."""

    request_id: str
    request_version: int
    lock_id: str
    lock_kex_public: str
    lock_key_id: str


class WrapIn(In):
    """The phone's wrap of its own secret K for one request: hex of the deterministic CBOR
    of the ``cnf`` claim value ``{2: COSE_Encrypt}`` (protocol §4)."""

    request_id: ObjId
    cnf: Annotated[str, Field(pattern=r"^([0-9a-f]{2}){1,256}$")]


class DownloadIn(In):
    """``POST /v1/phone/keys``: wraps for (some of) the pending requests."""

    wraps: list[WrapIn] = Field(default_factory=list, max_length=64)

    def by_request(self) -> dict[str, bytes]:
        """Request ID → wrap bytes (the last one wins for a repeated request ID)."""
        return {w.request_id: bytes.fromhex(w.cnf) for w in self.wraps}


class RevocationOut(BaseModel):
    """The newest signed revocation update for one lock (protocol §7), hex."""

    lock_id: str
    version: int
    entries: int
    update: str


class TimeOut(BaseModel):
    """A fresh signed time statement (protocol §6), hex."""

    time: int
    time_statement: str


class RevocationsOut(BaseModel):
    """Revocation updates for the locks this phone holds keys for."""

    revocations: list[RevocationOut]


class SyncOut(BaseModel):
    """Everything a phone needs before going offline."""

    keys: list[PhoneKey]
    pending: list[PendingKey]
    revocations: list[RevocationOut]
    time: int
    time_statement: str
    issuer_keys: list[IssuerKeyOut]


class LogUploadIn(In):
    """A log fetched from a lock (the fields of its ``LOG`` replies, protocol §9/§11): the
    records in order, ending at the signed head, and the chain hash before the first one."""

    lock_id: LockId
    records: list[Annotated[str, Field(pattern=r"^([0-9a-f]{2}){1,256}$")]] = Field(max_length=512)
    prev_hash: Hex32
    head_seq: UnixTime
    head_hash: Hex32
    lost: UnixTime
    head_signature: Hex64


class LogUploadOut(BaseModel):
    """Outcome of an upload: new records, duplicates ignored, conflicting sequence numbers."""

    accepted: int
    duplicates: int
    conflicts: list[int]
    head_seq: int
    lost: int = Field(description="the lock's signed lost counter: records it dropped "
                      "before any phone fetched them")
    missing: int = Field(default=0, description="records missing between the oldest stored "
                         "one and the head: a gap no upload has filled")
    receipt: str | None = Field(
        default=None, description="the signed log receipt (hex, protocol §11 \"Receipts\") "
        "for the phone to carry to the lock: only then does the lock count these records as "
        "received")


MaintenanceScope = Literal["repl", "anchors", "provision"]


class MaintenanceIn(In):
    """What an installer asks a maintenance authorisation for (docs/installer.md
    "Authorised maintenance"): the lock's current one-use challenge and the scope."""

    nonce: Annotated[
        str,
        Field(pattern=r"^[0-9a-f]{32}$",
              description="the lock's maintenance challenge (16 bytes, lowercase hex)"),
    ]
    scope: list[MaintenanceScope] = Field(default=["repl"], min_length=1, max_length=3)
    ttl_s: int = Field(default=600, ge=60, le=900, description="lifetime, seconds")


class MaintenanceOut(BaseModel):
    """A maintenance authorisation (COSE_Sign1, hex) to deliver to the lock."""

    lock_id: str
    authorisation: str
    scope: list[str]
    installer: str
    iat: int
    exp: int
