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
from kagiya.phone.keystore import KeystoreCorrupt, KeystoreLocked, ProfileMissing
from kagiya.phone.ports import Offline, ServerRefused
from kagiya.phone.refusals import explain
from kagiya.phone.state import perm_names
from kagiya.phone.verify import DownloadRejected
from kagiya.phone.webpage import render_page
from kagiya.sdk.client_errors import CommandOutcomeUnknownError, LinkError
from pydantic import BaseModel, Field

TOKEN_HEADER = "X-Kagiya-UI"  # noqa: S105 (a header name)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


class EnrollBody(BaseModel):
    """Enrollment form."""

    server: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=4, max_length=20)


class CommandBody(BaseModel):
    """A command at a lock."""

    lock_id: str = Field(pattern=r"^[A-Z0-9-]{4,20}$")
    command: str = Field(pattern=r"^(unlock|lock|drive-on|drive-off|status)$")


class LockBody(BaseModel):
    """A lock."""

    lock_id: str = Field(pattern=r"^[A-Z0-9-]{4,20}$")


def _problem(kind: str, message: str, status: int = 409, code: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "kind": kind, "message": message}
    if code is not None:
        body["code"] = code
    return JSONResponse(body, status_code=status)


class UiState:
    """What the page shows besides the keystore: activity feed, lock status, recent log."""

    def __init__(self, app: PhoneApp) -> None:
        self.app = app
        self.activity: deque[dict[str, Any]] = deque(maxlen=20)
        self.lock_status: dict[str, dict[str, Any]] = {}
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
        """The page's whole view as JSON."""
        ks = self.app.profile.keystore
        if not ks.exists():
            return {"enrolled": False, "profile": self.app.profile.name, "keys": [],
                    "activity": list(self.activity), "online": False}
        st = self.app.state()
        now = self.app.now()
        keys = [
            {
                "key_id": k.key_id_hex, "lock_id": k.lock_id, "user_id": k.user_id,
                "nbf": k.nbf, "exp": k.exp, "status": k.status_at(now),
                "permissions": perm_names(k.permissions), "perm_bits": k.permissions,
            }
            for k in sorted(st.keys.values(), key=lambda k: (k.lock_id, -k.exp))
        ]
        return {
            "enrolled": st.enrolled, "profile": st.profile, "phone_id": st.phone_id,
            "user_id": st.user_id, "server_url": st.server_url, "keys": keys, "now": now,
            "last_sync": st.last_sync, "last_sync_error": st.last_sync_error,
            "outbox": len(self.app.profile.outbox), "online": self.online(st.server_url),
            "lock_status": self.lock_status, "recent_log": self.recent_log,
            "activity": list(self.activity),
        }

    async def guarded(self, what: str, fn: Callable[[], Awaitable[dict[str, Any]]]) -> Response:
        """Run an action; every failure becomes a JSON refusal with plain words (+ code)."""
        try:
            body = await fn()
        except (KeystoreCorrupt, KeystoreLocked) as exc:
            self.note(False, f"{what}: keystore problem: {exc}")
            return _problem("keystore", f"Keystore problem: {exc}", 500)
        except ProfileMissing:
            return _problem("phone", "This phone is not enrolled yet.")
        except Offline as exc:
            self.note(False, f"{what}: offline")
            return _problem("offline", f"The key server cannot be reached ({exc}). Keys "
                            "downloaded earlier still work at the vehicle.", 503)
        except ServerRefused as exc:
            self.note(False, f"{what}: refused by the server: {exc.detail}")
            return _problem("server", f"Refused by the server: {exc.detail} [{exc.code}]")
        except (PhoneError, DownloadRejected) as exc:
            self.note(False, f"{what}: {exc}")
            return _problem("phone", str(exc))
        except Exception as exc:
            code = getattr(exc, "code", None)
            if isinstance(code, int):
                text = explain(code)
                self.note(False, f"{what}: {text}")
                return _problem("lock", text, 409, code)
            if isinstance(exc, CommandOutcomeUnknownError):
                self.note(False, f"{what}: not confirmed by the lock")
                return _problem("ble", "Not confirmed: the link failed after the command was "
                                "sent; the lock may or may not have acted. Try again.", 504)
            if isinstance(exc, LinkError | TimeoutError | ConnectionError | OSError):
                self.note(False, f"{what}: lock not reachable")
                return _problem("ble", f"Cannot reach the lock ({exc or type(exc).__name__}). "
                                "Is the vehicle in range?", 504)
            raise
        return JSONResponse({"ok": True, **body})


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
        resp: Response = await call_next(request)
        return resp

    @web.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(render_page(ui_token), headers={"Cache-Control": "no-store"})

    @web.get("/api/state")
    async def state() -> Response:
        async def run() -> dict[str, Any]:
            return await asyncio.to_thread(ui.snapshot)
        return await ui.guarded("state", run)

    @web.post("/api/enroll")
    async def enroll(body: EnrollBody) -> Response:
        async def run() -> dict[str, Any]:
            st = await asyncio.to_thread(app.enroll, body.server, body.code)
            ui.note(True, f"enrolled as phone {st.phone_id} (user {st.user_id})")
            rep = await asyncio.to_thread(app.sync)
            ui.note(True, f"synced: {rep.summary()}")
            return {"message": f"Enrolled. {rep.summary()}"}
        return await ui.guarded("enroll", run)

    @web.post("/api/sync")
    async def sync() -> Response:
        async def run() -> dict[str, Any]:
            rep = await asyncio.to_thread(app.sync)
            ui.note(True, f"synced: {rep.summary()}")
            return {"message": f"Synced: {rep.summary()}"}
        return await ui.guarded("sync", run)

    @web.post("/api/command")
    async def command(body: CommandBody) -> Response:
        async def run() -> dict[str, Any]:
            async with ui.ble:
                out = await app.run(body.lock_id, body.command)
            ui.lock_status[body.lock_id] = {**out.state.as_dict(), "at": int(time.time()),
                                            "text": out.state.describe()}
            if body.command != "status":
                ui.note(True, f"{body.command} {body.lock_id}: {out.state.describe()}")
            return {"message": f"{body.command}: {out.state.describe()}",
                    "state": ui.lock_status[body.lock_id]}
        return await ui.guarded(f"{body.command} {body.lock_id}", run)

    @web.post("/api/logs")
    async def logs(body: LockBody) -> Response:
        async def run() -> dict[str, Any]:
            async with ui.ble:
                n, records = await app.collect_logs_detailed(body.lock_id)
            if records:
                ui.recent_log[body.lock_id] = (records + ui.recent_log.get(body.lock_id, []))[:12]
            msg = f"fetched {n} log record(s)"
            try:
                rep = await asyncio.to_thread(app.upload)
                msg += f", uploaded {rep.sent} batch(es)"
            except Offline:
                msg += f", {len(app.profile.outbox)} queued until online"
            ui.note(True, f"logs {body.lock_id}: {msg}")
            return {"message": msg}
        return await ui.guarded(f"logs {body.lock_id}", run)

    assert set(COMMANDS) >= {"unlock", "lock", "status"}
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
