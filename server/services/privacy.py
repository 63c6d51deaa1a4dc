"""Data-subject requests (privacy policy §8) and the register of third-party provisions.

A driver files a request on My Page (:mod:`kagiya.server.web.routes_privacy`) after proving
it is them again (a passkey, or a sign-in of the last few minutes); the operator answers it
through the API (``/v1/privacy-requests``) or the console. Fulfilling runs the existing paths:

- ``disclosure``: the driver may then open everything held about them (:func:`disclosure`,
  built on :func:`kagiya.server.services.users.export`) as a page and as JSON, for
  :data:`DISCLOSURE_DAYS` days;
- ``correction``: the operator corrects (e.g. a vehicle label, a contact) and says what it did;
- ``stop-use``: the user ID is suspended (:func:`kagiya.server.services.users.suspend`: keys
  revoked, tokens ended);
- ``erasure``: the user ID is deleted (:func:`kagiya.server.services.users.delete_user`); the
  request and provision records stay, naming the ID's audit pseudonym only.

Every request has a deadline (:data:`DUE_DAYS` days after it was received: the policy's
"reasonable period"); every step is audited, and the driver finds each answer in their My
Page inbox (a personal notice, :mod:`kagiya.server.web.notices`).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from kagiya.sdk.i18n import N_, _, format_date, language
from kagiya.server import audit
from kagiya.server.models import ACTIVE, AuditEntry, User
from kagiya.server.principal import OperatorRef, Principal
from kagiya.server.privacy_store import (
    FULFILLED,
    RECEIVED,
    REFUSED,
    WITHDRAWN,
    PrivacyRequest,
    Provision,
)
from kagiya.server.problems import ApiError, not_found
from kagiya.server.schemas import In, Label, Page, UserExport
from kagiya.server.secrets_store import new_id
from kagiya.server.services import users
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_user
from kagiya.server.services.paging import page
from pydantic import BaseModel, Field
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

DUE_DAYS = 14
DISCLOSURE_DAYS = 30
KINDS = ("disclosure", "correction", "stop-use", "erasure")
Kind = Literal["disclosure", "correction", "stop-use", "erasure"]
RequestStatus = Literal["received", "fulfilled", "refused", "withdrawn"]
Text = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
FieldName = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[ -~\u00a0-\ufffd]+$")]
REQUEST_ID = r"^pr_[0-9a-f]{1,40}$"


class PrivacyRequestOut(BaseModel):
    """A data-subject request and how it stands."""

    request_id: str
    user_id: str = Field(description="the user ID, or its audit pseudonym once erased")
    kind: Kind
    detail: str
    status: RequestStatus
    verified_by: Literal["passkey", "fresh-sign-in"]
    created_at: int
    due_at: int = Field(description=f"the deadline: {DUE_DAYS} days after it was received")
    overdue: bool
    answered_at: int | None
    answered_by: str | None
    answer: str


class PrivacyRequestPage(Page):
    """A page of data-subject requests."""

    items: list[PrivacyRequestOut]


class AnswerIn(In):
    """The operator's answer: what was done, or why not (required to refuse, and to fulfil
    a correction)."""

    answer: Text = ""


class ProvisionIn(In):
    """One provision of a user's data to a third party (privacy policy §5)."""

    recipient: Label
    fields: list[FieldName] = Field(min_length=1, max_length=30)
    provided_on: date
    purpose: Text = ""


class ProvisionOut(BaseModel):
    """A provision record."""

    provision_id: int
    user_id: str
    recipient: str
    purpose: str
    fields: list[str]
    provided_on: date
    recorded_at: int
    recorded_by: str


class ProvisionList(BaseModel):
    """A user's provision records, newest first."""

    items: list[ProvisionOut]


class Disclosure(BaseModel):
    """Everything held about one user ID (a fulfilled disclosure request)."""

    generated_at: int
    operator: str
    export: UserExport
    my_page: dict[str, list[dict[str, Any]]]
    privacy_requests: list[PrivacyRequestOut]
    provisions: list[ProvisionOut]
    audit: list[dict[str, Any]]


def request_out(r: PrivacyRequest, now: int) -> PrivacyRequestOut:
    """The API view of a request (``overdue``: still open after its deadline)."""
    return PrivacyRequestOut(
        request_id=r.id, user_id=r.user_ref, kind=r.kind,
        detail=r.detail, status=r.status, verified_by=r.verified_by,
        created_at=r.created_at, due_at=r.due_at,
        overdue=r.status == RECEIVED and now > r.due_at, answered_at=r.answered_at,
        answered_by=r.answered_by, answer=r.answer)


