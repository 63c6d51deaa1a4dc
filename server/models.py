"""The relational schema (SQLAlchemy 2 ORM). Migrations in ``migrations/`` create exactly this.

Personal data is minimised: users are the opaque IDs the server assigned, never names.
Every operator-owned row carries ``operator_id`` with ``ON DELETE CASCADE``, so ending a
contract removes the operator's users, locks, keys and logs.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ACTIVE = "active"
SUSPENDED = "suspended"
CANCELLED = "cancelled"
RETIRED = "retired"  # a deleted or decommissioned lock: its row stays as a tombstone


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (needed by Alembic)."""

    metadata = MetaData(naming_convention=NAMING)


def _op_fk() -> Mapped[str]:
    return mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), nullable=False, index=True
    )


class Operator(Base):
    """An integrator with a contract, a user-ID quota and OAuth2 client credentials."""

    __tablename__ = "operators"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    quota: Mapped[int] = mapped_column(Integer, nullable=False)
    contract_start: Mapped[int] = mapped_column(BigInteger, nullable=False)
    contract_end: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ACTIVE)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class IssuerKeyRow(Base):
    """An issuer Ed25519 key; the private half is sealed with the master secret."""

    __tablename__ = "issuer_keys"
    kid: Mapped[str] = mapped_column(String(16), primary_key=True)
    public: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    private_sealed: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # next | active | retired
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    retired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    signed_until: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Token(Base):
    """A bearer token (stored as its SHA-256 only): operator, installer or phone."""

    __tablename__ = "tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    operator_id: Mapped[str] = _op_fk()
    phone_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("phones.id", ondelete="CASCADE"), nullable=True, index=True
    )
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class User(Base):
    """A user ID issued to an operator (no name, no contact data)."""

    __tablename__ = "users"
    # GET /v1/users pages one operator's user IDs by pk after a cursor (migration 0009)
    __table_args__ = (Index("ix_users_operator_page", "operator_id", "pk"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    operator_id: Mapped[str] = _op_fk()
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ACTIVE)
    leaked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Partner(Base):
    """A business registered by the operator (for example a dealer that lends vehicles)."""

    __tablename__ = "partners"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = _op_fk()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ACTIVE)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Lock(Base):
    """A lock device: its ID and the two public identity keys (protocol §5).

    Lock IDs are unique per operator (the lock itself checks the operator of every
    credential), so no answer tells an operator whether another one holds an ID. A deleted
    or decommissioned lock stays as a ``retired`` tombstone keeping its revocation version
    and key generations, so registering the ID again continues them (never backwards).
    """

    __tablename__ = "locks"
    __table_args__ = (
        UniqueConstraint("operator_id", "lock_id", name="uq_locks_operator_lock"),
        # GET /v1/locks pages one operator's locks by pk after a cursor (migration 0009)
        Index("ix_locks_operator_page", "operator_id", "pk"),
    )
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lock_id: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    operator_id: Mapped[str] = _op_fk()
    partner_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("partners.id", ondelete="SET NULL"), nullable=True, index=True
    )
    sign_public: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    kex_public: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    vehicle_label: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ACTIVE)
    # NOREL care plan of the vehicle: how many drivers it may have (None: no cap, #15)
    care_plan: Mapped[str | None] = mapped_column(String(16), nullable=True)
    revocation_version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # random per registration and per identity change: with ``pk`` and ``revocation_version``
    # it names one revocation snapshot exactly, even if a deleted lock's ``pk`` is reused
    incarnation: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    identity_changed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the generation new keys are issued at (claim kgy_gen) and the floor below which the
    # lock refuses every key (revocation update -65543); both only rise
    key_generation: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )
    min_generation: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )
    retired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the usage log as the lock signed it (protocol §11), for the operator: the newest
    # signed head seq, the lock's `lost` counter with it, records missing between the
    # oldest stored and the head (a gap no upload filled), and when it last came
    log_head_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    log_lost: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0,
                                          server_default="0")
    log_missing: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0,
                                             server_default="0")
    log_uploaded_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class KeyRequest(Base):
    """An operator's key request: user + lock + window + permissions, versioned on change."""

    __tablename__ = "key_requests"
    # GET /v1/key-requests pages one operator's requests by ID after a cursor (migration
    # 0009): without it the planner sorts every request of the operator for each page
    # ... and one user's / one lock's requests in ID order (migration 0011): without these
    # SQLite walked the operator index in ID order past every other user's requests
    __table_args__ = (
        Index("ix_key_requests_operator_page", "operator_id", "id"),
        Index("ix_key_requests_user_page", "user_pk", "id"),
        Index("ix_key_requests_lock_page", "lock_pk", "id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = _op_fk()
    user_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    lock_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("locks.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    nbf: Mapped[int] = mapped_column(BigInteger, nullable=False)
    exp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    permissions: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ACTIVE)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Phone(Base):
    """An enrolled phone: the user's device Ed25519 public key."""

    __tablename__ = "phones"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = _op_fk()
    user_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    device_public: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class PhoneAuthProof(Base):
    """A used token-refresh proof ``(phone, timestamp)``: each is accepted once.

    Kept until its timestamp falls out of the accepted clock window, after which it could
    not be accepted anyway; the primary key makes a replay fail on every process.
    """

    __tablename__ = "phone_auth_proofs"
    phone_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("phones.id", ondelete="CASCADE"), primary_key=True
    )
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    used_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class DpopProof(Base):
    """A used device-bound request proof (its ``jti``, RFC 9449 §11.1): each is accepted once.

    Kept until the proof's ``iat`` falls out of the accepted clock window; the primary key
    makes a replay fail on every process. ``jti_hash`` is SHA-256 of phone ID and ``jti``.
    """

    __tablename__ = "dpop_proofs"
    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class EnrollmentCode(Base):
    """A one-time enrollment code (stored as its SHA-256)."""

    __tablename__ = "enrollment_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = _op_fk()
    user_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class IssuedKey(Base):
    """A digital key issued to one phone for one version of a key request."""

    __tablename__ = "issued_keys"
    __table_args__ = (
        # a download's newest key per (phone, request, version) and the locks of the phone's
        # revoked keys: both lookups stop after the rows they need (migration 0004)
        Index("ix_issued_keys_newest", "phone_id", "request_id", "request_version", "exp", "iat"),
        Index("ix_issued_keys_phone_revoked", "phone_id", "revoked", "exp", "lock_pk"),
    )
    cti: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    operator_id: Mapped[str] = _op_fk()
    request_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("key_requests.id", ondelete="CASCADE"), nullable=False, index=True
    )
    phone_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("phones.id", ondelete="CASCADE"), nullable=False, index=True
    )
    lock_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("locks.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    request_version: Mapped[int] = mapped_column(Integer, nullable=False)
    nbf: Mapped[int] = mapped_column(BigInteger, nullable=False)
    exp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    iat: Mapped[int] = mapped_column(BigInteger, nullable=False)
    kid: Mapped[str] = mapped_column(String(16), nullable=False)
    # the phone's wrap of its own secret K is inside the credential; the server never has K
    generation: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )
    credential: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Revocation(Base):
    """A revoked key ID for a lock, kept until the key expires (protocol §7)."""

    __tablename__ = "revocations"
    lock_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("locks.pk", ondelete="CASCADE"), primary_key=True
    )
    cti: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    exp: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    # the key's generation: entries below the lock's floor need not be listed any more
    generation: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )


