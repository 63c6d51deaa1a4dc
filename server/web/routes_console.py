"""The operator console's pages (``/console/...``): users, partners, locks, key requests,
usage logs, the audit log, enrollment codes with a QR code.

Server-rendered (Jinja2), plain HTML forms (no JavaScript needed outside the passkey
ceremonies). Every page checks the signed-in member's role and scope
(:mod:`kagiya.server.web.access`); every change runs the operator API's own service function
as that member (audited as ``console:<operator>:staff<pk>``), and a refusal is shown from the
same problem document the API would return.

CSRF: the session cookie is ``SameSite=Strict``; every form post must carry our ``Origin``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from kagiya.sdk.i18n import N_
from kagiya.server.db import transaction
from kagiya.server.problems import TYPE_BASE, ApiError
from kagiya.server.routers.users import public_url
from kagiya.server.schemas import KeyRequestIn, KeyRequestPatch
from kagiya.server.services import key_requests, users
from kagiya.server.services.context import Ctx
from kagiya.server.services.drivers import DRIVER_CAP
from kagiya.server.services.lease import LEASE_DAYS, day_start, lease_window
from kagiya.server.web import access, audit_words, ceremony, console_staff, console_views, qr
from kagiya.server.web.access import Member
from kagiya.server.web.render import event_word, page, perm_words
from kagiya.server.web.routes_console_auth import COOKIE
from pydantic import ValidationError

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
NAV = (("users", N_("Users"), "users.read"), ("partners", N_("Partners"), "partners.read"),
       ("locks", N_("Locks"), "locks.read"), ("requests", N_("Key requests"), "requests.read"),
       ("logs", N_("Usage logs"), "logs.read"), ("audit", N_("Audit log"), "audit.read"),
       ("notices", N_("Notices"), "notices.read"),
       ("privacy", N_("Data requests"), "privacy.read"), ("staff", N_("Staff"), "staff.manage"))
PERMS = ("doors", "drive", "log")
Field = Annotated[str, Form()]
Perms = Annotated[list[str] | None, Form()]


class _SignIn(Exception):
    """No live console session: go to the sign-in page."""




def _member(request: Request, ability: str) -> Member:
    rt = ceremony.runtime_of(request)
    with transaction(rt.sessions) as s:
        m = console_staff.session_member(s, request.cookies.get(COOKIE), rt.now())
    if m is None:
        raise _SignIn
    m.require(ability)
    return m


def _problem_page(request: Request, m: Member | None, exc: ApiError) -> Response:
    """The refusal as the API states it (status, type, title, detail)."""
    return page(request, "console_problem.html", status=exc.status, m=m, nav=NAV,
                roles=access.ROLE_WORDS,
                problem={"type": TYPE_BASE + exc.code, "code": exc.code, "title": exc.title,
                         "detail": exc.detail, "status": exc.status, **exc.extra})


def _guarded(request: Request, ability: str, view: Callable[[Member], Response],
             *, write: bool = False) -> Response:
    """Run ``view`` for the signed-in member with ``ability`` (a write also needs our
    Origin); refusals become problem pages, a missing session the sign-in page."""
    m: Member | None = None
    try:
        if write and not ceremony.same_origin(request, ceremony.relying_party(request)):
            raise ApiError(403, "wrong-origin", "this request did not come from the console")
        m = _member(request, ability)
        return view(m)
    except _SignIn:
        return RedirectResponse("/console/sign-in", status_code=303)
    except ApiError as exc:
        return _problem_page(request, m, exc)


def _act(request: Request, m: Member, service: Callable[[Ctx], T],
         check: Callable[[Any], None] | None = None) -> T:
    """``service`` in one transaction as ``m`` (after ``check(session)``, the scope)."""
    rt = ceremony.runtime_of(request)
    with transaction(rt.sessions) as s:
        if check is not None:
            check(s)
        return service(Ctx(s, m.principal, rt.now(), rt.settings))


def _read(request: Request, query: Callable[[Any, int], T]) -> T:
    rt = ceremony.runtime_of(request)
    with transaction(rt.sessions) as s:
        return query(s, rt.now())


def _show(request: Request, m: Member, template: str, **context: Any) -> Response:
    return page(request, template, m=m, nav=NAV, roles=access.ROLE_WORDS, perm_words=perm_words,
                event_word=event_word, **context)


def _back(to: str) -> Response:
    return RedirectResponse(to, status_code=303)


def _day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid-date", f"{what} must be a date (YYYY-MM-DD)") from None


def _body(model: type[T], **fields: Any) -> T:
    """A request body model from form fields, refused like the API (422)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise ApiError(422, "validation-failed", f"{where}: {first.get('msg', '')}") from None


