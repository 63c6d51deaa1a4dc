"""``kagiya server run`` and ``kagiya server admin …`` (registered by tools/cli.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kagiya.server.config import Settings, from_env

if TYPE_CHECKING:
    from kagiya.server.runtime import Runtime


def _settings(args: argparse.Namespace) -> Settings:
    return from_env(db_url=args.db, data_dir=args.data_dir)


def _fail(code: str, message: str) -> int:
    """One line on stderr, ``kagiya server: error (CODE): message``; exit status 2."""
    print(f"kagiya server: error ({code}): {message}", file=sys.stderr)
    return 2


def _time(value: str) -> int:
    """Unix seconds or an ISO date (``2026-04-01``); exit 2 with one line otherwise."""
    if value.isdigit():
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise SystemExit(_fail("invalid-date", f"{value!r} is neither unix seconds nor an "
                               "ISO date (2026-04-01 or 2026-04-01T09:00+09:00)")) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def cmd_run(args: argparse.Namespace) -> int:
    """Start the HTTP server (migrations run first)."""
    import uvicorn
    from kagiya.server import supervision

    if args.db:
        os.environ["KAGIYA_DB_URL"] = args.db
    if args.data_dir:
        os.environ["KAGIYA_DATA_DIR"] = str(args.data_dir)

    _open(from_env()).close()  # migrate and create the issuer key once, before workers start
    if args.workers > 1:  # each worker stops when this process dies (supervision.py)
        os.environ[supervision.ENV] = str(os.getpid())
    uvicorn.run(
        "kagiya.server.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,  # X-Forwarded-For only from KAGIYA_TRUSTED_PROXIES (clientaddr.py)
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def cmd_openapi(_args: argparse.Namespace) -> int:
    """Print the OpenAPI document."""
    from kagiya.server.app import openapi_schema

    print(json.dumps(openapi_schema(), indent=2, sort_keys=True))
    return 0


def _open(settings: Settings) -> Runtime:
    """The runtime, or exit 2 with one line when the database URL is unusable (no traceback)."""
    from kagiya.server.runtime import Runtime
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        return Runtime(settings)
    except (ArgumentError, OperationalError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = _redacted(settings.database_url)
        raise SystemExit(_fail("database-unusable",
                               f"cannot open the database {where}: {reason}")) from None


def _redacted(url: str) -> str:
    """A database URL without its password, for error messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split(":", 1)[0] + ":…"


def _runtime(args: argparse.Namespace) -> Runtime:
    return _open(_settings(args))


def cmd_create_operator(args: argparse.Namespace) -> int:
    """Create an operator and print its credentials (the secret is shown only now)."""
    from kagiya.server import admin

    start = _time(args.contract_start) if args.contract_start else int(time.time())
    end = _time(args.contract_end) if args.contract_end else start + 365 * 86400
    rt = _runtime(args)
    try:
        new = admin.create_operator(rt, args.name, args.quota, start, end)
    except admin.AdminError as exc:
        return _fail(exc.code, str(exc))
    print(
        json.dumps(
            {
                "operator_id": new.operator_id,
                "client_id": new.client_id,
                "client_secret": new.client_secret,
            },
            indent=2,
        )
    )
    print("store the client secret now: it is not shown again", file=sys.stderr)
    return 0


