"""``kagiya install register``: register the provisioned lock with the key server.

Registration proves possession (docs/protocol.md §5): the tool asks the key server for a
one-time challenge, the board signs it over USB (naming its lock ID, its operator and its
public keys) and the server registers the lock under the token's operator only with that
proof. Idempotent: the same identity registered again is reported as already registered.

Replacing a registration is a separate, explicit action: when this operator already has
the lock ID with another identity (the board was re-provisioned, or ``--lock-id`` was
mistyped and names another working car), the tool shows what it would replace — vehicle
label and current lock key ID — and replaces it only with ``--replace LOCK_ID`` naming that
same lock ID. An installer token cannot replace the identity of a lock in service (its
phones would all lose their keys); the operator must do it.
"""

from __future__ import annotations

from typing import Any

from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.keyserver import KeyServer
from kagiya.tools.install.report import Reporter


def proof_for(board: Board, challenge: str) -> dict[str, Any]:
    """The board's registration proof over ``challenge`` (hex)."""
    reply = board.call(
        "import kagiya_lock.provisioning as _p\n"
        f"@@RESULT@@(json.dumps(_p.registration_proof({challenge!r})))",
        what="signing the registration challenge on the board")
    if not isinstance(reply, dict) or "proof" not in reply:
        raise InstallError("not-provisioned", "the lock could not sign the registration "
                           "challenge", "run `kagiya install provision` first")
    return {**reply, "challenge": challenge}


def register(board: Board, server: KeyServer, ident: dict[str, Any], rep: Reporter, *,
             vehicle_label: str | None = None, replace: str | None = None) -> dict[str, Any]:
    """Register ``ident`` (lock_id, sign_public, kex_public) under the token's operator."""
    lock_id = str(ident["lock_id"])
    proof = proof_for(board, server.challenge())
    status, body = server.register_lock(proof, vehicle_label)
    replaced = False
    if status == 409:
        label = body.get("vehicle_label") or "(no label)"
        current = body.get("lock_key_id", "?")
        if replace != lock_id:
            raise InstallError(
                "lock-registered",
                f"lock {lock_id} is already registered to a vehicle labelled {label!r} with "
                f"lock key {current}; registering this board would replace that identity "
                "and revoke every key its phones hold",
                f"check --lock-id; if this board really replaces that lock, pass "
                f"--replace {lock_id}",
            )
        body = server.replace_identity(proof_for(board, server.challenge()))
        replaced = True
        rep.say(f"replaced lock {lock_id} ({label}, lock key {current})")
    result = {"lock_id": lock_id, "created": status == 201, "replaced": replaced,
              "server": server.base_url,
              "vehicle_label": body.get("vehicle_label", vehicle_label or "")}
    summary = ("registered" if status == 201 else
               "registration replaced" if replaced else "already registered")
    rep.done("register", result, f"lock {lock_id} {summary} on {server.base_url}")
    return result
