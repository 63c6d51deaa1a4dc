"""``kagiya install maintenance``: open an authorised maintenance on a lock (issue #18).

The installer's laptop asks the lock for its one-use challenge, has the key server sign a
maintenance authorisation for it (installer token of the lock's operator: ``POST
/v1/install/locks/{id}/maintenance``) and hands it to the lock, which checks it against its
trust anchors, logs it (event 48, naming the installer's token) and opens maintenance:

* a **locked-down** lock speaks only the maintenance exchange on its serial line
  (:func:`kagiya.tools.install.lockdown.open_maintenance`); on success its main loop stops
  and the raw REPL (mpremote, ``kagiya install deploy`` …) works until the next power-on;
* a lock that is **not** locked down gets the same exchange over its REPL
  (``provisioning.maintenance_challenge`` / ``open_maintenance``): that is what changing
  its trust anchors (scope ``anchors``) needs.

``anchors(board, …)`` adds or removes trust anchors inside such a maintenance.
"""

from __future__ import annotations

import json
from typing import Any

from kagiya.sdk.protocol import MAINTENANCE_SCOPES
from kagiya.tools.install import lockdown, provision
from kagiya.tools.install.connection import Board, connect
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.keyserver import KeyServer
from kagiya.tools.install.report import Reporter

SCOPES = MAINTENANCE_SCOPES
SERIAL_CHALLENGE_S = 6.0  # a locked-down lock answers within this; else try the REPL


class _Authoriser:
    """Fetches the authorisation from the key server for the lock that asked."""

    def __init__(self, server: KeyServer, scope: list[str], ttl_s: int,
                 expected_lock_id: str | None) -> None:
        self.server = server
        self.scope = scope
        self.ttl_s = ttl_s
        self.expected = expected_lock_id
        self.lock_id = ""

    def __call__(self, nonce: bytes, lock_id: str) -> bytes:
        if self.expected and lock_id != self.expected:
            raise InstallError(
                "wrong-lock", f"the lock on this cable is {lock_id}, not {self.expected}",
                "check that you are at the right vehicle (or drop --lock-id)")
        self.lock_id = lock_id
        return self.server.maintenance_authorisation(lock_id, nonce, self.scope, self.ttl_s)


def _refused(code: str) -> InstallError:
    return InstallError("maintenance-refused", f"the lock refused the authorisation: {code}",
                        "ask the key server for a new authorisation (they are one-use and "
                        "short-lived) and check the lock ID and its trust anchors")


def open_over_repl(board: Board, authorise: _Authoriser) -> dict[str, Any]:
    """The maintenance exchange over the REPL of a lock that is not locked down."""
    ident = provision.read_identity(board)
    got = board.call("import kagiya_lock.provisioning as _p\n"
                     "@@RESULT@@(json.dumps(_p.maintenance_challenge()))",
                     what="asking the lock for a challenge")
    if ident is None or not isinstance(got, dict) or "nonce" not in got:
        raise InstallError("not-provisioned", "the lock is not provisioned",
                           "run `kagiya install provision` first")
    auth = authorise(bytes.fromhex(str(got["nonce"])), str(ident["lock_id"]))
    out = board.call("import kagiya_lock.provisioning as _p\n"
                     f"@@RESULT@@(json.dumps(_p.open_maintenance({auth.hex()!r})))",
                     what="opening maintenance")
    if not isinstance(out, dict) or not out.get("maintenance"):
        raise _refused(str(out.get("error") if isinstance(out, dict) else out))
    return {"maintenance": True, "until": int(out["until"])}


def open_maintenance(port: str, server: KeyServer, rep: Reporter, *, scope: list[str],
                     ttl_s: int = 600, lock_id: str | None = None,
                     timeout: float = 10.0, repl_fallback: bool = True) -> dict[str, Any]:
    """Open an authorised maintenance on the lock at ``port`` (locked down or not).

    ``repl_fallback=False``: only a locked-down lock (the serial exchange) gets one; a lock
    whose REPL answers is left as it is (``{"maintenance": False}``)."""
    if not scope or any(s not in SCOPES for s in scope):
        raise InstallError("usage", f"--scope must be one of {', '.join(SCOPES)}",
                           "e.g. --scope repl --scope anchors")
    authorise = _Authoriser(server, sorted(set(scope), key=SCOPES.index), ttl_s, lock_id)
    try:
        out = lockdown.open_maintenance(port, authorise, timeout=max(timeout, 20.0),
                                        challenge_timeout=SERIAL_CHALLENGE_S)
        out["over"] = "serial"
    except InstallError as err:
        if err.code != "board-not-responding":
            raise
        if not repl_fallback:
            return {"maintenance": False}
        board = connect(port, timeout=timeout)  # not locked down: the REPL answers
        try:
            out = open_over_repl(board, authorise)
        finally:
            board.close()
        out["over"] = "repl"
    out.update(lock_id=authorise.lock_id, scope=authorise.scope)
    rep.done("maintenance", out,
             f"maintenance open on {authorise.lock_id} ({', '.join(authorise.scope)}) until "
             f"{out['until']} (unix time); the serial REPL stays open until the next "
             "power-on")
    return out


def change_anchors(board: Board, rep: Reporter, *, add: list[str],
                   remove: list[str]) -> dict[str, Any]:
    """Add, then remove, trust anchors (hex Ed25519 keys) during a maintenance with scope
    ``anchors``; the lock logs each change (event 50)."""
    result: dict[str, Any] = {}
    for verb, keys in (("add_anchor", add), ("remove_anchor", remove)):
        for key in keys:
            out = board.call("import kagiya_lock.provisioning as _p\n"
                             f"@@RESULT@@(json.dumps(_p.{verb}({json.dumps(key)})))",
                             what="changing the trust anchors")
            if not isinstance(out, dict) or "anchors" not in out:
                code = out.get("error") if isinstance(out, dict) else out
                if code == "MAINTENANCE_REQUIRED":
                    raise InstallError(
                        "maintenance-refused",
                        "changing trust anchors needs an open maintenance with scope "
                        "anchors", "run `kagiya install maintenance --scope anchors` first")
                raise InstallError("provision-refused",
                                   f"the lock refused {verb.replace('_', ' ')}: {code}",
                                   "check the key (64 hex digits); a lock keeps 1-4 anchors")
            result = {"anchors": out["anchors"]}
    rep.done("anchors", result, f"the lock trusts {len(result.get('anchors', []))} issuer "
             "key(s)")
    return result