@router.get("/console/users")
def users_page(request: Request) -> Response:
    """Users with the contract's quota, their phones and active keys."""
    def view(m: Member) -> Response:
        rows, quota = _read(request, lambda s, now: (console_views.users(s, m, now),
                                                     console_views.quota(s, m)))
        return _show(request, m, "console_users.html", rows=rows, quota=quota)
    return _guarded(request, "users.read", view)


@router.post("/console/users")
def create_user(request: Request) -> Response:
    """Issue a new user ID (within the quota: 409 ``quota-exceeded`` beyond)."""
    return _guarded(request, "users.write", lambda m: (
        _act(request, m, users.create), _back("/console/users"))[1], write=True)


@router.post("/console/users/{user_id}/status/{action}")
def user_action(request: Request, user_id: str, action: str) -> Response:
    """Suspend, resume, or suspend as leaked (the ID's keys are revoked on every lock)."""
    services = {"suspend": users.suspend, "resume": users.resume, "leaked": users.mark_leaked}
    service = services.get(action)
    if service is None:
        return _problem_page(request, None, ApiError(404, "not-found", "no such action"))

    def view(m: Member) -> Response:
        _act(request, m, lambda c: service(c, user_id),
             lambda s: access.check_user(s, m, user_id))
        return _back("/console/users")
    return _guarded(request, "users.write", view, write=True)


@router.post("/console/users/{user_id}/enrollment")
def enrollment(request: Request, user_id: str) -> Response:
    """A one-time enrollment code for the user's phone, shown with a QR code of the
    enrollment link (it carries this server's URL: the app never asks for one)."""
    def view(m: Member) -> Response:
        out = _act(request, m,
                   lambda c: users.create_enrollment_code(c, user_id, public_url(request)),
                   lambda s: access.check_user(s, m, user_id))
        return _show(request, m, "console_enrollment.html", code=out,
                     qr=qr.svg_data_uri(out.enrollment_link))
    return _guarded(request, "enrollment.create", view, write=True)


@router.get("/console/partners")
def partners_page(request: Request) -> Response:
    """The operator's partners (privacy policy §4: who handles the data)."""
    def view(m: Member) -> Response:
        rows = _read(request, lambda s, now: console_views.partners(s, m))
        return _show(request, m, "console_partners.html", rows=rows)
    return _guarded(request, "partners.read", view)


@router.get("/console/locks")
def locks_page(request: Request) -> Response:
    """Locks: vehicle label, partner, status, care plan and drivers, last log upload."""
    def view(m: Member) -> Response:
        rows = _read(request, lambda s, now: console_views.locks(s, m, now))
        parts = _read(request, lambda s, now: console_views.partners(s, m)) if m.can(
            "locks.write") else []
        return _show(request, m, "console_locks.html", rows=rows, caps=DRIVER_CAP,
                     partners=parts)
    return _guarded(request, "locks.read", view)


@router.get("/console/requests")
def requests_page(request: Request, user_id: str = "", lock_id: str = "",
                  status: str = "") -> Response:
    """Key requests (filters: user, lock, status) and the form for a new one."""
    def view(m: Member) -> Response:
        rows = _read(request, lambda s, now: console_views.key_requests(
            s, m, user_id=user_id[:64], lock_id=lock_id[:64], status=status[:16]))
        return _show(request, m, "console_requests.html", rows=rows, perms=PERMS,
                     lease_days=LEASE_DAYS, f={"user_id": user_id, "lock_id": lock_id,
                                               "status": status})
    return _guarded(request, "requests.read", view)


