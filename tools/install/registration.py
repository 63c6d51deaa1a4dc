"""``kagiya install register``: register the provisioned lock with the key server.

Idempotent: a lock the server already knows with the same identity key is reported as
registered. The board remembers its last successful registration in ``/kagiya_install.json``
(public data only), so a re-run with an installer token — which may not read registrations
back — still recognises its own earlier registration. A lock ID registered with another
key (another operator's lock, or this lock before a forced re-provisioning) is refused;
with ``force``, this operator's registration gets the new identity keys
(``PUT /v1/locks/{id}/identity``): its key requests and logs are kept.
"""

from __future__ import annotations

import json
from typing import Any

from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.keyserver import KeyServer
from kagiya.tools.install.report import Reporter

MARKER = "/kagiya_install.json"


def _read_marker(board: Board) -> dict[str, Any] | None:
    result = board.call(
        "try:\n"
        f" with open({MARKER!r}) as _f:\n  _m = json.loads(_f.read())\n"
        "except (OSError, ValueError):\n _m = None\n"
        "@@RESULT@@(json.dumps(_m))", what="reading the registration record")
    return result if isinstance(result, dict) else None


def _write_marker(board: Board, record: dict[str, Any]) -> None:
    text = json.dumps(record, sort_keys=True)
    board.exec(f"with open({MARKER + '.new'!r}, 'w') as _f:\n _f.write({text!r})\n"
               "import os\n"
               f"os.rename({MARKER + '.new'!r}, {MARKER!r})",
               what="saving the registration record")


def register(board: Board, server: KeyServer, ident: dict[str, Any], rep: Reporter, *,
             vehicle_label: str | None = None, force: bool = False) -> dict[str, Any]:
    """Register ``ident`` (lock_id, sign_public, kex_public) under the token's operator."""
    lock_id = str(ident["lock_id"])
    record = {"server": server.base_url, "lock_id": lock_id,
              "sign_public": ident["sign_public"], "kex_public": ident["kex_public"]}
    status, body = server.register_lock(lock_id, ident["sign_public"], ident["kex_public"],
                                        vehicle_label)
    replaced = False
    if status == 409:
        existing = server.get_lock(lock_id)
        if existing is not None:  # visible: it is this operator's
            same = (existing.get("sign_public") == ident["sign_public"]
                    and existing.get("kex_public") == ident["kex_public"])
            if not same and not force:
                raise InstallError(
                    "lock-registered",
                    f"lock {lock_id} is registered with another identity key",
                    "this board was re-provisioned: pass --force to register its new "
                    "identity (key requests and logs are kept)",
                )
            status, body = 200, existing
            if not same:
                body = server.replace_identity(lock_id, ident["sign_public"],
                                               ident["kex_public"])
                replaced = True
        elif _read_marker(board) == record:
            status, body = 200, {"lock_id": lock_id}
        elif force:  # an installer token cannot read the lock: the server decides
            status = 200
            body = server.replace_identity(lock_id, ident["sign_public"], ident["kex_public"])
            replaced = True
        else:
            raise InstallError(
                "lock-taken",
                f"lock ID {lock_id} is already registered to another operator "
                "(or to this one with another key)",
                "choose another --lock-id; if this is your re-provisioned lock pass --force",
            )
    _write_marker(board, record)
    result = {"lock_id": lock_id, "created": status == 201, "replaced": replaced,
              "server": server.base_url,
              "vehicle_label": body.get("vehicle_label", vehicle_label or "")}
    summary = ("registered" if status == 201 and not replaced else
               "registration replaced" if replaced else "already registered")
    rep.done("register", result, f"lock {lock_id} {summary} on {server.base_url}")
    return result
