"""The phone's side of one protocol session (docs/protocol.md §8, §9), transport-free.

A :class:`PhoneSession` runs over any ``request(message_bytes) -> reply_bytes`` coroutine:
``HELLO`` → ``CHALLENGE``; then it pushes the newest time statement and revocation update
the phone holds that the lock has not *confirmed* (§6, §7); then authenticated requests
with a fresh counter each, the credential on first use (or after ``KEY_UNKNOWN``), and
reply MACs checked in constant time. Refusals raise typed :mod:`.client_errors`
exceptions.

Protocol v2 rules the session follows:

* CHALLENGE's lock time, state and revocation version and every ACK are unauthenticated
  hints: a man in the middle can forge them. The phone decides what to push from what
  the lock reported in MACed replies (``Wallet.confirmed``), and it reports an update as
  applied only when a MACed RESULT / LOG shows the lock's new revocation version
  (:attr:`PhoneSession.revocation_version`). A forged hint can make it push something
  the lock already has (refused cheaply as ``STALE_UPDATE``), never skip a push.
* The nonce rotates with every MACed reply, and a request must reach the lock within the
  CHALLENGE's ``window_ms`` of its nonce: a session whose nonce is older than most of
  the window starts again with HELLO before the request.
* ``TIME_UNTRUSTED`` (the lock lost its time in a power cut): with a
  ``Wallet.fresh_time`` provider the session fetches a fresh statement bound to the
  lock's nonce, pushes it and retries once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import messages, proof
from .client_errors import ReplyNotAuthenticError, UpdateNotAppliedError, refusal
from .client_keys import DigitalKey, Wallet
from .errors import ErrorCode
from .messages import Command, LockState
from .protocol import CHALLENGE_WINDOW_MS

Request = Callable[[bytes], Awaitable[bytes]]

# start again with HELLO once this much of the challenge window has passed (the rest is
# for the request to reach the lock)
_WINDOW_USE = 0.5


@dataclass(frozen=True)
class CommandResult:
    """An authenticated success: the lock's state bits and time after the command."""

    command: Command
    state: LockState
    lock_time: int
    revocation_version: int = 0