def _simple(fn_name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from kagiya.server import admin

        rt = _runtime(args)
        try:
            if fn_name == "list":
                print(json.dumps(admin.list_operators(rt), indent=2))
            elif fn_name == "suspend":
                print(admin.set_operator_status(rt, args.operator, admin.SUSPENDED))
            elif fn_name == "resume":
                print(admin.set_operator_status(rt, args.operator, admin.ACTIVE))
            elif fn_name == "quota":
                admin.set_quota(rt, args.operator, args.quota)
            elif fn_name == "rotate":
                print(admin.rotate_issuer_key(rt, stage=args.stage))
            elif fn_name == "purge":
                from kagiya.server.housekeeping import purge

                print(json.dumps(purge(rt), indent=2))
            elif fn_name == "contract-ends":
                from kagiya.server.web import contract_end

                print(json.dumps(contract_end.run(rt).as_dict(), indent=2))
            elif fn_name == "time-hwm":
                from kagiya.server import timeauth
                from kagiya.server.db import transaction

                with transaction(rt.sessions) as s:
                    print(json.dumps({"cleared": timeauth.reset(s)}))
            elif fn_name == "audit":
                for entry in admin.audit_entries(rt, args.operator, args.limit):
                    print(json.dumps(entry))
            elif fn_name == "end":
                if not args.yes:
                    return _fail("confirmation-needed",
                                 "end-contract deletes all of the operator's data; add --yes")
                updates: dict[str, str] = {}
                deleted = admin.end_contract(rt, args.operator, updates)
                # the decommission updates exist only here now: carry each to its vehicle
                print(json.dumps({"deleted": deleted, "decommission_updates": updates},
                                 indent=2))
        except admin.AdminError as exc:
            return _fail(exc.code, str(exc))
        finally:
            rt.close()
        return 0

    return handler


def _help(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (default: SQLite in the data dir; or $KAGIYA_DB_URL)")
    p.add_argument(
        "--data-dir", help="data directory (default ~/.kagiya/server or $KAGIYA_DATA_DIR)"
    )


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``run`` and ``admin`` sub-commands to the ``kagiya server`` parser."""
    sub = parser.add_subparsers(dest="server_cmd", metavar="COMMAND")
    parser.set_defaults(handler=lambda _a: _help(parser))

    run = sub.add_parser("run", help="run the key server (HTTP)")
    _common(run)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--workers", type=int, default=1, help="processes (share the database)")
    run.add_argument("--log-level", default="info")
    run.add_argument("--access-log", action="store_true", help="log every request line")
    run.set_defaults(handler=cmd_run)

    oa = sub.add_parser("openapi", help="print the OpenAPI schema (docs/openapi.json)")
    oa.set_defaults(handler=cmd_openapi)

    adm = sub.add_parser("admin", help="service-admin actions (no HTTP surface)")
    asub = adm.add_subparsers(dest="admin_cmd", metavar="ACTION")
    adm.set_defaults(handler=lambda _a: _help(adm))

    p = asub.add_parser("create-operator", help="create an operator; prints its client secret once")
    _common(p)
    p.add_argument("--name", required=True)
    p.add_argument("--quota", type=int, required=True, help="maximum number of user IDs")
    p.add_argument("--contract-start", help="unix seconds or ISO date (default now)")
    p.add_argument("--contract-end", help="unix seconds or ISO date (default start + 365 days)")
    p.set_defaults(handler=cmd_create_operator)

    p = asub.add_parser("list-operators", help="operators, status and quota use")
    _common(p)
    p.set_defaults(handler=_simple("list"))

    for name, key, help_text in (
        ("suspend-operator", "suspend", "suspend an operator"),
        ("resume-operator", "resume", "resume an operator"),
    ):
        p = asub.add_parser(name, help=help_text)
        _common(p)
        p.add_argument("operator", help="operator ID or client ID")
        p.set_defaults(handler=_simple(key))

    p = asub.add_parser("set-quota", help="change an operator's user-ID quota")
    _common(p)
    p.add_argument("operator")
    p.add_argument("quota", type=int)
    p.set_defaults(handler=_simple("quota"))

    p = asub.add_parser("rotate-issuer-key", help="rotate the issuer signing key")
    _common(p)
    p.add_argument(
        "--stage",
        action="store_true",
        help="only publish the next key (for pre-installing on locks)",
    )
    p.set_defaults(handler=_simple("rotate"))

    p = asub.add_parser("reset-time-hwm", help="forget the newest signed time (after a clock "
                        "that ran ahead was corrected; docs/server.md)")
    _common(p)
    p.set_defaults(handler=_simple("time-hwm"))

    p = asub.add_parser("end-contract", help="delete all data of an operator and the operator")
    _common(p)
    p.add_argument("operator")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.set_defaults(handler=_simple("end"))

    p = asub.add_parser(
        "purge", help="delete expired keys, tokens, codes and counters now (the server does it too)"
    )
    _common(p)
    p.set_defaults(handler=_simple("purge"))

    p = asub.add_parser(
        "contract-ends", help="end the My Page accounts whose contract ended a grace period "
        "ago, notify those whose contract just ended (the server does it too)")
    _common(p)
    p.set_defaults(handler=_simple("contract-ends"))

    p = asub.add_parser("audit", help="print audit entries (JSON lines)")
    _common(p)
    p.add_argument("--operator")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(handler=_simple("audit"))
