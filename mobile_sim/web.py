"""``kagiya phone ui``: the phone app as a small web page on loopback, for people who tap.

A FastAPI app bound to 127.0.0.1 serves one phone-shaped page (:mod:`kagiya.phone.webpage`)
and a JSON API the page calls. The page drives the same :class:`PhoneApp` as the CLI.

Local-only hardening: the server binds to loopback, refuses requests whose ``Host`` is not
a loopback name (DNS rebinding), and every API call must carry the per-run random token the
page embeds in the ``X-Kagiya-UI`` header (a cross-site form or fetch cannot set it without
a CORS preflight, which this server never grants).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from kagiya.phone.app import COMMANDS, PhoneApp, PhoneError
from kagiya.phone.failures import classify
from kagiya.phone.ports import LockState, Offline
from kagiya.phone.refusals import outcome
from kagiya.phone.state import perm_names
from kagiya.phone.webpage import render_page
from kagiya.sdk.i18n import N_, _, current_language, format_time, language, negotiate, normalise
from kagiya.sdk.protocol import LOCK_ID_PATTERN
from pydantic import BaseModel, Field

TOKEN_HEADER = "X-Kagiya-UI"  # noqa: S105 (a header name)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


class EnrollBody(BaseModel):
    """Enrollment form: the operator's enrollment link (carries the server), or a bare code
    with the server's URL."""

    code: str = Field(min_length=4, max_length=400)
    server: str = Field(default="", max_length=200)


class CommandBody(BaseModel):
    """A command at a lock."""

    lock_id: str = Field(pattern=f"^{LOCK_ID_PATTERN}$")
    command: str = Field(pattern=r"^(unlock|lock|drive-on|drive-off|status)$")


class LockBody(BaseModel):
    """A lock."""

    lock_id: str = Field(pattern=f"^{LOCK_ID_PATTERN}$")


LANG_COOKIE = "kagiya_ui_lang"
log = logging.getLogger("kagiya.phone.web")
UNEXPECTED = N_("Something went wrong in the phone app. Try again.")
COMMAND_LABELS = {"unlock": N_("Unlock"), "lock": N_("Lock"), "drive-on": N_("Drive on"),
                  "drive-off": N_("Drive off"), "status": N_("Status")}


def _problem(kind: str, message: str, status: int = 409, code: int | None = None) -> JSONResponse:
    level = "info" if kind == "offline" else "error"
    body: dict[str, Any] = {"ok": False, "kind": kind, "message": message, "level": level}
    if code is not None:
        body["code"] = code
    return JSONResponse(body, status_code=status)


def request_language(request: Request) -> str:
    """``?lang=``, then the switch's cookie, then ``Accept-Language`` (default Japanese)."""
    return (normalise(request.query_params.get("lang"))
            or normalise(request.cookies.get(LANG_COOKIE))
            or negotiate(request.headers.get("accept-language")))


def _log_entry(rec: dict[str, Any], me: str) -> dict[str, Any]:
    """A lock log record as the driver may see it: never another driver's user ID."""
    sub = rec.get("user_id")
    return {"seq": rec.get("seq"), "time": rec.get("time"), "event": rec.get("event"),
            "code": rec.get("code"), "who": "" if not sub else ("me" if sub == me else "other")}