class PhoneSession:
    """One session (a chain of lock nonces) on one connection."""

    def __init__(self, request: Request, wallet: Wallet) -> None:
        self._request = request
        self.wallet = wallet
        self.challenge: messages.Challenge | None = None
        self.nonce = b""
        self._nonce_at = 0.0
        self.counter = 0
        self.command_sent = False
        # the lock's revocation version as a MACed reply of this session showed it
        # (None until one arrived)
        self.revocation_version: int | None = None

    async def _exchange(self, msg: messages.Message) -> messages.Message:
        return messages.decode(await self._request(messages.encode(msg)))

    async def hello(self) -> messages.Challenge:
        """Start the session (or draw a new nonce)."""
        reply = await self._exchange(messages.Hello())
        if isinstance(reply, messages.ErrorReply):
            raise refusal(reply.code, "HELLO refused")
        if not isinstance(reply, messages.Challenge):
            raise ReplyNotAuthenticError(f"unexpected reply to HELLO: {type(reply).__name__}")
        self.challenge = reply
        self._set_nonce(reply.nonce)
        self.counter = 0
        return reply

    def _set_nonce(self, nonce: bytes) -> None:
        self.nonce = nonce
        self._nonce_at = time.monotonic()

    def _stale(self) -> bool:
        ch = self.challenge
        window = (ch.window_ms if ch is not None else CHALLENGE_WINDOW_MS) / 1000
        return time.monotonic() - self._nonce_at > window * _WINDOW_USE

    async def attach_updates(self) -> list[str]:
        """Push the time statement / revocation update / decommission update the lock has
        not confirmed, and the key server's log receipt; returns what was pushed and
        acknowledged (``"time"``, ``"revocation"``, ``"decommission"``, ``"log_receipt"``).
        The acknowledgement is a hint: :attr:`revocation_version` tells what a MACed
        reply confirmed. Refusals of these are not errors."""
        ch = self.challenge
        assert ch is not None
        pushed = []
        w = self.wallet
        known_rv, known_time = w.confirmed.get(ch.lock_id, (-1, 0))
        if w.time_statement is not None and w.time > max(known_time, ch.lock_time):
            reply = await self._exchange(messages.TimeMessage(w.time_statement))
            if isinstance(reply, messages.Ack) and reply.code == 0:
                pushed.append("time")
        if await self._push_revocation(known_rv):
            pushed.append("revocation")
        retire = w.decommission_for(ch.lock_id)
        if retire is not None and not ch.state & LockState.DECOMMISSIONED:
            reply = await self._exchange(messages.DecommissionMessage(retire))
            if isinstance(reply, messages.Ack) and reply.code == 0:
                pushed.append("decommission")
        receipt = w.log_receipt_for(ch.lock_id)
        if receipt is not None:  # the server has these records: the lock may drop them
            reply = await self._exchange(messages.LogReceiptMessage(receipt))
            if isinstance(reply, messages.Ack) and reply.code in (0, ErrorCode.STALE_UPDATE):
                w.log_receipts.pop(ch.lock_id, None)
                if reply.code == 0:
                    pushed.append("log_receipt")
        return pushed

    async def _push_revocation(self, known: int) -> bool:
        """Push the held update when it is newer than ``known`` (never trusting the
        CHALLENGE's hint: a forged high version must not stop the push)."""
        ch = self.challenge
        assert ch is not None
        held = self.wallet.revocation_for(ch.lock_id)
        if held is None or held[0] <= known:
            return False
        reply = await self._exchange(messages.RevocationMessage(held[1]))
        return isinstance(reply, messages.Ack) and reply.code in (0, ErrorCode.STALE_UPDATE)

    async def _fresh_time(self) -> bool:
        """Fetch and push a fresh time statement for the current nonce; True if the lock
        acknowledged it."""
        ch = self.challenge
        fetch = self.wallet.fresh_time
        if ch is None or fetch is None:
            return False
        statement = await fetch(ch.lock_id, self.nonce)
        if statement is None:
            return False
        reply = await self._exchange(messages.TimeMessage(statement))
        return isinstance(reply, messages.Ack) and reply.code == 0

    def _next_counter(self) -> int:
        self.counter += 1
        return self.counter

    async def _authenticated(self, key: DigitalKey, command: Command, arg: int
                             ) -> tuple[messages.Message, int, bytes]:
        """Send COMMAND / LOG_FETCH; handles KEY_UNKNOWN, STALE_CHALLENGE and
        TIME_UNTRUSTED once each. Returns (reply, counter, nonce the proof used)."""
        send_credential = not self.wallet.is_accepted(key, self._lock_id)
        retried: set[int] = set()
        while True:
            if self._stale():
                await self.hello()
            ch = self.challenge
            assert ch is not None
            counter = self._next_counter()
            nonce = self.nonce
            p = proof.command_proof(key.secret, nonce, ch.lock_id, key.cti, command,
                                    counter, arg)
            cred = key.credential if send_credential else None
            msg: messages.Message
            if command == Command.LOG_FETCH:
                msg = messages.LogFetch(key.cti, counter, arg, p, cred)
            else:
                msg = messages.CommandRequest(key.cti, counter, command, p, cred)
            self.command_sent = True
            reply = await self._exchange(msg)
            if isinstance(reply, messages.ErrorReply):
                code = reply.code
                if code not in retried:
                    retried.add(code)
                    if code == ErrorCode.KEY_UNKNOWN and not send_credential:
                        self.wallet.mark_accepted(key, ch.lock_id, False)
                        send_credential = True
                        continue
                    if code == ErrorCode.STALE_CHALLENGE:
                        await self.hello()
                        continue
                    if code == ErrorCode.TIME_UNTRUSTED and await self._fresh_time():
                        await self.hello()
                        continue
                raise refusal(code, f"{command.name} refused")
            return reply, counter, nonce

    @property
    def _lock_id(self) -> str:
        assert self.challenge is not None
        return self.challenge.lock_id

    def _authentic(self, key: DigitalKey, nonce: bytes, command: int, counter: int,
                   code: int, reply: messages.Result | messages.LogReply) -> bool:
        ch = self.challenge
        assert ch is not None
        return proof.verify_reply_mac(key.secret, nonce, ch.lock_id, key.cti, command,
                                      counter, code, messages.mac_body(reply), reply.mac)

    def _confirmed(self, reply: messages.Result | messages.LogReply) -> None:
        """A MACed reply: follow its nonce, record what it confirms, and push the held
        revocation update again if the lock's authenticated version shows it lacks it
        (a hint was forged or an update dropped)."""
        ch = self.challenge
        assert ch is not None
        self._set_nonce(reply.next_nonce)
        self.revocation_version = reply.revocation_version
        self.wallet.confirm(ch.lock_id, reply.revocation_version, reply.lock_time)

    async def _ensure_revocation(self, key: DigitalKey) -> None:
        """After a MACed reply: if the lock's authenticated revocation version is below
        the update this phone holds, push it and confirm with an authenticated STATUS;
        raise UpdateNotAppliedError if the lock still does not show it."""
        ch = self.challenge
        assert ch is not None
        held = self.wallet.revocation_for(ch.lock_id)
        if held is None or self.revocation_version is None \
                or self.revocation_version >= held[0]:
            return
        await self._push_revocation(self.revocation_version)
        reply, counter, nonce = await self._authenticated(key, Command.STATUS, 0)
        if isinstance(reply, messages.Result) and reply.counter == counter \
                and self._authentic(key, nonce, Command.STATUS, counter, reply.code, reply):
            self._confirmed(reply)
        if self.revocation_version is None or self.revocation_version < held[0]:
            raise UpdateNotAppliedError(
                f"the lock did not take revocation update {held[0]} "
                f"(it reports {self.revocation_version})")

    async def command(self, key: DigitalKey, command: Command) -> CommandResult:
        """Run one command; success only on a RESULT with a valid MAC and code 0."""
        reply, counter, nonce = await self._authenticated(key, command, 0)
        ch = self.challenge
        assert ch is not None
        if not isinstance(reply, messages.Result) or reply.counter != counter \
                or reply.command != command:
            raise ReplyNotAuthenticError("reply does not answer this command")
        if not self._authentic(key, nonce, command, counter, reply.code, reply):
            raise ReplyNotAuthenticError("RESULT MAC invalid")
        self._confirmed(reply)
        self.wallet.mark_accepted(key, ch.lock_id)
        if reply.code != 0:
            if reply.code != ErrorCode.REVOKED:
                await self._ensure_revocation(key)
            raise refusal(reply.code, f"{command.name} refused", reply.state)
        await self._ensure_revocation(key)
        return CommandResult(command, LockState(reply.state), reply.lock_time,
                             reply.revocation_version)

    async def log_page(self, key: DigitalKey, from_seq: int) -> messages.LogReply:
        """One authenticated LOG page from ``from_seq``."""
        reply, counter, nonce = await self._authenticated(key, Command.LOG_FETCH, from_seq)
        if isinstance(reply, messages.Result):  # a MACed refusal (e.g. REVOKED)
            if reply.counter == counter and reply.code and self._authentic(
                    key, nonce, Command.LOG_FETCH, counter, reply.code, reply):
                self._confirmed(reply)
                raise refusal(reply.code, "LOG_FETCH refused", reply.state)
            raise ReplyNotAuthenticError("RESULT MAC invalid")
        if not isinstance(reply, messages.LogReply) or reply.counter != counter:
            raise ReplyNotAuthenticError("reply does not answer this LOG_FETCH")
        if not self._authentic(key, nonce, Command.LOG_FETCH, counter, 0, reply):
            raise ReplyNotAuthenticError("LOG MAC invalid")
        self._confirmed(reply)
        self.wallet.mark_accepted(key, self._lock_id)
        return reply
