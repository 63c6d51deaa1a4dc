"""The FastAPI application: ``create_app(settings)`` for tests, ``app_from_env()`` for uvicorn."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from kagiya.server import problems, supervision
from kagiya.server.bodylimit import BodyLimit
from kagiya.server.config import Settings, from_env
from kagiya.server.fastpath import DownloadFastPath, configure_process
from kagiya.server.housekeeping import Housekeeper
from kagiya.server.routers import ROUTERS
from kagiya.server.runtime import Runtime
from kagiya.server.web import (
    routes_account,
    routes_console,
    routes_console_auth,
    routes_console_manage,
    routes_console_notices,
    routes_console_privacy,
    routes_mypage,
    routes_notices,
    routes_oidc,
    routes_privacy,
)

API_VERSION = "1.0.0"
DESCRIPTION = """Kagiya key server: operators manage users, partners, locks and key requests;
phones enroll, download keys, revocation updates and time statements, and upload usage logs;
installers register locks. Errors are RFC 9457 problem details. See docs/server.md."""


def build_app(runtime: Runtime | None) -> FastAPI:
    """The app object (``runtime`` None only to render the OpenAPI schema)."""
    app = FastAPI(
        title="Kagiya key server",
        version=API_VERSION,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    generate = app.openapi
    app.openapi = lambda: problems.problem_media_type(generate())  # type: ignore[method-assign]
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(routes_mypage.api)
    app.include_router(routes_mypage.router)
    app.include_router(routes_oidc.router)
    app.include_router(routes_account.api)
    app.include_router(routes_account.router)
    app.include_router(routes_notices.api)
    app.include_router(routes_notices.router)
    app.include_router(routes_console_auth.api)
    app.include_router(routes_console_auth.router)
    app.include_router(routes_console.router)
    app.include_router(routes_console_notices.router)
    app.include_router(routes_privacy.router)
    app.include_router(routes_console_privacy.router)
    app.include_router(routes_console_manage.router)
    if runtime is not None:
        app.router.add_event_handler("shutdown", runtime.close)
    return app


def create_app(settings: Settings) -> FastAPI:
    """A ready app: migrations applied, issuer key present."""
    return build_app(Runtime(settings))


def serving_app(runtime: Runtime) -> DownloadFastPath:
    """What the server runs: the app behind the key-download fast path
    (:mod:`kagiya.server.fastpath`)."""
    app = build_app(runtime)
    fast = DownloadFastPath(BodyLimit(app), runtime)
    app.router.add_event_handler("startup", configure_process)
    keeper = Housekeeper(runtime, runtime.settings.housekeeping_interval_s)
    app.router.add_event_handler("startup", keeper.start)
    app.router.on_shutdown.insert(0, keeper.stop)  # before the runtime closes its engine
    app.router.add_event_handler("shutdown", fast.close)
    if runtime.settings.mqtt_host:  # connected locks (docs/uplink.md)
        from kagiya.server.uplink.service import UplinkService

        uplink = UplinkService(runtime)
        app.state.uplink = uplink
        app.router.add_event_handler("startup", uplink.start)
        app.router.on_shutdown.insert(0, uplink.stop)
    # SIM lines, and the retirement of connected locks that never acknowledged
    if (runtime.settings.sim_contracts_file or runtime.settings.mqtt_host) \
            and runtime.settings.sim_interval_s > 0:
        from kagiya.server.simcontrol.lifecycle import LifecycleThread

        life = LifecycleThread(runtime)
        app.router.add_event_handler("startup", life.start)
        app.router.on_shutdown.insert(0, life.stop)
    return fast


def app_from_env() -> DownloadFastPath:
    """uvicorn factory (``uvicorn --factory kagiya.server.app:app_from_env``)."""
    logging.basicConfig(level=logging.INFO)
    supervision.die_with_supervisor()  # a worker of ``--workers N``: stop with the supervisor
    return serving_app(Runtime(from_env()))


def openapi_schema() -> dict[str, object]:
    """The OpenAPI document (checked in as docs/openapi.json)."""
    return build_app(None).openapi()
