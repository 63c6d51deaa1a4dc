"""Targets of the scenario suite: the virtual lock (``sim``) and a real board (``hw``).

A target gives the scenarios a provisioned lock, an issuer that the lock trusts, keys,
signed time statements and revocation updates, and phones (bleak backends). The ``sim``
target adds what only a bench can do: power cycles, the vehicle's "moving" input, RTC
offsets and link faults.

The ``hw`` target is a board on a serial port, deployed and provisioned with the
installer tools, reached through the host's real BLE adapter (bleak's platform backend).
It needs (docs/hil.md): ``KAGIYA_HIL_PORT`` (serial port), ``KAGIYA_HIL_LOCK_ID``,
``KAGIYA_HIL_ISSUER_KEY`` (file with the issuer's Ed25519 private key, hex, whose public
key was installed as a trust anchor) and ``KAGIYA_HIL_LOCK_KEYS`` (the lock's public keys
as printed by ``kagiya install provision``, JSON file).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kagiya.hil.sim import HIL_OPERATOR, VirtualLock, deploy, provision
from kagiya.sdk.ble import Backend
from kagiya.sdk.client_keys import DigitalKey
from kagiya.sdk.credential import Permission, issue_credential
from kagiya.sdk.keys import IssuerKey
from kagiya.sdk.signed import RevocationUpdate, sign_revocation_update, sign_time_statement

ALL = Permission.DOORS | Permission.DRIVE | Permission.LOG


@dataclass
class Target:
    """A provisioned lock the scenarios run against."""

    lock_id: str
    issuer: IssuerKey
    sign_public: bytes
    kex_public: bytes
    sim: VirtualLock | None = None
    phones: dict[str, Backend] = field(default_factory=dict)
    operator: str = HIL_OPERATOR  # the operator the lock was provisioned for

    def key(self, *, perm: Permission = ALL, nbf: int | None = None, exp: int | None = None,
            aud: str | None = None, issuer: IssuerKey | None = None,
            sub: str = "driver-1") -> DigitalKey:
        """Issue a key for this lock (valid for a day from an hour ago by default)."""
        now = int(time.time())
        nbf = now - 3600 if nbf is None else nbf
        exp = now + 86400 if exp is None else exp
        k = issue_credential(issuer or self.issuer, iss="kagiya-hil", sub=sub,
                             aud=aud or self.lock_id, nbf=nbf, exp=exp, iat=nbf,
                             permissions=perm, request_version=1,
                             lock_kex_public=self.kex_public, operator=self.operator)
        return DigitalKey(k.credential, k.cti, k.secret, aud or self.lock_id, k.claims)

    def time_statement(self, t: int | None = None) -> bytes:
        """A time statement signed by the trusted issuer."""
        return sign_time_statement(self.issuer, int(time.time()) if t is None else t)

    async def fresh_time(self, lock_id: str, nonce: bytes) -> bytes:
        """A fresh time statement for ``lock_id``'s ``nonce`` (what the key server's
        ``GET /v1/time?lock_id=&nonce=`` returns); a ``Wallet.fresh_time`` provider."""
        return sign_time_statement(self.issuer, int(time.time()), lock_id=lock_id,
                                   nonce=nonce)

    def revocation(self, version: int, revoked: list[DigitalKey]) -> bytes:
        """A revocation update for this lock revoking ``revoked``."""
        entries = [(k.cti, k.claims.exp if k.claims else int(time.time()) + 86400)
                   for k in revoked]
        return sign_revocation_update(
            self.issuer, RevocationUpdate(self.lock_id, version, int(time.time()), entries,
                                          operator=self.operator))

    def phone(self, name: str = "phone", *, mtu: int = 517) -> Backend:
        """A phone: its own BLE radio (sim) or the host's adapter (hardware)."""
        if self.sim is None:
            return Backend()
        from kagiya.hil.bumble_backend import bumble_backend

        return Backend(*bumble_backend(self.sim.transport, mtu=mtu, adapter=name))

    def close(self) -> None:
        """Stop the virtual lock (nothing to do on hardware)."""
        if self.sim is not None:
            self.sim.stop()


def sim_target(root: Path, lock_id: str = "KGY-HIL-1") -> Target:
    """Deploy, provision and start a virtual lock in ``root``."""
    issuer = IssuerKey.generate()
    deploy(root)
    info = provision(root, lock_id, [issuer.public_bytes()])
    sim = VirtualLock(root).start()
    return Target(lock_id, issuer, bytes.fromhex(info["sign_public"]),
                  bytes.fromhex(info["kex_public"]), sim)


def hardware_target() -> Target | str:
    """The real-hardware target, or the reason it cannot run here."""
    port = os.environ.get("KAGIYA_HIL_PORT")
    if not port:
        return "no board attached: set KAGIYA_HIL_PORT to the lock's serial port (docs/hil.md)"
    if not Path(port).exists():
        return f"serial port {port} does not exist (board unplugged?)"
    try:
        import bleak  # noqa: F401
    except ImportError:  # pragma: no cover - bleak is a dependency
        return "bleak is not installed"
    missing = [v for v in ("KAGIYA_HIL_LOCK_ID", "KAGIYA_HIL_ISSUER_KEY", "KAGIYA_HIL_LOCK_KEYS")
               if not os.environ.get(v)]
    if missing:
        return "hardware target needs " + ", ".join(missing) + " (docs/hil.md)"
    issuer = IssuerKey.from_private_bytes(
        bytes.fromhex(Path(os.environ["KAGIYA_HIL_ISSUER_KEY"]).read_text().strip()))
    keys: dict[str, Any] = json.loads(Path(os.environ["KAGIYA_HIL_LOCK_KEYS"]).read_text())
    return Target(os.environ["KAGIYA_HIL_LOCK_ID"], issuer,
                  bytes.fromhex(keys["sign_public"]), bytes.fromhex(keys["kex_public"]),
                  operator=keys.get("operator", HIL_OPERATOR))
