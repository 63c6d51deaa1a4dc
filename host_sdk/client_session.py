"""The phone's side of one protocol session (docs/protocol.md §8, §9), transport-free.

A :class:`PhoneSession` runs over any ``request(message_bytes) -> reply_bytes`` coroutine:
``HELLO`` → ``CHALLENGE``; then it pushes the newest time statement and revocation update
the phone holds when the lock's are older (§6, §7); then authenticated requests with a
fresh counter each, the credential on first use (or after ``KEY_UNKNOWN``), and reply
MACs checked in constant time. Refusals raise typed :mod:`.client_errors` exceptions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import messages, proof
from .client_errors import ReplyNotAuthenticError, refusal
from .client_keys import DigitalKey, Wallet
from .errors import ErrorCode
from .messages import Command, LockState

Request = Callable[[bytes], Awaitable[bytes]]


@dataclass(frozen=True)
class CommandResult:
    """An authenticated success: the lock's state bits and time after the command."""

    command: Command
    state: LockState
    lock_time: int


class PhoneSession:
    """One session (one lock nonce) on one connection."""

    def __init__(self, request: Request, wallet: Wallet) -> None:
        self._request = request
        self.wallet = wallet
        self.challenge: messages.Challenge | None = None
        self.counter = 0
        self.command_sent = False
        # the lock's revocation version as this session last learned it: from CHALLENGE,
        # raised when the lock acknowledged an update pushed in this session
        self.revocation_version = -1

    async def _exchange(self, msg: messages.Message) -> messages.Message:
        return messages.decode(await self._request(messages.encode(msg)))

    async def hello(self) -> messages.Challenge:
        """Start the session (BUSY if another phone holds one)."""
        reply = await self._exchange(messages.Hello())
        if isinstance(reply, messages.ErrorReply):
            raise refusal(reply.code, "HELLO refused")
        if not isinstance(reply, messages.Challenge):
            raise ReplyNotAuthenticError(f"unexpected reply to HELLO: {type(reply).__name__}")
        self.challenge = reply
        self.counter = 0
        self.revocation_version = reply.revocation_version
        return reply

    async def attach_updates(self) -> list[str]:
        """Push the time statement / revocation update / decommission update the lock
        lacks; returns what was applied (``"time"``, ``"revocation"``, ``"decommission"``).
        Refusals of these are not errors."""
        ch = self.challenge
        assert ch is not None
        applied = []
        w = self.wallet
        if w.time_statement is not None and (
                w.time > ch.lock_time or not ch.state & LockState.TIME_TRUSTED):
            reply = await self._exchange(messages.TimeMessage(w.time_statement))
            if isinstance(reply, messages.Ack) and reply.code == 0:
                applied.append("time")
        held = w.revocation_for(ch.lock_id)
        if held is not None and held[0] > ch.revocation_version:
            reply = await self._exchange(messages.RevocationMessage(held[1]))
            if isinstance(reply, messages.Ack) and reply.code == 0:
                applied.append("revocation")
                self.revocation_version = held[0]
        retire = w.decommission_for(ch.lock_id)
        if retire is not None and not ch.state & LockState.DECOMMISSIONED:
            reply = await self._exchange(messages.DecommissionMessage(retire))
            if isinstance(reply, messages.Ack) and reply.code == 0:
                applied.append("decommission")
        return applied

    def _next_counter(self) -> int:
        self.counter += 1
        return self.counter

    async def _authenticated(self, key: DigitalKey, command: Command, arg: int
                             ) -> tuple[messages.Message, int]:
        """Send COMMAND / LOG_FETCH; handles KEY_UNKNOWN and STALE_CHALLENGE once each."""
        send_credential = not self.wallet.is_accepted(key, self._lock_id)
        rehello = True
        while True:
            ch = self.challenge
            assert ch is not None
            counter = self._next_counter()
            p = proof.command_proof(key.secret, ch.nonce, ch.lock_id, key.cti, command,
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
                if reply.code == ErrorCode.KEY_UNKNOWN and not send_credential:
                    self.wallet.mark_accepted(key, ch.lock_id, False)
                    send_credential = True
                    continue
                if reply.code == ErrorCode.STALE_CHALLENGE and rehello:
                    rehello = False
                    await self.hello()
                    continue
                raise refusal(reply.code, f"{command.name} refused")
            return reply, counter

    @property
    def _lock_id(self) -> str:
        assert self.challenge is not None
        return self.challenge.lock_id

    async def command(self, key: DigitalKey, command: Command) -> CommandResult:
        """Run one command; success only on a RESULT with a valid MAC and code 0."""
        reply, counter = await self._authenticated(key, command, 0)
        ch = self.challenge
        assert ch is not None
        if not isinstance(reply, messages.Result) or reply.counter != counter \
                or reply.command != command:
            raise ReplyNotAuthenticError("reply does not answer this command")
        if not proof.verify_reply_mac(key.secret, ch.nonce, ch.lock_id, key.cti, command,
                                      counter, reply.code, reply.state, b"", reply.mac):
            raise ReplyNotAuthenticError("RESULT MAC invalid")
        self.wallet.mark_accepted(key, ch.lock_id)
        if reply.code != 0:
            raise refusal(reply.code, f"{command.name} refused", reply.state)
        return CommandResult(command, LockState(reply.state), reply.lock_time)

    async def log_page(self, key: DigitalKey, from_seq: int) -> messages.LogReply:
        """One authenticated LOG page from ``from_seq``."""
        reply, counter = await self._authenticated(key, Command.LOG_FETCH, from_seq)
        ch = self.challenge
        assert ch is not None
        if isinstance(reply, messages.Result):  # a MACed refusal (e.g. REVOKED)
            if proof.verify_reply_mac(key.secret, ch.nonce, ch.lock_id, key.cti,
                                      Command.LOG_FETCH, counter, reply.code, reply.state,
                                      b"", reply.mac) and reply.code:
                raise refusal(reply.code, "LOG_FETCH refused", reply.state)
            raise ReplyNotAuthenticError("RESULT MAC invalid")
        if not isinstance(reply, messages.LogReply) or reply.counter != counter:
            raise ReplyNotAuthenticError("reply does not answer this LOG_FETCH")
        body = messages.log_mac_body(reply)
        if not proof.verify_reply_mac(key.secret, ch.nonce, ch.lock_id, key.cti,
                                      Command.LOG_FETCH, counter, 0, reply.state, body,
                                      reply.mac):
            raise ReplyNotAuthenticError("LOG MAC invalid")
        self.wallet.mark_accepted(key, ch.lock_id)
        return reply
