"""How big is the revocation update for a lock with 10,000 revoked keys (protocol §7)?

Ours: the update the key server really hands a phone after 10,000 keys of one lock were
cancelled (in batches of 500, as cancellations come): listed keys up to 64, the rest covered
by the lock's generation floor (``kagiya.server.issuance.revoke_lock``). Baseline, built in
the same run from the same keys: the v1 design, a full snapshot listing every revoked key
``[[cti, exp]…]`` in one signed object. The lock takes one reassembled message of at most
``MAX_MESSAGE`` bytes, so the baseline cannot reach it at all.

Used by bench/server.py (figures on its last line); not run on its own by ``make bench``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from kagiya.sdk import cbor, cose, messages
from kagiya.sdk.keys import IssuerKey, LockIdentity
from kagiya.sdk.protocol import CT_REVOCATION, MAX_MESSAGE, Claim
from kagiya.server import admin
from kagiya.server.app import serving_app
from kagiya.server.client import OperatorClient, PhoneClient, new_device_key
from kagiya.server.config import Settings
from kagiya.server.db import transaction
from kagiya.server.issuance import revoke_where
from kagiya.server.models import IssuedKey, KeyRequest, Lock
from kagiya.server.runtime import Runtime
from sqlalchemy import select

REVOKED = 10_000
BATCH = 500
DAY = 86400


@dataclass(frozen=True)
class UpdateSize:
    """Bytes of one REVOCATION message carrying the update: ours and the full-list baseline."""

    ours: int
    baseline: int

    @property
    def fits(self) -> bool:
        """Our update fits the lock's message limit."""
        return self.ours <= MAX_MESSAGE


def _message(update: bytes) -> int:
    return len(messages.encode(messages.RevocationMessage(update), size_limit=False))


def measure(data_dir: Path) -> UpdateSize:
    """Revoke ``REVOKED`` keys of one lock on a fresh SQLite store in ``data_dir``."""
    rt = Runtime(Settings(data_dir=data_dir, db_url=f"sqlite:///{data_dir / 'rev.db'}",
                          token_rate_per_min=1000, enroll_rate_per_min=1000))
    http = TestClient(serving_app(rt), raise_server_exceptions=False)
    try:
        now = int(time.time())
        new = admin.create_operator(rt, "Bench", 100, now - DAY, now + 400 * DAY)
        op = OperatorClient.login("", new.client_id, new.client_secret, http=http)
        op.register_simulated_lock(LockIdentity.generate(), "REV-0001")
        uid = op.create_user()["user_id"]
        rid = op.create_key_request(uid, "REV-0001", now - 60, now + 30 * DAY,
                                    ["doors"])["request_id"]
        phone = PhoneClient.enroll("", op.enrollment_code(uid)["code"], new_device_key(),
                                   http=http)
        phone.sync()
        ctis = [secrets.token_bytes(16) for _ in range(REVOKED)]
        exps = [now + 5 * DAY + i for i in range(REVOKED)]
        with transaction(rt.sessions) as s:
            lk = s.scalars(select(Lock).where(Lock.lock_id == "REV-0001")).one()
            req = s.get(KeyRequest, rid)
            assert req is not None
            s.add_all(IssuedKey(cti=c, operator_id=lk.operator_id, request_id=rid,
                                phone_id=phone.phone_id, lock_pk=lk.pk,
                                request_version=req.version, nbf=now - 60, exp=e,
                                iat=now - 60, kid="00", generation=lk.key_generation,
                                credential=b"", revoked=False)
                      for c, e in zip(ctis, exps, strict=True))
        for at in range(0, REVOKED, BATCH):
            with transaction(rt.sessions) as s:
                revoke_where(s, now, IssuedKey.cti.in_(ctis[at:at + BATCH]))
        (upd,) = [u for u in phone.sync().revocations if u.lock_id == "REV-0001"]
        ours = _message(upd.update)
    finally:
        http.close()
        rt.close()
    issuer = IssuerKey.generate()
    payload = cbor.dumps({Claim.AUD: "REV-0001", Claim.IAT: now, Claim.KGY_RV_VERSION: 2,
                          Claim.KGY_RV_ENTRIES: [[c, e] for c, e in zip(ctis, exps,
                                                                          strict=True)]})
    full = cose.sign1(issuer, {cose.HDR_ALG: cose.ALG_EDDSA,
                               cose.HDR_CONTENT_TYPE: CT_REVOCATION,
                               cose.HDR_KID: issuer.kid}, payload)
    return UpdateSize(ours, _message(full))