def provision_out(p: Provision) -> ProvisionOut:
    """The API view of a provision record."""
    return ProvisionOut(provision_id=p.id, user_id=p.user_ref, recipient=p.recipient,
                        purpose=p.purpose, fields=json.loads(p.fields),
                        provided_on=date.fromisoformat(p.provided_on),
                        recorded_at=p.recorded_at, recorded_by=p.recorded_by)


# -- the driver's side (My Page) ----------------------------------------------------------------

def file_request(s: Session, user: User, kind: str, detail: str, verified_by: str,
                 now: int) -> PrivacyRequest:
    """File a request for ``user`` (already verified: ``verified_by``). One open request of
    each kind at a time (409 ``privacy-request-open``); a correction says what is wrong
    (422 ``detail-required``)."""
    if kind not in KINDS:
        raise ApiError(422, "invalid-kind", f"a request is one of {', '.join(KINDS)}")
    detail = detail.strip()[:1000]
    if kind == "correction" and not detail:
        raise ApiError(422, "detail-required", "say what should be corrected")
    if s.scalar(select(PrivacyRequest.id).where(
            PrivacyRequest.user_pk == user.pk, PrivacyRequest.kind == kind,
            PrivacyRequest.status == RECEIVED)) is not None:
        raise ApiError(409, "privacy-request-open", "a request of this kind is already open")
    req = PrivacyRequest(id=new_id("pr"), operator_id=user.operator_id, user_pk=user.pk,
                         user_ref=user.user_id, kind=kind, detail=detail, status=RECEIVED,
                         verified_by=verified_by, created_at=now,
                         due_at=now + DUE_DAYS * 86400, answer="")
    s.add(req)
    s.flush()
    audit.record(s, now, f"user:{user.user_id}", "privacy.request", operator_id=user.operator_id,
                 target=req.id, detail={"kind": kind, "verified_by": verified_by})
    return req


def requests_of(s: Session, user_pk: int) -> list[PrivacyRequest]:
    """The user's requests, newest first."""
    return list(s.scalars(select(PrivacyRequest).where(PrivacyRequest.user_pk == user_pk)
                          .order_by(PrivacyRequest.created_at.desc(), PrivacyRequest.id)))


def own_request(s: Session, user_pk: int, request_id: str) -> PrivacyRequest | None:
    """The user's request ``request_id`` (None for anyone else's)."""
    return s.scalar(select(PrivacyRequest).where(PrivacyRequest.id == request_id,
                                                 PrivacyRequest.user_pk == user_pk))


def withdraw(s: Session, user: User, request_id: str, now: int) -> PrivacyRequest:
    """The driver withdraws an open request (404 for another's, 409 once answered)."""
    req = own_request(s, user.pk, request_id)
    if req is None:
        raise not_found("privacy request")
    _open(req)
    req.status, req.answered_at, req.answered_by = WITHDRAWN, now, f"user:{user.user_id}"
    audit.record(s, now, f"user:{user.user_id}", "privacy.withdraw",
                 operator_id=user.operator_id, target=req.id, detail={"kind": req.kind})
    return req


def disclosure_open(req: PrivacyRequest, now: int) -> bool:
    """May the driver open the disclosure of this request now?"""
    return (req.kind == "disclosure" and req.status == FULFILLED
            and req.answered_at is not None and now < req.answered_at + DISCLOSURE_DAYS * 86400)


def driver_ctx(s: Session, user: User, now: int, settings: Any) -> Ctx:
    """A service context reading as the user's operator (for the export path)."""
    from kagiya.server.models import Operator

    op = s.get(Operator, user.operator_id)
    assert op is not None
    ref = OperatorRef(op.id, op.status, op.contract_start, op.contract_end)
    return Ctx(s, Principal("user", ref), now, settings)


