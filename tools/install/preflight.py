"""Pre-flight: what the installer checks before it touches the board.

A wrong lock ID, a refused token or an unreachable key server is reported before deploy,
provision or registration write anything to the board (docs/installer.md, "Pre-flight"):

* the lock ID's format (protocol §2), when one is given;
* that the key server answers (``GET /v1/health``);
* with a token, that the server accepts it (``GET /v1/install/operator`` - the operator the
  lock will belong to).
"""

from __future__ import annotations

from kagiya.tools.install.keyserver import KeyServer
from kagiya.tools.install.provision import check_lock_id as _check_format
from kagiya.tools.install.report import Reporter


def check_lock_id(lock_id: str | None) -> None:
    """Refuse a malformed lock ID (usage error) - before any board or server work."""
    if lock_id is not None:
        _check_format(lock_id)


def check_server(server: KeyServer, rep: Reporter, *, token: bool) -> str | None:
    """Check that ``server`` answers and, with ``token``, accepts the token; returns the
    token's operator ID (None without a token). Raises ``server-unreachable`` /
    ``server-auth`` :class:`~kagiya.tools.install.errors.InstallError`."""
    server.health()
    operator = server.operator_id() if token else None
    rep.say(f"[green]✓[/green] pre-flight: key server {server.base_url} answers"
            + (f", token accepted (operator {operator})" if operator else ""))
    return operator
