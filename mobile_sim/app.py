"""The phone app's use cases: enroll, sync, use keys at the lock, collect and upload logs.

Offline first: everything the vehicle needs (keys with their secrets, the newest time
statement, the newest revocation update per lock) is stored at sync time; at the vehicle
the app needs no network. Logs fetched at the vehicle go to the sealed outbox and are
uploaded at the next sync. The CLI, the web UI and fleet mode all drive this class.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kagiya.phone import verify
from kagiya.phone.outbox import FlushReport, OutboxItem, PermanentRejection
from kagiya.phone.ports import (
    LockPort,
    LockState,
    Offline,
    Prover,
    ServerPort,
    ServerRefused,
    SyncBundle,
    TokenRejected,
)
from kagiya.phone.profile import Profile
from kagiya.phone.state import (
    PhoneState,
    RevocationEntry,
    StoredKey,
    perm_names,
)
from kagiya.sdk.client_keys import FreshTime
from kagiya.sdk.credential import credential_cnf
from kagiya.sdk.dpop import make_proof
from kagiya.sdk.enrollment import auth_message, enroll_message, parse_enrollment
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.i18n import N_, _
from kagiya.sdk.keywrap import new_wrapped_secret
from kagiya.sdk.protocol import Command, LogEvent, Permission

URL_FORMAT = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")
TOKEN_MARGIN_S = 60
WITHDRAWN_AT_SYNC = N_("The operator cancelled or changed this key; it was removed from this "
                       "phone at the last sync.")
REVOKED_AT_LOCK = N_("The vehicle's lock refused it as cancelled by the operator.")

# command name -> permission it needs (protocol §8)
COMMANDS: dict[str, int] = {c.label: int(c.permission) for c in Command if c.session}

LockConnector = Callable[..., AbstractAsyncContextManager[LockPort]]
ServerFactory = Callable[[str], ServerPort]


MAX_UNANSWERED_WRAPS = 64


class PhoneError(Exception):
    """A refusal by the phone itself (not enrolled, no key for this lock, ...)."""


@dataclass
class SyncReport:
    """What a sync changed."""

    added: list[StoredKey] = field(default_factory=list)
    refreshed: list[StoredKey] = field(default_factory=list)
    removed: list[StoredKey] = field(default_factory=list)
    revocations: dict[str, int] = field(default_factory=dict)  # lock -> newer version taken
    time: int = 0
    uploads: FlushReport = field(default_factory=FlushReport)

    @property
    def lost_keys(self) -> bool:
        """Did this sync take keys away? (shown as a warning, never as plain success)."""
        return bool(self.removed)

    def summary(self) -> str:
        """One line for people, in the current language."""
        parts = [_("{n} new key(s)").format(n=len(self.added))]
        if self.refreshed:
            parts.append(_("{n} refreshed").format(n=len(self.refreshed)))
        if self.removed:
            parts.append(_("{n} withdrawn by the operator").format(n=len(self.removed)))
        if self.revocations:
            parts.append(_("revocation updates {list}").format(
                list=", ".join(f"{k} v{v}" for k, v in self.revocations.items())))
        up = self.uploads
        if up.sent or up.remaining or up.rejected:
            parts.append(_("uploaded {sent} log batch(es), {remaining} still queued").format(
                sent=up.sent, remaining=up.remaining))
        return _("; ").join(parts)


@dataclass
class CommandOutcome:
    """A command the lock accepted, with the state it reported."""

    lock_id: str
    command: str
    key: StoredKey
    state: LockState


class PhoneApp:
    """One phone profile plus how to reach the server and locks."""

    def __init__(
        self,
        profile: Profile,
        *,
        server_factory: ServerFactory | None = None,
        lock_connector: LockConnector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.profile = profile
        self._server_factory = server_factory
        self._lock_connector = lock_connector
        self.clock = clock
        self._links: dict[str, ServerPort] = {}
        self._last_auth_ts = 0  # the server accepts each (phone, timestamp) proof once

    # -- helpers -------------------------------------------------------------
    def now(self) -> int:
        """Phone time, unix seconds."""
        return int(self.clock())

    def state(self) -> PhoneState:
        """The stored state (raises the keystore's errors)."""
        return self.profile.keystore.load()

    def _server(self, url: str) -> ServerPort:
        if url not in self._links:
            if self._server_factory is None:
                from kagiya.phone.server_link import HttpServerLink

                self._links[url] = HttpServerLink(url)
            else:
                self._links[url] = self._server_factory(url)
        return self._links[url]

    def close(self) -> None:
        """Release network connections (the profile stays as it is)."""
        for link in self._links.values():
            close = getattr(link, "close", None)
            if close is not None:
                close()
        self._links.clear()

    def _connector(self) -> LockConnector:
        if self._lock_connector is None:
            from kagiya.phone.lock_link import connect

            return connect
        return self._lock_connector

    @staticmethod
    def _device(state: PhoneState) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(state.device_key)

    @staticmethod
    def device_public(state: PhoneState) -> bytes:
        """The phone's Ed25519 public key (32 bytes)."""
        return PhoneApp._device(state).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    # -- enrollment and tokens -------------------------------------------------
    def enroll(self, server_url: str | None, code: str) -> PhoneState:
        """Enroll this phone with the operator's enrollment link (``kagiya://enroll?…``,
        which carries the server URL) or a bare one-time code plus ``server_url``
        (creates the profile on first use)."""
        try:
            link_server, code = parse_enrollment(code)
        except ValueError:
            raise PhoneError(_("An enrollment code looks like XXXX-XXXX-XXXX (letters and "
                               "digits), or is the enrollment link from your operator.")) from None
        if link_server and server_url and link_server != server_url.rstrip("/"):
            raise PhoneError(_("The enrollment link is for {link}, not {given}.").format(
                link=link_server, given=server_url[:60]))
        server_url = link_server or (server_url or "").strip()
        if not server_url:
            raise PhoneError(_("This code has no server address: use the enrollment link or "
                               "QR code from your operator."))
        if not URL_FORMAT.match(server_url):
            raise PhoneError(_("The server URL must start with https:// or http:// "
                               "(got {url}).").format(url=repr(server_url[:60])))
        ks = self.profile.keystore
        if not ks.exists():
            ks.create(self.profile.name)
        with ks.transaction() as st:
            if st.enrolled:
                raise PhoneError(_(
                    "Profile {profile} is already enrolled as {phone}; use another "
                    "--profile for another phone."
                ).format(profile=repr(st.profile), phone=st.phone_id))
            pub = self.device_public(st)
            sig = self._device(st).sign(enroll_message(code, pub))
            got = self._server(server_url).enroll(code, pub, sig)
            st.server_url = server_url.rstrip("/")
            st.phone_id, st.user_id, st.token = got.phone_id, got.user_id, got.token
            st.token_expires_at = self.now() + got.expires_in
            return st

    def _fresh_token(self, st: PhoneState, server: ServerPort, *, force: bool = False) -> str:
        if not force and st.token and st.token_expires_at - TOKEN_MARGIN_S > self.now():
            return st.token
        ts = max(self.now(), self._last_auth_ts + 1)
        self._last_auth_ts = ts
        sig = self._device(st).sign(auth_message(st.phone_id, ts))
        got = server.phone_token(st.phone_id, ts, sig)
        st.token, st.token_expires_at = got.token, ts + got.expires_in
        return st.token

    def _prover(self, st: PhoneState) -> Prover:
        """Signs each request's DPoP proof with the device key (at the server's time when
        the server refused the phone's clock)."""
        device = self._device(st)

        def prove(method: str, url: str, token: str, at: int | None) -> str:
            return make_proof(device, method, url, access_token=token,
                              now=self.now() if at is None else at)

        return prove

    def _authed(self, st: PhoneState, server: ServerPort, call: Callable[[str], Any]) -> Any:
        """Call with the token; on 401 re-authenticate once with the device key."""
        try:
            return call(self._fresh_token(st, server))
        except TokenRejected:
            return call(self._fresh_token(st, server, force=True))

    # -- sync ------------------------------------------------------------------
    def sync(self) -> SyncReport:
        """Download keys, revocation updates and time; upload queued logs.

        Raises :class:`Offline` when the server cannot be reached: nothing stored changes
        except the error note, and queued uploads stay queued.
        """
        ks = self.profile.keystore
        report = SyncReport()
        offline: Offline | None = None
        with ks.transaction() as st:
            if not st.enrolled:
                raise PhoneError(_("This phone is not enrolled yet. Enroll it with the code "
                                   "from your operator."))
            server = self._server(st.server_url)
            try:
                prove = self._prover(st)
                bundle = self._authed(st, server, lambda tok: server.sync(tok, prove))
                wraps = self._wraps(st, bundle)
                if wraps:
                    bundle = self._authed(st, server, lambda tok: server.sync(tok, prove, wraps))
            except Offline as exc:
                st.last_sync_error = f"offline: {exc}"
                offline = exc
            else:
                self._apply(st, bundle, report)
                report.uploads = self.profile.outbox.flush(
                    lambda item: self._send_item(st, server, item)
                )
        if offline is not None:
            raise offline
        return report

    def _apply(self, st: PhoneState, bundle: SyncBundle, report: SyncReport) -> None:
        anchors = verify.anchors_from(bundle.issuer_keys) or st.issuer_keys
        if anchors:  # check everything before storing anything
            for k in bundle.keys:
                verify.check_key(k, anchors)
            for rv in bundle.revocations:
                verify.check_revocation(bytes.fromhex(rv["update"]), rv["lock_id"],
                                        int(rv["version"]), anchors)
            verify.check_time(bundle.time_statement, bundle.time, anchors)
            st.issuer_keys = dict(anchors)
        self._merge(st, bundle.keys, report)
        for rv in bundle.revocations:
            lock_id, version = rv["lock_id"], int(rv["version"])
            held = st.revocations.get(lock_id)
            if held is None or version > held.version:  # never go back to an older update
                dec = rv.get("decommission")
                st.revocations[lock_id] = RevocationEntry(
                    version=version, update=bytes.fromhex(rv["update"]), fetched_at=self.now(),
                    decommission=bytes.fromhex(dec) if dec else None,
                )
                report.revocations[lock_id] = version
        if bundle.time >= st.time_statement_iat:
            st.time_statement, st.time_statement_iat = bundle.time_statement, bundle.time
        report.time = bundle.time
        st.last_sync, st.last_sync_error = self.now(), ""

    @staticmethod
    def _held_secret(st: PhoneState, k: dict[str, Any]) -> bytes | None:
        """This phone's own K for a downloaded key: kept with the key, or drawn for its wrap."""
        old = st.keys.get(bytes.fromhex(k["key_id"]))
        if old is not None and old.credential.hex() == k["credential"]:
            return old.secret
        try:
            cnf = credential_cnf(bytes.fromhex(k["credential"]))
        except ProtocolError:
            return None
        return st.wrapped_secrets.get(cnf)

    def _wraps(self, st: PhoneState, bundle: SyncBundle) -> list[dict[str, str]]:
        """Draw a secret K and wrap it to the lock for each pending request and each key
        whose K this phone does not hold. K is kept (sealed in the keystore) before the wrap
        leaves the phone; the server never sees it."""
        need = {p["request_id"]: p["lock_kex_public"] for p in bundle.pending}
        for k in bundle.keys:
            if self._held_secret(st, k) is None:
                need[k["request_id"]] = k["lock_kex_public"]
        wraps = []
        for request_id, kex in need.items():
            secret, cnf = new_wrapped_secret(bytes.fromhex(kex))
            st.wrapped_secrets[cnf] = secret
            wraps.append({"request_id": request_id, "cnf": cnf.hex()})
        return wraps

    def _merge(self, st: PhoneState, keys: list[dict[str, Any]], report: SyncReport) -> None:
        """Take the server's current key set; report every key added, refreshed or withdrawn."""
        fresh: dict[bytes, StoredKey] = {}
        for k in keys:
            secret = self._held_secret(st, k)
            if secret is None:  # not this phone's wrap: unusable, the next sync asks anew
                continue
            sk = StoredKey.from_download(k, secret, downloaded_at=self.now())
            old = st.keys.get(sk.key_id)
            if old is not None:
                sk.accepted_by_lock = old.accepted_by_lock
                sk.downloaded_at = old.downloaded_at
                sk.cancelled = old.cancelled  # the lock's word outranks a stale download
            else:
                same_request = [o for o in st.keys.values() if o.request_id == sk.request_id]
                (report.refreshed if same_request else report.added).append(sk)
            fresh[sk.key_id] = sk
        for kid, old in st.keys.items():
            if kid not in fresh and not any(
                f.request_id == old.request_id and old.request_id for f in fresh.values()
            ):
                report.removed.append(old)
                st.note_withdrawn(old, WITHDRAWN_AT_SYNC, self.now())
        st.keys = fresh
        st.withdrawn = [  # a lock with a usable key again needs no "cancelled" notice
            w for w in st.withdrawn
            if not any(k.lock_id == w.lock_id and not k.cancelled for k in fresh.values())
        ]
        held = set()
        for sk in fresh.values():
            try:
                held.add(credential_cnf(sk.credential))
            except ProtocolError:
                continue
        # K of a stored key lives with the key; the newest unanswered wraps are kept (an
        # answer lost on the way may still bring their keys)
        unanswered = [(c, k) for c, k in st.wrapped_secrets.items() if c not in held]
        st.wrapped_secrets = dict(unanswered[-MAX_UNANSWERED_WRAPS:])

    def _send_item(self, st: PhoneState, server: ServerPort, item: OutboxItem) -> None:
        if item.kind != "log":
            raise PermanentRejection(f"unknown outbox item kind {item.kind!r}")
        try:
            prove = self._prover(st)
            out = self._authed(st, server,
                               lambda tok: server.upload_log(tok, item.payload, prove, item.name))
            receipt = out.get("receipt") if isinstance(out, dict) else None
            if isinstance(receipt, str) and item.payload.get("lock_id"):
                st.log_receipts[str(item.payload["lock_id"])] = bytes.fromhex(receipt)
        except TokenRejected:
            raise
        except ServerRefused as exc:
            if exc.status in (408, 429) or exc.status >= 500:
                raise
            raise PermanentRejection(str(exc)) from exc

    # -- at the vehicle (offline) ---------------------------------------------
    def choose_key(self, st: PhoneState, lock_id: str, command: str) -> StoredKey:
        """The key to use for ``command`` at ``lock_id``: a key valid now with the permission,
        else the newest one (the lock then says exactly why it refuses)."""
        if command not in COMMANDS:
            raise PhoneError(_("unknown command {command}; use one of {commands}").format(
                command=repr(command), commands=", ".join(COMMANDS)))
        keys = [k for k in st.keys_for(lock_id) if not k.cancelled]
        if not keys:
            gone = [k for k in st.keys_for(lock_id) if k.cancelled]
            if gone:
                raise PhoneError(_("The key for {lock} was cancelled: {reason} Sync while "
                                   "online to check for a new key.").format(
                                       lock=lock_id, reason=_(gone[0].cancelled)))
            held = sorted({k.lock_id for k in st.keys.values() if not k.cancelled})
            hint = _(" (this phone has keys for: {locks})").format(
                locks=", ".join(held)) if held else ""
            raise PhoneError(_("this phone has no key for lock {lock}").format(lock=lock_id)
                             + hint)
        need = COMMANDS[command]
        allowed = [k for k in keys if k.permissions & need == need]
        if not allowed:
            raise PhoneError(_(
                "no key on this phone allows {command} at {lock} (the key allows: {perms})"
            ).format(command=command, lock=lock_id,
                     perms=", ".join(perm_names(keys[0].permissions))))
        now = self.now()
        valid = [k for k in allowed if k.status_at(now) == "valid"]
        return (valid or allowed)[0]

    def _session(
        self, st: PhoneState, lock_id: str, timeout: float
    ) -> AbstractAsyncContextManager[LockPort]:
        rv = st.revocations.get(lock_id)
        extra: dict[str, Any] = {"decommission": rv.decommission} \
            if rv and rv.decommission else {}
        if lock_id in st.log_receipts:
            extra["log_receipt"] = st.log_receipts[lock_id]
        return self._connector()(
            lock_id,
            timeout=timeout,
            time_statement=st.time_statement or None,
            revocation=(rv.update, rv.version) if rv else None,
            accepted={k.key_id for k in st.keys_for(lock_id) if k.accepted_by_lock},
            fresh_time=self._fresh_time(st.server_url),
            **extra,
        )

    def _fresh_time(self, server_url: str | None) -> FreshTime:
        """Fetch a fresh time statement for a lock that lost its time (None offline)."""
        def fetch(lock_id: str, nonce: bytes) -> bytes | None:
            if not server_url:
                return None
            server = self._server(server_url)
            get = getattr(server, "fresh_time", None)
            try:
                return get(lock_id, nonce) if get is not None else None
            except (Offline, ServerRefused):
                return None

        async def fresh_time(lock_id: str, nonce: bytes) -> bytes | None:
            return await asyncio.to_thread(fetch, lock_id, nonce)

        return fresh_time

    async def run(self, lock_id: str, command: str, *, timeout: float = 15.0) -> CommandOutcome:
        """Find the lock over BLE and run ``command`` with the best key (no network needed)."""
        st = self.state()
        key = self.choose_key(st, lock_id, command)
        try:
            async with self._session(st, lock_id, timeout) as session:
                state = await session.command(key, command)
        except Exception as exc:
            if getattr(exc, "code", None) == ErrorCode.REVOKED:
                self._mark_cancelled(key)
            raise
        if not key.accepted_by_lock:
            with self.profile.keystore.transaction() as st2:
                if key.key_id in st2.keys:
                    st2.keys[key.key_id].accepted_by_lock = True
        return CommandOutcome(lock_id, command, key, state)

    def _mark_cancelled(self, key: StoredKey) -> None:
        """The lock refused ``key`` as revoked: show it as cancelled, stop offering it."""
        with self.profile.keystore.transaction() as st:
            held = st.keys.get(key.key_id)
            if held is not None:
                held.cancelled = REVOKED_AT_LOCK
                st.note_withdrawn(held, REVOKED_AT_LOCK, self.now())

    async def collect_logs(self, lock_id: str, *, timeout: float = 15.0) -> int:
        """Fetch the lock's new log records and queue them for upload; returns records queued."""
        count, _records = await self.collect_logs_detailed(lock_id, timeout=timeout)
        return count

    async def collect_logs_detailed(
        self, lock_id: str, *, timeout: float = 15.0
    ) -> tuple[int, list[dict[str, Any]]]:
        """Like :meth:`collect_logs`, also returning the new records decoded, newest first."""
        st = self.state()
        key = self.choose_key(st, lock_id, "status")
        if not key.permissions & Permission.LOG:
            key = next((k for k in st.keys_for(lock_id) if k.permissions & Permission.LOG), key)
        from_seq = st.log_cursors.get(lock_id, 1)
        async with self._session(st, lock_id, timeout) as session:
            batches = await session.fetch_log(key, from_seq)
        count = 0
        records: list[dict[str, Any]] = []
        with self.profile.keystore.transaction() as st2:
            for batch in batches:
                if not batch.records:
                    continue
                self.profile.outbox.put("log", batch.upload_payload())
                count += len(batch.records)
                records.extend(_record_dict(r) for r in batch.decoded)
                st2.log_cursors[lock_id] = max(st2.log_cursors.get(lock_id, 1), batch.next_seq)
        return count, records[::-1]

    def upload(self) -> FlushReport:
        """Upload queued logs now; raises :class:`Offline` when the server is unreachable and
        nothing could be sent (everything stays queued)."""
        offline: list[Offline] = []
        with self.profile.keystore.transaction() as st:
            server = self._server(st.server_url)

            def send(item: OutboxItem) -> None:
                try:
                    self._send_item(st, server, item)
                except Offline as exc:
                    offline.append(exc)
                    raise

            report = self.profile.outbox.flush(send)
        if offline and not report.sent:
            raise offline[0]
        return report



EVENTS = {int(e): e.label for e in LogEvent}  # catalogue msgids (protocol definition)


def _record_dict(rec: list[Any]) -> dict[str, Any]:
    """A decoded log record ``[seq, time, event, code, cti, sub]`` for people (protocol §11)."""
    seq, t, event, code, cti, sub = (list(rec) + [None] * 6)[:6]
    return {
        "seq": seq, "time": t, "event": EVENTS.get(event, f"event {event}"), "code": code,
        "key_id": cti.hex() if isinstance(cti, bytes | bytearray) else None, "user_id": sub,
    }
