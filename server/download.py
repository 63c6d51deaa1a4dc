"""The key download (``GET /v1/phone/keys``): the request every phone makes before going
offline, and the one the key server must serve at scale (docs/performance.md, "Key server").

A download answers with the phone's current keys (credentials only: each key's secret K is
drawn and wrapped to the lock by the phone, which sends the wraps with ``POST``; the server
signs new credentials around them on the spot and never sees K), the requests still
``pending`` a wrap, the signed revocation updates for its locks, the issuer keys and a fresh
signed time statement. Every download carries a DPoP-style proof of the phone's device key
(:mod:`kagiya.server.dpop`), recorded as used in the download's write.

**SQLite: optimistic issuance.** SQLite admits one writer at a time, and a writer that signs
inside its turn keeps every other download waiting for CPU work that needs no database.
So a download (1) reads in a read transaction, which runs alongside the writer (a WAL
snapshot): authenticates, reads the issuer keys, plans its keys and signs the new ones
(:func:`kagiya.server.issuance.plan_keys`) and gets the revocation updates; then (2) takes
the writer's turn to record the proof and, if it signed new keys, re-read what the plan was
derived from and insert the new keys if none of it changed
(:func:`kagiya.server.issuance.plan_is_current`).
A stale plan — a request changed, cancelled or suspended meanwhile, a lock's identity
replaced, the issuer key rotated, or another download of the same phone stored keys first —
writes nothing and is planned again; after :data:`OPTIMISTIC_ATTEMPTS` stale plans the
download runs in one write transaction, so it always finishes. The outcome is the one the
single transaction would have had at the moment of the write: a change committed after it
sees the stored keys and revokes them. :func:`download_on_loop` runs these steps on the
event loop (a SQLite download is CPU work, and a thread hand-off per request cost more than
the database), handing a step to a thread only when it would wait for another writer.

**PostgreSQL** runs transactions concurrently, so there the download is one transaction
that share-locks the rows it derives keys from (no second round trip), run in a thread.

The time statement is signed last, outside every transaction, for the time the read checked
with the time authority (:func:`kagiya.server.timeauth.vouch`: 503 ``clock-unreliable``
when the server's clock went back or jumped) and the write recorded as the newest signed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from kagiya.sdk.keys import IssuerKey
from kagiya.server import dpop, issuance, revocations, timeauth
from kagiya.server.prepared import Tx, WriterBusy, tx
from kagiya.server.principal import PHONE, PhoneRef
from kagiya.server.problems import ApiError
from kagiya.server.runtime import Runtime
from sqlalchemy.exc import IntegrityError

PHONES = (PHONE,)
# stale plans before falling back to one write transaction: a plan goes stale only when its
# own phone's keys or requests change between its read and its write (well under a second)
OPTIMISTIC_ATTEMPTS = 3


@dataclass
class Planned:
    """A download read and planned (new keys signed), not yet stored."""

    phone: PhoneRef
    signer: IssuerKey
    plan: issuance.KeyPlan
    body: dict[str, Any]
    proof_jti: str
    time: timeauth.Vouched  #: the time the statement states, checked by the time authority


@dataclass(frozen=True)
class Ask:
    """One download request: the bearer token, its DPoP proof and the phone's key wraps
    (request ID → ``cnf`` bytes; empty for ``GET``)."""

    bearer: str | None
    proof: dpop.RequestProof | None
    wraps: dict[str, bytes]


def _read(rt: Runtime, conn: Tx, ask: Ask, *, locked: bool) -> Planned:
    p = rt.authenticate(conn, ask.bearer, PHONES, ask.proof)
    assert p.phone is not None and p.proof_jti is not None  # phone tokens: phone + proof
    t = timeauth.vouch_or_503(conn, rt)  # before signing anything for this time
    now = t.time
    ks = rt.keyset(conn, p)
    plan = issuance.plan_keys(
        rt.issuer,
        conn,
        p.phone,
        now,
        ks.active,
        issuer_version=p.issuer_version,
        locked=locked,
        wraps=ask.wraps,
    )
    body = {
        "keys": plan.keys,
        "pending": plan.pending,
        "revocations": revocations.updates_for_phone(conn, p.phone, now, ks, rt.revocations),
        "time": now,
        "time_statement": "",  # signed after the commit (respond)
        "issuer_keys": ks.listed(now),
    }
    return Planned(p.phone, ks.active, plan, body, p.proof_jti, t)


def plan_download(rt: Runtime, ask: Ask) -> Planned:
    """Step 1 (SQLite): authenticate and plan in a read transaction, signing new keys;
    raises :class:`ApiError` for a refusal. Never waits for the writer's turn."""
    with tx(rt.engine, write=False) as conn:
        return _read(rt, conn, ask, locked=False)


