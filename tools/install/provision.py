"""``kagiya install provision``: give the lock its identity, trust anchors and clock.

Everything happens on the board through ``kagiya_lock.provisioning`` (docs/firmware.md):
the board generates its Ed25519 and X25519 identity keys itself; only the public halves
come back. The lock is bound to one operator (docs/protocol.md §5): it refuses keys and
updates of any other. Re-running on a lock already provisioned with the same lock ID,
operator and anchors changes nothing but the clock (idempotent); anything else is refused
unless ``force``, which wipes the lock's state and generates a new identity (its server
registration is replaced only by ``register --replace LOCK_ID``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from kagiya.sdk.protocol import LOCK_ID_PATTERN
from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.report import Reporter

LOCK_ID = re.compile(f"^{LOCK_ID_PATTERN}$")  # protocol §2
_HEX32 = re.compile(r"^[0-9a-f]{64}$")


def check_lock_id(lock_id: str) -> str:
    """Return ``lock_id`` if it follows protocol §2, else raise a usage error."""
    if not LOCK_ID.match(lock_id or ""):
        raise InstallError("usage", f"invalid lock ID {lock_id!r}",
                           "a lock ID is 4-20 characters from A-Z, 0-9 and '-'")
    return lock_id


def check_anchors(anchors: list[str]) -> list[str]:
    """Normalise issuer public keys (hex); 1-4 of them, 32 bytes each."""
    out = [a.strip().lower() for a in anchors]
    if not 1 <= len(out) <= 4 or not all(_HEX32.match(a) for a in out):
        raise InstallError("usage", "1 to 4 trust anchors (32-byte Ed25519 public keys, hex) "
                           "are required", "pass --server to fetch them, or --anchor HEX")
    return out


def _locked_down() -> InstallError:
    return InstallError("locked-down", "the lock is locked down: it refuses provisioning",
                        "run `kagiya install maintenance --scope repl --scope provision` "
                        "first (docs/installer.md, 'Lockdown and maintenance')")


def read_identity(board: Board) -> dict[str, Any] | None:
    """The lock's public identity, or None when it is not provisioned."""
    result = board.call(
        "import kagiya_lock.provisioning as _p\n@@RESULT@@(json.dumps(_p.identity()))",
        what="reading the lock identity")
    return result if isinstance(result, dict) else None


def _public(ident: dict[str, Any]) -> dict[str, Any]:
    return {k: ident[k] for k in ("lock_id", "operator", "sign_public", "kex_public")
            if k in ident}


def provision(board: Board, rep: Reporter, *, lock_id: str | None, anchors: list[str],
              time_statement: bytes | None, force: bool = False,
              now: int | None = None, operator: str | None = None) -> dict[str, Any]:
    """Provision the lock for ``operator`` (or confirm it already is); returns the public
    identity."""
    now = int(time.time()) if now is None else now
    current = read_identity(board)
    if lock_id is None:
        if current is None:
            raise InstallError("usage", "the lock is not provisioned and no lock ID was given",
                               "pass --lock-id (4-20 characters A-Z 0-9 -)")
        lock_id = str(current["lock_id"])
    check_lock_id(lock_id)
    anchors = check_anchors(anchors) if anchors else []
    if current is not None and not force:
        same_id = current.get("lock_id") == lock_id
        same_anchors = not anchors or sorted(current.get("anchors", [])) == sorted(anchors)
        same_op = operator is None or current.get("operator") == operator
        if not (same_id and same_anchors and same_op):
            what = (f"as {current['lock_id']}" if not same_id else
                    f"for operator {current.get('operator')}" if not same_op else
                    "with other trust anchors")
            raise InstallError(
                "already-provisioned", f"the lock is already provisioned {what}",
                "re-provisioning wipes its identity, keys and log; pass --force to do it "
                "(then register it, with --replace LOCK_ID if its ID is already registered)",
            )
        clock = board.call(f"import kagiya_lock.provisioning as _p\n"
                           f"@@RESULT@@(json.dumps(_p.set_time({now})))",
                           what="setting the lock clock")
        if not isinstance(clock, dict) or clock.get("error") == "LOCKED_DOWN":
            raise _locked_down()
        result = {**_public(current), "changed": False, "time": clock.get("time")}
        rep.done("provision", result,
                 f"already provisioned as {current['lock_id']} (identity kept); clock set")
        return result
    if not anchors:
        check_anchors(anchors)  # raises the usage error
    if not operator:
        raise InstallError("usage", "no operator for the lock",
                           "pass an installer token (it names the operator) or --operator")
    stmt = f"bytes.fromhex({time_statement.hex()!r})" if time_statement else "None"
    reply = board.call(
        "import kagiya_lock.provisioning as _p\n"
        "try:\n"
        f" _r = _p.provision({lock_id!r}, {anchors!r}, {now}, {stmt}, force={bool(force)},"
        f" operator={operator!r})\n"
        "except ValueError as _e:\n"
        " _r = {'error': 'REFUSED', 'detail': str(_e)}\n"
        "@@RESULT@@(json.dumps(_r))",
        what="provisioning (generating the identity on the board)", timeout=120)
    if not isinstance(reply, dict):
        raise InstallError("board-error", "unexpected provisioning answer from the board",
                           "run provision again")
    if reply.get("error") == "LOCKED_DOWN":
        raise _locked_down()
    if reply.get("error") == "ALREADY_PROVISIONED":
        raise InstallError("already-provisioned", "the lock is already provisioned",
                           "pass --force to re-provision it (wipes its identity and log)")
    if reply.get("error"):
        raise InstallError("provision-refused",
                           f"the lock refused provisioning: {reply.get('detail', reply['error'])}",
                           "check --lock-id, the trust anchors and the server time statement")
    result = {**_public(reply), "changed": True, "time": now, "forced": bool(force),
              "anchors": len(anchors), "time_statement": time_statement is not None}
    rep.done("provision", result,
             f"lock {reply['lock_id']} provisioned; identity key "
             f"{reply['sign_public'][:16]}… generated on the board")
    return result