class RegistrationChallenge(Base):
    """A one-time challenge a lock signs to prove possession at registration (§5)."""

    __tablename__ = "registration_challenges"
    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = _op_fk()
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class UsageLog(Base):
    """One verified lock log record (protocol §11), unique per (lock, lock key, seq)."""

    __tablename__ = "usage_logs"
    __table_args__ = (
        UniqueConstraint("lock_pk", "sign_public", "seq", name="uq_usage_logs_lock_seq"),
        Index("ix_usage_logs_lock_time", "lock_pk", "time"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operator_id: Mapped[str] = _op_fk()
    lock_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("locks.pk", ondelete="CASCADE"), nullable=False
    )
    sign_public: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event: Mapped[int] = mapped_column(Integer, nullable=False)
    code: Mapped[int] = mapped_column(Integer, nullable=False)
    cti: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sub: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    record: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    received_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Idempotency(Base):
    """The stored outcome of a mutating call made with an ``Idempotency-Key``."""

    __tablename__ = "idempotency"
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    operator_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), nullable=True, index=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response_sealed: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # no secrets
    # a secret the outcome showed once (token, enrollment code): replayed only until
    # ``secret_until`` (a retry after a lost answer), then erased
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    secret_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)


class ServerState(Base):
    """Named counters every process can read to validate its caches (``issuer_keys``)."""

    __tablename__ = "server_state"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)


class RateCounter(Base):
    """A fixed-window request counter shared by all server processes."""

    __tablename__ = "rate_counters"
    bucket: Mapped[str] = mapped_column(String(120), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


class AuditEntry(Base):
    """One admin or operator action (never secrets, never more than IDs)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    actor: Mapped[str] = mapped_column(String(80), nullable=False)
    operator_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")


class UplinkOutbox(Base):
    """A lock whose newest signed objects must be published to its uplink topics (#16,
    docs/uplink.md "Publishing"): written in the transaction of the change, deleted by the
    publisher in the transaction that publishes (claim by row lock, SKIP LOCKED)."""

    __tablename__ = "uplink_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lock_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("locks.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LockUplink(Base):
    """A connected lock's uplink state: what was published to it, what it acknowledged in
    a signed heartbeat, when it was last online (#16)."""

    __tablename__ = "lock_uplink"
    lock_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("locks.pk", ondelete="CASCADE"), primary_key=True
    )
    published_version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    acked_version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    last_online: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lock_time: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    state: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    heartbeats: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class SimLine(Base):
    """The M2M SIM line of a connected lock, as the key server last saw it (#16)."""

    __tablename__ = "sim_lines"
    lock_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("locks.pk", ondelete="CASCADE"), primary_key=True
    )
    operator_id: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    msisdn: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    imei: Mapped[str] = mapped_column(String(15), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    idle_since: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    changed_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    attached: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    last_attach: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class SimRecord(Base):
    """The operator's own connection record of a SIM line: every transition and every
    observation of its session and data usage (the provider discloses no communication
    records, m2m-sim-control-terms 第31条)."""

    __tablename__ = "sim_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operator_id: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    msisdn: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")


# My Page, console and privacy tables live with their concept (server/web/store.py,
# identities.py, notices.py, staff_store.py, server/privacy_store.py) but share this metadata.
from kagiya.server import privacy_store as _privacy_store  # noqa: E402,F401
from kagiya.server.web import identities as _web_identities  # noqa: E402,F401
from kagiya.server.web import notices as _web_notices  # noqa: E402,F401
from kagiya.server.web import staff_store as _staff_store  # noqa: E402,F401
from kagiya.server.web import store as _web_store  # noqa: E402,F401
