"""``kagiya install uplink``: give a connected lock its broker account (docs/uplink.md).

The key server creates the lock's broker account (``POST /v1/locks/{id}/uplink``, an
installer or operator token); the password goes straight onto the board, into the lock's
``uplink`` state object, together with the broker's address, its CA certificate (DER) and
the TLS server name. The password is never printed, logged or kept on the laptop. The lock
must be provisioned and registered, and the firmware deployed with ``--connected``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from kagiya.sdk.protocol import HEARTBEAT_S, UPLINK_CONFIG_KEYS
from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.keyserver import KeyServer
from kagiya.tools.install.report import Reporter


def load_ca(path: Path) -> bytes:
    """The broker CA certificate (PEM file) as DER, what the lock verifies against."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)
    except (OSError, ValueError) as exc:
        raise InstallError("usage", f"cannot read the broker CA certificate {path}",
                           "pass --mqtt-ca with the PEM file of the broker's CA") from exc


def provision_uplink(board: Board, server: KeyServer, lock_id: str, ca_der: bytes,
                     rep: Reporter, *, host: str | None = None,
                     server_name: str | None = None,
                     heartbeat_s: int = HEARTBEAT_S) -> dict[str, Any]:
    """Create the lock's broker account and store it on the board; returns what was set
    (never the password)."""
    account = server._call(
        f"creating the broker account of {lock_id}",
        lambda: server.installer._request("POST", f"/v1/locks/{lock_id}/uplink"))
    broker = host or str(account["host"])
    name = server_name or broker
    k = UPLINK_CONFIG_KEYS
    cfg = (f"{{{k['host']}: {broker!r}, {k['port']}: {int(account['port'])}, "
           f"{k['password']}: {str(account['password'])!r}, "
           f"{k['ca']}: bytes.fromhex({ca_der.hex()!r}), {k['server_name']}: {name!r}, "
           f"{k['heartbeat_s']}: {int(heartbeat_s)}}}")
    board.call("from kagiya_lock import hal as _h\nfrom kagiya_lock.store import Store as _S\n"
               f"_S(_h.default().state_dir).save('uplink', {cfg})\n"
               "@@RESULT@@(json.dumps({'ok': True}))",
               what="storing the uplink settings on the lock")
    result = {"lock_id": lock_id, "host": broker, "port": int(account["port"]),
              "server_name": name, "heartbeat_s": heartbeat_s}
    rep.done("uplink", result, f"lock {lock_id} can reach the broker {broker}:"
             f"{account['port']} (password stored on the lock only)")
    return result