def store_download(rt: Runtime, got: Planned, *, wait: bool = True) -> bool:
    """Step 2 (SQLite), in the writer's turn: record the request's proof as used and store
    the plan's new keys. False when the plan went stale (nothing written: plan again);
    :class:`WriterBusy` when ``wait`` is False and another writer holds the turn;
    401 ``replayed-proof`` when the proof was used before."""
    try:
        with tx(rt.engine, write=True, wait=wait) as conn:
            if got.plan.fresh and not issuance.plan_is_current(conn, got.plan, got.phone):
                return False
            dpop.record(conn, got.proof_jti, got.plan.now)
            timeauth.record(conn, got.time)
            issuance.insert_fresh(conn, got.plan)
            return True
    except IntegrityError:  # e.g. the phone was deleted meanwhile: the next read refuses it
        return False


def download_in_one_transaction(rt: Runtime, ask: Ask) -> Planned:
    """Read, sign and store in one write transaction (PostgreSQL, and SQLite's fallback)."""
    try:
        with tx(rt.engine, write=True) as conn:
            got = _read(rt, conn, ask, locked=True)
            dpop.record(conn, got.proof_jti, got.plan.now)
            timeauth.record(conn, got.time)
            issuance.insert_fresh(conn, got.plan)
    except IntegrityError as exc:
        raise ApiError(409, "conflict", "conflicts with a concurrent change") from exc
    return got


def respond(got: Planned) -> JSONResponse:
    """The download response, with the time statement signed now (no transaction open)."""
    got.body["time_statement"] = timeauth.sign(got.signer, got.time).hex()
    return JSONResponse(got.body)


def download(rt: Runtime, ask: Ask) -> JSONResponse:
    """``GET`` / ``POST /v1/phone/keys``, blocking: the response, or :class:`ApiError`
    for a refusal. Called by the FastAPI routes and, on PostgreSQL, by
    :mod:`kagiya.server.fastpath` in a worker thread."""
    if rt.engine.dialect.name == "sqlite":
        for _attempt in range(OPTIMISTIC_ATTEMPTS):
            got = plan_download(rt, ask)
            if store_download(rt, got):
                return respond(got)
    return respond(download_in_one_transaction(rt, ask))


Blocking = Callable[..., Awaitable[Any]]


async def download_on_loop(rt: Runtime, ask: Ask, blocking: Blocking) -> JSONResponse:
    """The SQLite download run on the event loop: planning never waits (a WAL read), and the
    store runs here when the writer's turn is free; only when it is taken does the store (or
    the fallback) go to ``blocking`` (e.g. ``loop.run_in_executor`` with a thread pool), so
    the loop never waits for another writer."""
    for _attempt in range(OPTIMISTIC_ATTEMPTS):
        got = plan_download(rt, ask)
        try:
            stored = store_download(rt, got, wait=False)
        except WriterBusy:
            stored = await blocking(store_download, rt, got)
        if stored:
            return respond(got)
    return respond(await blocking(download_in_one_transaction, rt, ask))