def _window(lease: str, delivery: str, start: str, end: str) -> tuple[int, int]:
    """(nbf, exp): a lease preset from the delivery day, or a first and last day."""
    if lease:
        if not lease.isdigit() or int(lease) not in LEASE_DAYS:
            raise ApiError(422, "invalid-lease", "a lease runs 360 or 710 days")
        return lease_window(_day(delivery, "the delivery day"), int(lease))
    return day_start(_day(start, "the first day")), day_start(_day(end, "the last day"), 1)


@router.post("/console/requests")
def create_request(request: Request, user_id: Field, lock_id: Field,
                   permissions: Perms = None, lease: Field = "", delivery: Field = "",
                   start: Field = "", end: Field = "") -> Response:
    """A key request: a lease preset (360 or 710 days from the delivery day) or days;
    the vehicle's plan caps its drivers (409 ``driver-cap-reached``)."""
    def view(m: Member) -> Response:
        nbf, exp = _window(lease, delivery, start, end)
        body = _body(KeyRequestIn, user_id=user_id, lock_id=lock_id, nbf=nbf, exp=exp,
                     permissions=permissions or [])

        def scope(s: Any) -> None:
            access.check_lock(s, m, lock_id)
            access.check_new_driver(s, m, user_id)
        _act(request, m, lambda c: key_requests.create(c, body), scope)
        return _back(f"/console/requests?lock_id={lock_id}")
    return _guarded(request, "requests.write", view, write=True)


@router.post("/console/requests/{request_id}/change")
def change_request(request: Request, request_id: str, permissions: Perms = None,
                   end: Field = "") -> Response:
    """Change a key request's permissions and/or last day (re-issues its key)."""
    def view(m: Member) -> Response:
        exp = None
        if end:
            exp = day_start(_day(end, "the last day"), 1)
        body = _body(KeyRequestPatch, exp=exp, permissions=permissions or None)
        _act(request, m, lambda c: key_requests.change(c, request_id, body),
             lambda s: access.check_request(s, m, request_id))
        return _back("/console/requests")
    return _guarded(request, "requests.write", view, write=True)


@router.post("/console/requests/{request_id}/cancel")
def cancel_request(request: Request, request_id: str) -> Response:
    """Cancel a key request (its key is revoked on the lock)."""
    def view(m: Member) -> Response:
        _act(request, m, lambda c: key_requests.cancel(c, request_id),
             lambda s: access.check_request(s, m, request_id))
        return _back("/console/requests")
    return _guarded(request, "requests.write", view, write=True)


@router.get("/console/logs")
def logs_page(request: Request, lock_id: str = "", user_id: str = "", since: str = "",
              until: str = "") -> Response:
    """Usage logs with vehicle labels and user IDs (filters: lock, user, days)."""
    def view(m: Member) -> Response:
        lo = day_start(_day(since, "since")) if since else None
        hi = day_start(_day(until, "until"), 1) if until else None
        rows = _read(request, lambda s, now: console_views.usage_logs(
            s, m, lock_id=lock_id[:64], user_id=user_id[:64], since=lo, until=hi))
        return _show(request, m, "console_logs.html", rows=rows,
                     f={"lock_id": lock_id, "user_id": user_id, "since": since,
                        "until": until})
    return _guarded(request, "logs.read", view)


@router.get("/console/audit")
def audit_page(request: Request) -> Response:
    """The operator's audit log (every API and console action)."""
    def view(m: Member) -> Response:
        rows, staff = _read(request, lambda s, now: (console_views.audit_log(s, m),
                                                     console_views.staff_names(s, m)))
        return _show(request, m, "console_audit.html", rows=rows, staff=staff,
                     action_words=audit_words.action_words, actor_words=audit_words.actor_words)
    return _guarded(request, "audit.read", view)