def disclosure(c: Ctx, user_id: str) -> Disclosure:
    """Everything held about ``user_id``: the operator's export (profile, key requests,
    phones, keys, usage logs), My Page data (passkeys, linked IDs, contact details, terms
    accepted), its requests, the provisions register
    and the audit entries naming it."""
    from kagiya.server.models import Operator
    from kagiya.server.web import identities, notices, store

    user = get_user(c, user_id)
    contact = notices.contact_of(c.s, user.pk)
    terms = [{"notice_id": a.notice_id, "accepted_at": a.accepted_at} for a in c.s.scalars(
        select(notices.TermsAcceptance).where(notices.TermsAcceptance.user_pk == user.pk))]
    op = c.s.get(Operator, user.operator_id)
    passkeys = [{"created_at": p.created_at, "last_used_at": p.last_used_at}
                for p in store.passkeys_of(c.s, user.pk)]
    linked = [{"issuer": i.issuer, "subject": i.subject} for i in c.s.scalars(
        select(identities.Identity).where(identities.Identity.user_pk == user.pk))]
    entries = c.s.scalars(select(AuditEntry).where(
        AuditEntry.operator_id == user.operator_id,
        or_(AuditEntry.target == user.user_id, AuditEntry.actor == f"user:{user.user_id}",
            AuditEntry.detail.contains(json.dumps(user.user_id))))
        .order_by(AuditEntry.id.desc()).limit(500))
    return Disclosure(
        generated_at=c.now, operator=op.name if op else user.operator_id,
        export=users.export(c, user_id),
        my_page={"passkeys": passkeys, "linked_ids": linked, "terms_accepted": terms,
                 "notices_read": [{"notice_id": r.notice_id, "read_at": r.read_at}
                                  for r in c.s.scalars(select(notices.NoticeRead).where(
                                      notices.NoticeRead.user_pk == user.pk))],
                 "contact": [{"email": contact.email, "phone": contact.phone,
                              "updated_at": contact.updated_at}] if contact else []},
        privacy_requests=[request_out(r, c.now) for r in requests_of(c.s, user.pk)],
        provisions=[provision_out(p) for p in _provisions(c.s, user.operator_id, user.user_id)],
        audit=[{"at": e.at, "action": e.action, "actor": e.actor} for e in entries])


# -- the operator's side (API and console) ------------------------------------------------------

def _open(req: PrivacyRequest) -> None:
    if req.status != RECEIVED:
        raise ApiError(409, "privacy-request-closed", f"this request is already {req.status}")


def _get(c: Ctx, request_id: str, *, lock: bool = False) -> PrivacyRequest:
    q = select(PrivacyRequest).where(PrivacyRequest.id == request_id,
                                     PrivacyRequest.operator_id == c.operator_id)
    req = c.s.scalar(q.with_for_update() if lock else q)
    if req is None:
        raise not_found("privacy request")
    return req


def list_page(c: Ctx, status: str | None, after: str | None, limit: int) -> PrivacyRequestPage:
    """The operator's requests ordered by ID after cursor ``after``, optionally in ``status``."""
    q = select(PrivacyRequest).where(PrivacyRequest.operator_id == c.operator_id)
    if status:
        q = q.where(PrivacyRequest.status == status)
    if after:
        q = q.where(PrivacyRequest.id > after)
    rows, more = page(c.s.scalars(q.order_by(PrivacyRequest.id).limit(limit + 1)).all(), limit,
                      lambda r: r.id)
    return PrivacyRequestPage(items=[request_out(r, c.now) for r in rows], next_cursor=more)


def queue(s: Session, operator_id: str, now: int, status: str = "",
          limit: int = 200) -> list[PrivacyRequestOut]:
    """The console's list: open requests by deadline first, then the answered ones."""
    q = select(PrivacyRequest).where(PrivacyRequest.operator_id == operator_id)
    if status:
        q = q.where(PrivacyRequest.status == status)
    rows = s.scalars(q.order_by((PrivacyRequest.status != RECEIVED), PrivacyRequest.due_at,
                                PrivacyRequest.id).limit(limit))
    return [request_out(r, now) for r in rows]


def read(c: Ctx, request_id: str) -> PrivacyRequestOut:
    """One request (404 if it is not the caller's)."""
    return request_out(_get(c, request_id), c.now)


def fulfil(c: Ctx, request_id: str, body: AnswerIn) -> PrivacyRequestOut:
    """Fulfil an open request through the existing paths (module docstring); 409
    ``privacy-request-closed`` once answered, 409 ``user-erased`` when the ID is gone."""
    req = _get(c, request_id, lock=True)
    _open(req)
    answer = body.answer.strip()
    if req.kind == "correction" and not answer:
        raise ApiError(422, "answer-required", "say what was corrected")
    user = c.s.get(User, req.user_pk) if req.user_pk is not None else None
    if user is None:
        raise ApiError(409, "user-erased", "this user ID was erased; refuse the request")
    done: dict[str, Any] = {}
    if req.kind == "stop-use" and user.status == ACTIVE:
        users.suspend(c, user.user_id)
        done["suspended"] = True
    target_user = user.user_id
    if req.kind == "erasure":
        users.delete_user(c, user.user_id)
        erase_refs(c.s, c.operator_id, user.user_id)
        target_user = audit.pseudonym(c.operator_id, user.user_id)
        c.s.refresh(req)
    req.status, req.answered_at, req.answered_by = FULFILLED, c.now, c.p.actor
    req.answer = answer
    c.audit("privacy.fulfil", req.id, kind=req.kind, user=target_user, **done)
    _tell(c, req)
    return request_out(req, c.now)