class UiState:
    """What the page shows besides the keystore: activity feed, lock status, recent log."""

    def __init__(self, app: PhoneApp) -> None:
        self.app = app
        self.activity: deque[dict[str, Any]] = deque(maxlen=20)
        self.lock_status: dict[str, LockState] = {}
        self.status_at: dict[str, int] = {}
        self.recent_log: dict[str, list[dict[str, Any]]] = {}
        self.ble = asyncio.Lock()
        self._online: tuple[float, bool] = (0.0, False)

    def note(self, ok: bool, text: str) -> None:
        """Add one line to the activity feed."""
        self.activity.appendleft({"at": int(time.time()), "ok": ok, "text": text})

    def online(self, server_url: str) -> bool:
        """Is the key server reachable now? (``/v1/health``, cached 3 s)."""
        checked, value = self._online
        if not server_url:
            return False
        if time.monotonic() - checked < 3.0:
            return value
        try:
            value = httpx.get(server_url + "/v1/health", timeout=1.0).status_code < 500
        except httpx.HTTPError:
            value = False
        self._online = (time.monotonic(), value)
        return value

    def snapshot(self) -> dict[str, Any]:
        """The page's whole view as JSON, every sentence in the current language."""
        ks = self.app.profile.keystore
        activity = [{**a, "at_text": format_time(a["at"], seconds=True)[11:]}
                    for a in self.activity]
        if not ks.exists():
            return {"enrolled": False, "profile": self.app.profile.name, "keys": [],
                    "activity": activity, "online": False}
        st = self.app.state()
        now = self.app.now()
        keys = [
            {
                "key_id": k.key_id_hex, "lock_id": k.lock_id,
                "nbf": k.nbf, "exp": k.exp, "status": k.status_at(now),
                "status_text": _(k.status_at(now)),
                "window": f"{format_time(k.nbf)} → {format_time(k.exp)}",
                "permissions": [_(p) for p in perm_names(k.permissions)],
                "perm_bits": k.permissions, "reason": _(k.cancelled) if k.cancelled else "",
            }
            for k in sorted(st.keys.values(), key=lambda k: (k.lock_id, -k.exp))
        ]
        withdrawn = [
            {"key_id": w.key_id.hex(), "lock_id": w.lock_id, "status": "cancelled",
             "status_text": _("cancelled"), "reason": _(w.reason),
             "at_text": format_time(w.at)}
            for w in st.withdrawn if w.key_id not in st.keys
        ]
        locks = sorted({k.lock_id for k in st.keys.values()} | {w["lock_id"] for w in withdrawn})
        usable = {lock: bool(st.usable_keys(lock, now)) for lock in locks}
        status = {
            lock: {**s.as_dict(), "chips": s.chips(), "at": self.status_at.get(lock, 0)}
            for lock, s in self.lock_status.items()
        }
        recent = {
            lock: [{**r, "time_text": format_time(r["time"]) if r.get("time") else "",
                    "event_text": _(r["event"]) if r.get("event") else "",
                    "outcome": outcome(r.get("code")),
                    "who_text": {"me": _("you"), "other": _("another driver")}.get(r["who"], "")}
                   for r in rows]
            for lock, rows in self.recent_log.items()
        }
        queued = len(self.app.profile.outbox)
        who = _("phone {phone} · user {user} · {queued} upload(s) queued · last sync {last}")
        return {
            "enrolled": st.enrolled, "profile": st.profile, "phone_id": st.phone_id,
            "user_id": st.user_id, "keys": keys, "withdrawn": withdrawn, "usable": usable,
            "now": now, "last_sync": st.last_sync, "outbox": queued,
            "online": self.online(st.server_url),
            "lock_status": status, "recent_log": recent, "activity": activity,
            "who": who.format(phone=st.phone_id, user=st.user_id, queued=queued,
                              last=format_time(st.last_sync) if st.last_sync else _("never")),
        }

    async def guarded(self, what: str, fn: Callable[[], Awaitable[dict[str, Any]]], *,
                      ble: bool = False, enrolling: bool = False) -> Response:
        """Run an action; every failure becomes a JSON refusal in plain words (+ code), the
        same sentences as the CLI (:mod:`kagiya.phone.failures`)."""
        try:
            body = await fn()
        except Exception as exc:
            failure = classify(exc, ble=ble, enrolling=enrolling)
            if failure is None:
                log.exception("phone UI: %s failed", what)
                self.note(False, f"{what}: {_(UNEXPECTED)}")
                return _problem("internal", _(UNEXPECTED), 500)
            self.note(False, f"{what}: {failure.message}")
            return _problem(failure.kind, failure.message, failure.http_status, failure.code)
        return JSONResponse({"ok": True, "level": "ok", **body})


