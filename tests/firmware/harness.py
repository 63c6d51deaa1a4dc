"""A long-lived MicroPython process running the lock (tests/firmware/lockdriver.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import cbor2

from tests.firmware import peer
from tests.mpy import FIRMWARE_LIB, micropython_binary

DRIVER = Path(__file__).with_name("lockdriver.py")
NOW = int(time.time())


class LockProcess:
    """One ``micropython`` process hosting ``Lock(UnixHAL(state_dir))``."""

    def __init__(self, state_dir: Path, *, log_capacity: int | None = None,
                 heap: str = "2m", env: dict[str, str] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.log_capacity = log_capacity
        self.heap = heap
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start (boot) the lock process."""
        env = dict(os.environ)
        env["MICROPYPATH"] = f"{FIRMWARE_LIB}:.frozen"
        env["KAGIYA_STATE"] = str(self.state_dir)
        if self.log_capacity:
            env["KAGIYA_LOG_CAPACITY"] = str(self.log_capacity)
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", f"heapsize={self.heap}", str(DRIVER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def call(self, op: str, **kw: Any) -> dict:
        """Send one driver request; returns its JSON reply (raises on driver exceptions)."""
        assert self.proc and self.proc.stdin and self.proc.stdout
        kw["op"] = op
        self.proc.stdin.write((json.dumps(kw) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise AssertionError(f"lock process died: {err}")
        out = json.loads(line)
        if "exc" in out:
            raise AssertionError(f"driver exception: {out['exc']}")
        return out

    def raw(self, message: bytes, conn: int = 1) -> bytes:
        """Lock.handle(conn, message) -> reply bytes."""
        return bytes.fromhex(self.call("handle", conn=conn, msg=message.hex())["reply"])

    def send(self, message: bytes, conn: int = 1) -> dict:
        """Lock.handle, reply decoded with cbor2."""
        return cbor2.loads(self.raw(message, conn))

    def eval(self, expr: str) -> Any:
        """Evaluate an expression with ``lock`` and ``hal`` inside the lock process."""
        return self.call("eval", expr=expr)["value"]

    def advance(self, seconds: float) -> None:
        """Move the lock's time forward."""
        self.call("advance", s=seconds)

    def stop(self) -> None:
        """Close stdin and wait (a clean power-off)."""
        if self.proc and self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            self.proc.wait(timeout=30)

    def kill(self) -> None:
        """kill -9 (power loss)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        """Power off and boot again on the same state directory."""
        self.stop()
        self.start()

    # -- protocol helpers ----------------------------------------------------
    def relays(self) -> dict:
        """The relay outputs as the HAL wrote them."""
        return json.loads((self.state_dir / "relays.json").read_text())

    def set_presence(self, pressed: bool) -> None:
        """Simulate the start button / brake switch (the HAL's ``presence`` file)."""
        p = self.state_dir / "presence"
        if pressed:
            p.write_text("1")
        elif p.exists():
            p.unlink()

    def set_moving(self, moving: bool) -> None:
        """Simulate the vehicle moving (the HAL's ``moving`` file)."""
        p = self.state_dir / "moving"
        if moving:
            p.write_text("1")
        elif p.exists():
            p.unlink()


class Bench:
    """A provisioned lock plus an issuer: the common fixture of the firmware tests."""

    def __init__(self, state_dir: Path, lock_id: str = "KGY-TEST-1", **kw: Any) -> None:
        self.issuer = peer.Issuer()
        self.lock_id = lock_id
        self.lock = LockProcess(state_dir, **kw)
        info = self.lock.call("provision", lock_id=lock_id, operator=peer.OPERATOR,
                              anchors=[self.issuer.public.hex()], now=NOW)
        self.sign_public = bytes.fromhex(info["sign_public"])
        self.kex_public = bytes.fromhex(info["kex_public"])
        self.counter = 0
        # v2 rotates the nonce with every MACed reply: a session is named by the nonce of
        # its CHALLENGE and ``current`` maps every nonce of a session to its newest one
        self.current: dict[bytes, bytes] = {}
        self.last_nonce = b""  # the nonce the last command was proved over

    def key(self, *, perm: int = 7, nbf: int | None = None, exp: int | None = None,
            **kw: Any) -> peer.Key:
        """Issue a key for this lock (valid now by default)."""
        nbf = NOW - 3600 if nbf is None else nbf
        exp = NOW + 86400 if exp is None else exp
        return peer.issue(self.issuer, self.lock_id, self.kex_public, nbf=nbf, exp=exp,
                          perm=perm, **kw)

    def hello(self, conn: int = 1) -> dict:
        """HELLO -> CHALLENGE (asserted)."""
        r = self.lock.send(peer.hello(), conn)
        assert r[0] == 2, r
        self.current[r[3]] = r[3]
        return r

    def nonce_of(self, nonce: bytes) -> bytes:
        """The newest nonce of the session that ``nonce`` belongs to."""
        return self.current.get(nonce, nonce)

    def rotated(self, used: bytes, reply: dict) -> None:
        """Follow the session's nonce after a MACed reply (its key 7 / 12)."""
        nxt = reply.get(7) if reply.get(0) == 4 else reply.get(12) if reply.get(0) == 9 \
            else None
        if isinstance(nxt, bytes) and 15 in reply:
            for k, v in list(self.current.items()):
                if v == used:
                    self.current[k] = nxt
            self.current[nxt] = nxt

    def command(self, key: peer.Key, cmd: int, *, conn: int = 1, nonce: bytes | None = None,
                counter: int | None = None, **kw: Any) -> dict:
        """Send a COMMAND with a fresh counter on a (new unless nonce given) session."""
        if nonce is None:
            nonce = self.hello(conn)[3]
        nonce = self.nonce_of(nonce)
        if counter is None:
            self.counter += 1
            counter = self.counter
        self.last_nonce = nonce
        r = self.lock.send(peer.command(key, nonce, self.lock_id, cmd, counter, **kw), conn)
        self.rotated(nonce, r)
        return r

    def log_fetch(self, key: peer.Key, nonce: bytes, from_seq: int, *, conn: int = 1,
                  **kw: Any) -> dict:
        """A LOG_FETCH with the next counter on the session of ``nonce``."""
        nonce = self.nonce_of(nonce)
        self.counter += 1
        self.last_nonce = nonce
        r = self.lock.send(peer.log_fetch(key, nonce, self.lock_id, self.counter, from_seq,
                                          **kw), conn)
        self.rotated(nonce, r)
        return r

    def check_mac(self, key: peer.Key, reply: dict) -> None:
        """The reply MAC of the last command verifies under K (the phone's check)."""
        assert peer.check_reply_mac(key, self.last_nonce, self.lock_id, reply), reply

    def close(self) -> None:
        """Stop the lock process."""
        self.lock.stop()