ANSWERED = N_("Your data request was answered")
ANSWER_BODY = {FULFILLED: N_("Your request ({kind}) of {day} was answered: done."),
               REFUSED: N_("Your request ({kind}) of {day} was answered: refused.")}
KIND_NAMES = {"disclosure": N_("disclosure"), "correction": N_("correction"),
              "stop-use": N_("stop use"), "erasure": N_("erasure")}


def _tell(c: Ctx, req: PrivacyRequest) -> None:
    """A personal My Page notice that the request was answered (in both languages, with
    the operator's answer); none after an erasure (nobody is left to read it)."""
    from kagiya.server.web import notices

    if req.user_pk is None or (req.kind == "erasure" and req.status == FULFILLED):
        return
    words: dict[str, tuple[str, str]] = {}
    for lang in ("ja", "en"):
        with language(lang):
            sentence = _(ANSWER_BODY[req.status]).format(
                kind=_(KIND_NAMES[req.kind]), day=format_date(req.created_at))
            text = "\n\n".join(x for x in (sentence, req.answer.replace("\r", "")) if x)
            words[lang] = (_(ANSWERED), text)
    notices.publish(c, notices.NoticeIn(
        kind="notice", title=notices.Title(ja=words["ja"][0], en=words["en"][0]),
        body=notices.Text(ja=words["ja"][1], en=words["en"][1]), user_id=req.user_ref))


def refuse(c: Ctx, request_id: str, body: AnswerIn) -> PrivacyRequestOut:
    """Refuse an open request, saying why (422 ``answer-required`` without a reason)."""
    req = _get(c, request_id, lock=True)
    _open(req)
    if not body.answer.strip():
        raise ApiError(422, "answer-required", "say why the request is refused")
    req.status, req.answered_at, req.answered_by = REFUSED, c.now, c.p.actor
    req.answer = body.answer.strip()
    c.audit("privacy.refuse", req.id, kind=req.kind, user=req.user_ref)
    _tell(c, req)
    return request_out(req, c.now)


def erase_refs(s: Session, operator_id: str, user_id: str) -> None:
    """After an erasure: the ID's requests and provision records name its audit pseudonym,
    and what the driver wrote into requests is blanked (it may hold personal data)."""
    alias = audit.pseudonym(operator_id, user_id)
    s.execute(update(PrivacyRequest).where(PrivacyRequest.operator_id == operator_id,
                                           PrivacyRequest.user_ref == user_id)
              .values(user_ref=alias, detail="", user_pk=None))
    s.execute(update(Provision).where(Provision.operator_id == operator_id,
                                      Provision.user_ref == user_id).values(user_ref=alias))


# -- the register of third-party provisions -----------------------------------------------------

def _provisions(s: Session, operator_id: str, user_ref: str) -> list[Provision]:
    return list(s.scalars(select(Provision).where(Provision.operator_id == operator_id,
                                                  Provision.user_ref == user_ref)
                          .order_by(Provision.provided_on.desc(), Provision.id.desc())))


def record_provision(c: Ctx, user_id: str, body: ProvisionIn) -> ProvisionOut:
    """Record that ``user_id``'s ``fields`` went to ``recipient`` on ``provided_on``."""
    user = get_user(c, user_id)
    row = Provision(operator_id=c.operator_id, user_ref=user.user_id, recipient=body.recipient,
                    purpose=body.purpose.strip(), fields=json.dumps(body.fields),
                    provided_on=body.provided_on.isoformat(), recorded_at=c.now,
                    recorded_by=c.p.actor)
    c.s.add(row)
    c.s.flush()
    c.audit("privacy.provision", user.user_id, recipient=body.recipient, fields=body.fields)
    return provision_out(row)


def provisions(c: Ctx, user_id: str) -> ProvisionList:
    """``user_id``'s provision records, newest first."""
    user = get_user(c, user_id)
    return ProvisionList(items=[provision_out(p) for p in
                                _provisions(c.s, c.operator_id, user.user_id)])
