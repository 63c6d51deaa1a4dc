"""The key download (``GET /v1/phone/keys``): the request every phone makes before going
offline, and the one the key server must serve at scale (docs/performance.md, "Key server").

A download answers with the phone's current keys (new ones signed on the spot), the signed
revocation updates for its locks, the issuer keys and a fresh signed time statement.

**SQLite: optimistic issuance.** SQLite admits one writer at a time, and a writer that signs
inside its turn keeps every other download waiting for CPU work that needs no database.
So a download (1) reads in a read transaction, which runs alongside the writer (a WAL
snapshot): authenticates, reads the issuer keys, plans its keys and signs the new ones
(:func:`kagiya.server.issuance.plan_keys`) and gets the revocation updates; then (2), only
if it signed new keys, takes the writer's turn to re-read what the plan was derived from
and insert the new keys if none of it changed (:func:`kagiya.server.issuance.store_plan`).
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

The time statement is signed last, outside every transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from kagiya.sdk.keys import IssuerKey
from kagiya.server import issuance, revocations
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


def _read(rt: Runtime, conn: Tx, bearer: str | None, *, locked: bool) -> Planned:
    p = rt.authenticate(conn, bearer, PHONES)
    assert p.phone is not None  # a phone token always resolves to its phone
    now = rt.now()
    ks = rt.keyset(conn, p)
    plan = issuance.plan_keys(
        rt.issuer, conn, p.phone, now, ks.active, issuer_version=p.issuer_version, locked=locked
    )
    body = {
        "keys": plan.keys,
        "revocations": revocations.updates_for_phone(conn, p.phone, now, ks, rt.revocations),
        "time": now,
        "time_statement": "",  # signed after the commit (respond)
        "issuer_keys": ks.listed(now),
    }
    return Planned(p.phone, ks.active, plan, body)


def plan_download(rt: Runtime, bearer: str | None) -> Planned:
    """Step 1 (SQLite): authenticate and plan in a read transaction, signing new keys;
    raises :class:`ApiError` for a refusal. Never waits for the writer's turn."""
    with tx(rt.engine, write=False) as conn:
        return _read(rt, conn, bearer, locked=False)


def store_download(rt: Runtime, got: Planned, *, wait: bool = True) -> bool:
    """Step 2 (SQLite): store the plan's new keys in the writer's turn. False when the plan
    went stale (nothing written: plan again); :class:`WriterBusy` when ``wait`` is False
    and another writer holds the turn."""
    if not got.plan.fresh:
        return True
    try:
        with tx(rt.engine, write=True, wait=wait) as conn:
            return issuance.store_plan(conn, got.plan, got.phone)
    except IntegrityError:  # e.g. the phone was deleted meanwhile: the next read refuses it
        return False


def download_in_one_transaction(rt: Runtime, bearer: str | None) -> Planned:
    """Read, sign and store in one write transaction (PostgreSQL, and SQLite's fallback)."""
    try:
        with tx(rt.engine, write=True) as conn:
            got = _read(rt, conn, bearer, locked=True)
            issuance.insert_fresh(conn, got.plan)
    except IntegrityError as exc:
        raise ApiError(409, "conflict", "conflicts with a concurrent change") from exc
    return got


def respond(got: Planned) -> JSONResponse:
    """The download response, with the time statement signed now (no transaction open)."""
    got.body["time_statement"] = issuance.time_statement(got.signer, got.body["time"])
    return JSONResponse(got.body)


def download(rt: Runtime, bearer: str | None) -> JSONResponse:
    """``GET /v1/phone/keys`` for ``bearer``, blocking: the response, or :class:`ApiError`
    for a refusal. Called by the FastAPI route and, on PostgreSQL, by
    :mod:`kagiya.server.fastpath` in a worker thread."""
    if rt.engine.dialect.name == "sqlite":
        for _attempt in range(OPTIMISTIC_ATTEMPTS):
            got = plan_download(rt, bearer)
            if store_download(rt, got):
                return respond(got)
    return respond(download_in_one_transaction(rt, bearer))


Blocking = Callable[..., Awaitable[Any]]


async def download_on_loop(rt: Runtime, bearer: str | None, blocking: Blocking) -> JSONResponse:
    """The SQLite download run on the event loop: planning never waits (a WAL read), and the
    store runs here when the writer's turn is free; only when it is taken does the store (or
    the fallback) go to ``blocking`` (e.g. ``loop.run_in_executor`` with a thread pool), so
    the loop never waits for another writer."""
    for _attempt in range(OPTIMISTIC_ATTEMPTS):
        got = plan_download(rt, bearer)
        try:
            stored = store_download(rt, got, wait=False)
        except WriterBusy:
            stored = await blocking(store_download, rt, got)
        if stored:
            return respond(got)
    return respond(await blocking(download_in_one_transaction, rt, bearer))
