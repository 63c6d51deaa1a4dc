"""``kagiya install decommission``: retire a lock at the end of its service (issue #18 §3).

1. a locked-down lock first gets an authorised maintenance (its serial REPL opens:
   :mod:`kagiya.tools.install.maintenance`);
2. the key server retires the lock ID (``POST /v1/locks/{id}/decommission``: every key
   revoked, key requests cancelled, the ID kept as a tombstone) and signs its
   decommission update (protocol §7a; an installer token only for a lock not in service);
3. the lock applies the update (``provisioning.decommission``): it refuses every key with
   ``DECOMMISSIONED`` and forgets its key cache;
4. with ``erase``, the board's state is erased (``provisioning.erase``: identity, anchors,
   cache, revocations, clock, log, lockdown) and the installer's record
   ``/kagiya_install.json`` removed, so the next provisioning starts from a clean board.

Every step can run again: a retired lock ID gets its update again, an applied update is
applied once, an erased board stays erased.
"""

from __future__ import annotations

from typing import Any

import httpx
from kagiya.server.client import ApiProblem
from kagiya.tools.install import provision
from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.keyserver import KeyServer
from kagiya.tools.install.report import Reporter


def retire_on_server(server: KeyServer, lock_id: str) -> str:
    """Retire ``lock_id`` on the key server; returns its decommission update (hex)."""
    try:
        out = server.installer.decommission_lock(lock_id)
    except ApiProblem as exc:
        if exc.code == "lock-in-service":
            raise InstallError(
                "server-refused",
                f"lock {lock_id} is in service: an installer token cannot decommission it",
                "ask the operator to decommission it (or to end its key requests), then run "
                "the same command again") from exc
        if exc.status == 404:
            raise InstallError(
                "server-refused",
                f"the key server has no lock {lock_id} for this token's operator",
                "check that this is the right vehicle and that the token is from its "
                "operator") from exc
        raise KeyServer._fail(exc, f"decommissioning {lock_id}") from exc
    except httpx.HTTPError as exc:
        raise InstallError("server-unreachable", f"cannot reach the key server at "
                           f"{server.base_url}", "check --server and the network, then run "
                           "the same command again") from exc
    return str(out["decommission_update"])


def _board_call(board: Board, call: str, what: str) -> dict[str, Any]:
    out = board.call(f"import kagiya_lock.provisioning as _p\n@@RESULT@@(json.dumps(_p.{call}))",
                     what=what)
    if not isinstance(out, dict):
        raise InstallError("board-error", f"unexpected answer from the lock while {what}",
                           "run the same command again")
    return out


def decommission(board: Board, server: KeyServer, rep: Reporter, *,
                 lock_id: str | None = None, erase: bool = False) -> dict[str, Any]:
    """Retire the lock on the server, apply the signed update on the lock, then erase it."""
    ident = provision.read_identity(board)
    if ident is None:
        if erase:
            out = _board_call(board, "erase()", "erasing the board")
            rep.done("decommission", {"erased": True, "lock_id": None},
                     "the board holds no lock identity (erased)")
            return {"erased": bool(out.get("erased"))}
        raise InstallError("not-provisioned", "the board holds no lock identity",
                           "nothing to decommission (pass --erase to wipe it anyway)")
    found = str(ident["lock_id"])
    if lock_id and found != lock_id:
        raise InstallError("wrong-lock", f"the lock on this cable is {found}, not {lock_id}",
                           "check that you are at the right vehicle")
    update = retire_on_server(server, found)
    applied = _board_call(board, f"decommission({update!r})", "applying the decommission")
    if not applied.get("decommissioned"):
        raise InstallError("provision-refused",
                           f"the lock refused the decommission update: {applied.get('error')}",
                           "check that the lock was provisioned by this key server for this "
                           "operator")
    result: dict[str, Any] = {"lock_id": found, "retired": True, "decommissioned": True,
                              "erased": False}
    if erase:
        wiped = _board_call(board, "erase()", "erasing the lock's state")
        if not wiped.get("erased"):
            raise InstallError("board-error", f"the lock refused to erase: {wiped.get('error')}",
                               "run the same command again")
        board.exec("import os\ntry:\n os.remove('/kagiya_install.json')\n"
                   "except OSError:\n pass\n", what="removing the installation record")
        result["erased"] = True
    rep.done("decommission", result,
             f"{found} retired on the key server; the lock refuses every key"
             + ("; its identity, keys, cache and log are erased" if erase else ""))
    return result
