"""Maintenance authorisations for installers (issue #18, docs/installer.md).

A locked-down lock re-opens its serial REPL, or lets its trust anchors change, only for a
maintenance authorisation signed by one of its trust anchors (the server's active issuer
key) that answers the lock's current one-use challenge. The server signs one for an
installer (or operator) token of the lock's operator: bound to the lock ID and the
challenge, short-lived (at most ``MAINTENANCE_MAX_LIFETIME_S``) and audited. Another
operator's lock, like an unknown one, is 404 ``not-found``: the answer never tells whether
the ID exists elsewhere. One use is the lock's part: it consumes its challenge with the
first authorisation presented.
"""

from __future__ import annotations

import hashlib

from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.maintenance import sign_maintenance
from kagiya.sdk.protocol import MAINTENANCE_MAX_LIFETIME_S
from kagiya.server.models import ACTIVE
from kagiya.server.problems import ApiError
from kagiya.server.schemas import MaintenanceIn, MaintenanceOut
from kagiya.server.services.context import Ctx
from kagiya.server.services.lookup import get_lock

MAX_INSTALLER_TEXT = 64  # the lock's longest text string (protocol §2 limits)


def authorise(c: Ctx, signer: IssuerKey, lock_id: str, body: MaintenanceIn) -> MaintenanceOut:
    """Sign a maintenance authorisation for the caller's lock ``lock_id``.

    404 ``not-found``: not the caller's lock; 409 ``lock-suspended``: a suspended lock gets
    none (the operator resumes it first); 422 ``invalid-maintenance-scope``: a scope named
    twice."""
    lk = get_lock(c, lock_id)
    if lk.status != ACTIVE:
        raise ApiError(409, "lock-suspended",
                       f"lock {lock_id} is suspended: resume it before maintenance")
    scope = list(body.scope)
    if len(set(scope)) != len(scope):
        raise ApiError(422, "invalid-maintenance-scope", "each scope may be named once")
    ttl = min(body.ttl_s, MAINTENANCE_MAX_LIFETIME_S)
    installer = c.p.actor[:MAX_INSTALLER_TEXT]
    nonce = bytes.fromhex(body.nonce)
    auth = sign_maintenance(signer, lock_id, nonce, scope, installer, c.now, ttl,
                            operator=c.operator_id)
    c.audit(
        "lock.maintenance-authorise",
        lock_id,
        scope=scope,
        exp=c.now + ttl,
        challenge_sha256=hashlib.sha256(nonce).hexdigest()[:16],
    )
    return MaintenanceOut(lock_id=lock_id, authorisation=auth.hex(), scope=scope,
                          installer=installer, iat=c.now, exp=c.now + ttl)
