"""Withdrawal at contract end, by itself (contract portal 第12条1項).

第12条1項: the My Page contract ends when the vehicle contract ends, unless it is renewed
(or switched to another service, or agreed otherwise in writing). The service models the
vehicle contract by the driver's leases (key requests): the contract has ended when none of
the driver's key requests runs any more (none active with its end still to come) and at
least one existed. Its end ``E`` is the latest end of a request: ``exp``, or the moment it
was cancelled when that came first.

A housekeeping pass (:func:`run`; every ``housekeeping_interval_s`` in each server process,
and ``kagiya server admin contract-ends`` for cron) does three things, each user in its own
short transaction:

1. **Renewed**: a driver with an open contract-end notice whose lease runs again (a new or
   extended key request within the grace period) keeps the account: the notice is withdrawn
   from their inbox. Audited ``mypage.withdrawal-cancelled``.
2. **Notice**: a driver whose contract ended (within the last ``grace + LOOKBACK_S``) gets a
   personal My Page notice, in Japanese and English, saying when the lease ended and on which
   day the account closes (now + ``contract_end_grace_s``, 30 days by default,
   ``KAGIYA_CONTRACT_END_GRACE_DAYS``; -1 turns the pass off) unless the contract is renewed.
   The notice is also the pass's record: its ``version`` is ``contract-end:<n>:<E>`` and its
   ``ends_at`` the closing time. Audited ``mypage.contract-end-notice``.
3. **Withdrawal**: once the closing time has come and still no lease runs, the account is
   ended exactly as the driver's own withdrawal does (:func:`account.withdraw`), with actor
   ``system:contract-end`` and ``reason: contract-end`` in the audit entry.

Only active user IDs of active operators are handled (a suspended ID is the operator's
business; a withdrawn one is suspended). Any withdrawal, automatic or not, closes the
driver's open notices and records the contract end it answered, so an operator who resumes a
withdrawn ID for a new contract (第12条5項: a new registration) does not see it withdrawn
again for the old one; its next contract end starts a new notice and grace period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kagiya.sdk.i18n import N_, _, format_date, format_time, language
from kagiya.server.db import transaction
from kagiya.server.models import ACTIVE, CANCELLED, KeyRequest, Operator, User
from kagiya.server.runtime import Runtime
from kagiya.server.secrets_store import new_id
from kagiya.server.web.notices import NOTICE, Notice
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

log = logging.getLogger("kagiya.server")
DAY = 86400
LOOKBACK_S = 30 * DAY  # contract ends older than grace + this are not looked at again
BATCH = 200  # users per step and pass (the next pass takes the rest)
ACTOR = "system:contract-end"
_VERSION_PREFIX = "contract-end:"

TITLE = N_("Your contract has ended")
BODY = N_("Your last lease ended on {ended}. Unless your contract is renewed, your My Page "
          "account closes on {closes}: the keys on your phones are cancelled, your phones "
          "and ways to sign in are removed and your user ID is suspended. Your key requests "
          "and usage logs are kept as the privacy policy allows. When the contract is "
          "renewed, this notice is withdrawn and nothing changes.")


@dataclass
class Report:
    """User IDs handled by one pass."""

    renewed: list[str] = field(default_factory=list)
    noticed: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        """JSON-ready (the CLI prints it)."""
        return {"renewed": self.renewed, "noticed": self.noticed, "withdrawn": self.withdrawn}


def _running(user_pk: object, now: int) -> ColumnElement[bool]:
    return exists(select(KeyRequest.id).where(KeyRequest.user_pk == user_pk,
                                              KeyRequest.status == ACTIVE,
                                              KeyRequest.exp > now))


def contract_end(s: Session, user_pk: int, now: int) -> int | None:
    """When the driver's last lease ended (None while one runs, or when there was none)."""
    rows = s.execute(select(KeyRequest.status, KeyRequest.exp, KeyRequest.updated_at)
                     .where(KeyRequest.user_pk == user_pk)).all()
    if not rows or any(st == ACTIVE and exp > now for st, exp, _u in rows):
        return None
    return max(min(exp, upd) if st == CANCELLED else exp for st, exp, upd in rows)


def version(user_pk: int, end: int) -> str:
    """The notice's tag for the contract of ``user_pk`` that ended at ``end``."""
    return f"{_VERSION_PREFIX}{user_pk}:{end}"


def _open_notices(user_pk: object) -> ColumnElement[bool]:
    return and_(Notice.kind == NOTICE, Notice.user_pk == user_pk,
                Notice.version.like(_VERSION_PREFIX + "%"), Notice.withdrawn_at.is_(None))


def close_for_withdrawal(s: Session, user: User, now: int) -> None:
    """A withdrawal (any) answered the contract end: its notices close, and the end is
    recorded as handled (a closed notice) when no notice was posted for it yet."""
    for n in s.scalars(select(Notice).where(_open_notices(user.pk))):
        n.withdrawn_at = now
    end = contract_end(s, user.pk, now)
    tag = version(user.pk, end) if end is not None else None
    if tag and s.scalar(select(Notice.id).where(Notice.operator_id == user.operator_id,
                                                Notice.kind == NOTICE,
                                                Notice.version == tag)) is None:
        s.add(_notice(user, tag, end or now, now, now, withdrawn=True))