def create_app(app: PhoneApp, ui_token: str) -> FastAPI:
    """The FastAPI application of the phone UI for ``app``."""
    ui = UiState(app)
    web = FastAPI(title="Kagiya phone", docs_url=None, redoc_url=None, openapi_url=None)

    @web.middleware("http")
    async def local_only(request: Request, call_next: Any) -> Response:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if host not in LOOPBACK_HOSTS:
            return _problem("forbidden", "loopback only", 403)
        if request.url.path.startswith("/api/") and not secrets.compare_digest(
            request.headers.get(TOKEN_HEADER, ""), ui_token
        ):
            return _problem("forbidden", "missing UI token", 403)
        with language(request_language(request)):
            resp: Response = await call_next(request)
        return resp

    @web.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        lang = current_language()
        resp = HTMLResponse(render_page(ui_token, lang), headers={"Cache-Control": "no-store"})
        if normalise(request.query_params.get("lang")):
            resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                            httponly=True)
        return resp

    @web.get("/api/state")
    async def state() -> Response:
        async def run() -> dict[str, Any]:
            return await asyncio.to_thread(ui.snapshot)
        return await ui.guarded("state", run)

    @web.post("/api/enroll")
    async def enroll(body: EnrollBody) -> Response:
        async def run() -> dict[str, Any]:
            st = await asyncio.to_thread(app.enroll, body.server or None, body.code)
            ui.note(True, _("enrolled as phone {phone} (user {user})").format(
                phone=st.phone_id, user=st.user_id))
            rep = await asyncio.to_thread(app.sync)
            ui.note(True, _("synced: {summary}").format(summary=rep.summary()))
            return {"message": _("Enrolled. {summary}").format(summary=rep.summary())}
        return await ui.guarded(_("enroll"), run, enrolling=True)

    @web.post("/api/sync")
    async def sync() -> Response:
        async def run() -> dict[str, Any]:
            rep = await asyncio.to_thread(app.sync)
            ui.note(not rep.lost_keys, _("synced: {summary}").format(summary=rep.summary()))
            if rep.lost_keys:
                return {"level": "warn", "message": _(
                    "Synced, but the operator withdrew {n} key(s): {summary}").format(
                        n=len(rep.removed), summary=rep.summary())}
            return {"message": _("Synced: {summary}").format(summary=rep.summary())}
        return await ui.guarded(_("sync"), run)

    @web.post("/api/command")
    async def command(body: CommandBody) -> Response:
        label = _(COMMAND_LABELS[body.command])

        async def run() -> dict[str, Any]:
            async with ui.ble:
                out = await app.run(body.lock_id, body.command)
            ui.lock_status[body.lock_id] = out.state
            ui.status_at[body.lock_id] = int(time.time())
            text = _("{command}: {state}").format(command=label, state=out.state.describe())
            if body.command != "status":
                ui.note(True, f"{body.lock_id} {text}")
            return {"message": text}
        return await ui.guarded(f"{label} {body.lock_id}", run, ble=True)

    @web.post("/api/logs")
    async def logs(body: LockBody) -> Response:
        async def run() -> dict[str, Any]:
            async with ui.ble:
                n, records = await app.collect_logs_detailed(body.lock_id)
            me = app.state().user_id
            if records:
                rows = [_log_entry(r, me) for r in records]
                ui.recent_log[body.lock_id] = (rows + ui.recent_log.get(body.lock_id, []))[:12]
            msg = _("fetched {n} log record(s)").format(n=n)
            try:
                rep = await asyncio.to_thread(app.upload)
                msg += _(", uploaded {n} batch(es)").format(n=rep.sent)
            except Offline:
                msg += _(", {n} queued until online").format(n=len(app.profile.outbox))
            ui.note(True, f"{body.lock_id}: {msg}")
            return {"message": msg}
        return await ui.guarded(_("log"), run, ble=True)

    assert set(COMMANDS) >= set(COMMAND_LABELS)
    return web


def serve(app: PhoneApp, host: str = "127.0.0.1", port: int = 8765,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the UI until interrupted; ``ready(url)`` is called once listening."""
    import uvicorn

    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise PhoneError("the phone UI only listens on loopback (127.0.0.1)")
    token = secrets.token_urlsafe(24)
    config = uvicorn.Config(create_app(app, token), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.05)
        sockets = [s for srv in server.servers for s in srv.sockets]
        real_port = sockets[0].getsockname()[1] if sockets else port
        url = f"http://127.0.0.1:{real_port}/"
        (ready or (lambda u: print(f"phone UI at {u} (Ctrl-C to stop)", flush=True)))(url)
        await task

    asyncio.run(main())


class UiServer:
    """The UI served from a background thread (tests, embedding): ``with UiServer(app) as url``."""

    def __init__(self, app: PhoneApp, port: int = 0) -> None:
        import uvicorn

        self.token = secrets.token_urlsafe(24)
        config = uvicorn.Config(create_app(app, self.token), host="127.0.0.1", port=port,
                                log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="phone-ui", daemon=True)
        self.url = ""

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the phone UI did not start")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``kagiya phone ui`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser("ui", help="serve the phone UI on loopback")
    p.add_argument("--port", type=int, default=8765, help="port (0 = any free port)")
    p.add_argument("--transport", help="BLE HCI transport (sets $KAGIYA_BLE_TRANSPORT)")

    def handler(args: argparse.Namespace) -> int:
        from kagiya.phone.cli import make_app

        try:
            serve(make_app(args), port=args.port)
        except KeyboardInterrupt:
            pass
        return 0

    p.set_defaults(handler=handler)
    return p