def _notice(user: User, tag: str, ended: int, now: int, closes: int, *,
            withdrawn: bool = False) -> Notice:
    words = {}
    for lang in ("ja", "en"):
        with language(lang):
            words[lang] = (_(TITLE), _(BODY).format(ended=format_date(ended),
                                                    closes=format_time(closes)))
    return Notice(id=new_id("nt"), operator_id=user.operator_id, kind=NOTICE, user_pk=user.pk,
                  title_ja=words["ja"][0], title_en=words["en"][0], body_ja=words["ja"][1],
                  body_en=words["en"][1], version=tag, starts_at=now, ends_at=closes,
                  published_at=now, withdrawn_at=now if withdrawn else None)


def _active_user(s: Session, user_pk: int) -> User | None:
    user = s.get(User, user_pk, with_for_update=True)
    if user is None or user.status != ACTIVE:
        return None
    op = s.get(Operator, user.operator_id)
    return user if op is not None and op.status == ACTIVE else None


def _renewals(rt: Runtime, now: int, report: Report) -> None:
    from kagiya.server import audit

    with transaction(rt.sessions) as s:
        pks = list(s.scalars(select(Notice.user_pk).where(
            _open_notices(Notice.user_pk), _running(Notice.user_pk, now)).distinct()
            .limit(BATCH)))
    for pk in pks:
        with transaction(rt.sessions) as s:
            user = s.get(User, pk, with_for_update=True)
            if user is None or contract_end(s, pk, now) is not None:
                continue
            for n in s.scalars(select(Notice).where(_open_notices(pk))):
                n.withdrawn_at = now
            audit.record(s, now, ACTOR, "mypage.withdrawal-cancelled",
                         operator_id=user.operator_id, target=user.user_id,
                         detail={"reason": "renewed"})
            report.renewed.append(user.user_id)


def _notices(rt: Runtime, now: int, grace: int, report: Report) -> None:
    from kagiya.server import audit

    since = now - grace - LOOKBACK_S
    ended = or_(and_(KeyRequest.exp > since, KeyRequest.exp <= now),
                and_(KeyRequest.status == CANCELLED, KeyRequest.updated_at > since,
                     KeyRequest.updated_at <= now))
    with transaction(rt.sessions) as s:
        pks = list(s.scalars(
            select(User.pk).join(Operator, Operator.id == User.operator_id).where(
                User.status == ACTIVE, Operator.status == ACTIVE,
                exists(select(KeyRequest.id).where(KeyRequest.user_pk == User.pk, ended)),
                ~_running(User.pk, now)).order_by(User.pk).limit(10 * BATCH)))
    posted = 0
    for pk in pks:
        if posted >= BATCH:
            break
        try:
            with transaction(rt.sessions) as s:
                user = _active_user(s, pk)
                end = contract_end(s, pk, now) if user is not None else None
                if user is None or end is None:
                    continue
                tag = version(pk, end)
                if s.scalar(select(Notice.id).where(Notice.operator_id == user.operator_id,
                                                    Notice.kind == NOTICE,
                                                    Notice.version == tag)) is not None:
                    continue  # this contract end has its notice (or was answered)
                for old in s.scalars(select(Notice).where(_open_notices(pk))):
                    old.withdrawn_at = now  # a renewal that ended too: a new grace period
                closes = now + grace
                s.add(_notice(user, tag, end, now, closes))
                audit.record(s, now, ACTOR, "mypage.contract-end-notice",
                             operator_id=user.operator_id, target=user.user_id,
                             detail={"ended_at": end, "closes_at": closes})
                report.noticed.append(user.user_id)
                posted += 1
        except IntegrityError:  # another process posted it at the same moment
            continue


def _withdrawals(rt: Runtime, now: int, report: Report) -> None:
    from kagiya.server.web import account

    with transaction(rt.sessions) as s:
        due = list(s.execute(select(Notice.user_pk, Notice.version).where(
            _open_notices(Notice.user_pk), Notice.ends_at <= now).limit(BATCH)))
    for pk, tag in due:
        with transaction(rt.sessions) as s:
            user = _active_user(s, pk)
            end = contract_end(s, pk, now) if user is not None else None
            if user is None or end is None or version(pk, end) != tag:
                continue  # renewed (step 1), or a later end has its own notice (step 2)
            account.withdraw(s, user, now, ACTOR, reason="contract-end")
            report.withdrawn.append(user.user_id)


def run(rt: Runtime, now: int | None = None) -> Report:
    """One pass (see the module); does nothing when the grace period is negative (off)."""
    now = rt.now() if now is None else now
    report = Report()
    grace = rt.settings.contract_end_grace_s
    if grace < 0:
        return report
    _renewals(rt, now, report)
    _notices(rt, now, grace, report)
    _withdrawals(rt, now, report)
    if report.renewed or report.noticed or report.withdrawn:
        log.info("contract ends: renewed=%d noticed=%d withdrawn=%d", len(report.renewed),
                 len(report.noticed), len(report.withdrawn))
    return report
