"""The lock: protocol v1 message handler (docs/protocol.md §8, §9, §11, §12).

``Lock(hal).handle(conn, message)`` takes one reassembled request and returns one encoded
reply. It never raises: an unexpected failure becomes ``ERROR INTERNAL`` and the lock
stays usable. Running out of heap is such a failure: ``MemoryError`` propagates from
every layer (cbor, ed25519, x25519, ...) to ``handle``, so a lock short of memory never
answers a valid key with an authentication code and never counts it for the rate limit. ``connected``/``disconnected`` bound sessions to BLE connections and
``tick`` runs housekeeping (session expiry, clock high-water mark).
"""

import gc
import hashlib

from micropython import const

from kagiya_lock import __version__, cbor, cose, credential, errors, identity, mac, messages, proof
from kagiya_lock.clock import Clock
from kagiya_lock.keycache import KeyCache
from kagiya_lock.log import Log
from kagiya_lock.ratelimit import RateLimiter
from kagiya_lock.revocation import CT_REVOCATION, Revocations
from kagiya_lock.session import Sessions
from kagiya_lock.store import Store

VERSION = const(1)
MAX_MESSAGE = const(2048)
CT_TIME = "application/kgy-time+cbor"

# message types (§9) the lock accepts
T_HELLO = const(1)
T_COMMAND = const(3)
T_TIME = const(5)
T_REVOCATION = const(6)
T_LOG_FETCH = const(8)
T_INFO = const(10)

# commands (§8) and the permission bit each needs
C_UNLOCK = const(1)
C_LOCK = const(2)
C_DRIVE_ENABLE = const(3)
C_DRIVE_DISABLE = const(4)
C_STATUS = const(5)
C_LOG_FETCH = const(16)
_PERM = {C_UNLOCK: 1, C_LOCK: 1, C_DRIVE_ENABLE: 2, C_DRIVE_DISABLE: 2, C_STATUS: 0,
         C_LOG_FETCH: 4}

# log events (§11)
E_BOOT = const(32)
E_TIME = const(33)
E_REVOCATION = const(34)
E_PROVISIONED = const(35)

_LOG_OVERHEAD = const(224)  # LOG message bytes other than the records (upper bound)
_EMPTY_SHA256 = hashlib.sha256(b"").digest()
_INTERNAL_REPLY = b"\xa2\x00\x0f\x01\x18\x3f"  # {0: 15, 1: 63}
_VERSIONS = (VERSION,)


class Lock:
    """The lock's protocol state machine over a HAL (see kagiya_lock.hal)."""

    def __init__(self, hal):
        self.hal = hal
        self.ratelimit = RateLimiter()
        self.uplink_ratelimit = RateLimiter()  # same rules, the network's own budget
        self.log = None
        self.load()

    # -- state ------------------------------------------------------------
    def load(self):
        """(Re)load all persisted state; called at boot and after provisioning."""
        hal = self.hal
        st = self.store = Store(hal.state_dir)  # provisioning may have changed the files
        log = self.log
        if log is not None:
            log.close()
            self.log = None
        self.sessions = Sessions(hal.random)
        ident = identity.load(st)
        self.ident = ident
        self.clock = Clock(hal, st)
        self.revocations = Revocations(st)
        self.cache = KeyCache(st)
        relays = st.load("relays")
        if type(relays) is list and len(relays) == 2:
            self.doors_locked, self.drive = bool(relays[0]), bool(relays[1])
        else:
            self.doors_locked, self.drive = True, False
        hal.set_relays(self.doors_locked, self.drive)
        if ident is None:
            self.lock_id = ""
            return
        lid = ident["id"]
        self.lock_id = lid
        self._lid = proof.length_prefixed(lid)
        self.anchors = identity.anchors(ident)
        self.lock_kid = identity.key_id(ident["xp"])
        log = Log(st, lid, hal.log_capacity)
        # hwm is saved every 60 s, but every decision is logged with its time: resume the
        # clock from the newest record so it never goes below a time the lock has used
        self.clock.observe(log.head_time())
        log.append(self.clock.now(), E_BOOT, errors.OK)
        self.log = log

    def state(self):
        """State bits (§8): doors locked, drive enabled, vehicle moving, time trusted."""
        return ((1 if self.doors_locked else 0) | (2 if self.drive else 0)
                | (4 if self.hal.moving() else 0) | (8 if self.clock.trusted else 0))

    def _append(self, now, event, code, cti=None, sub=None):
        log = self.log
        if log is not None:
            log.append(now, event, code, cti, sub)

    def _set_relays(self, doors_locked, drive):
        if doors_locked == self.doors_locked and drive == self.drive:
            return
        self.doors_locked = doors_locked
        self.drive = drive
        self.hal.set_relays(doors_locked, drive)
        self.store.save("relays", [doors_locked, drive])

    # -- BLE hooks ----------------------------------------------------------
    def connected(self, conn):
        """A central connected (sessions start with HELLO; nothing to do yet)."""

    def disconnected(self, conn):
        """A central disconnected: its session ends."""
        self.sessions.end(conn)

    def tick(self):
        """Housekeeping; call about once a second."""
        try:
            self.sessions.expire(self.hal.ticks_ms())
            self.clock.tick()
        except Exception:  # housekeeping must never stop the main loop
            pass

    # -- replies ------------------------------------------------------------
    @staticmethod
    def _error(code, counter=None):
        return messages.encode(messages.ERROR, code, counter)

    def _reply_mac(self, key, nonce, cti, command, counter, code, state, body_hash):
        return proof.reply_mac(key, nonce, self._lid, cti, command, counter, code, state,
                               body_hash)

    def _result(self, entry, nonce, command, counter, code, now):
        """MACed RESULT; ``now`` is the time of the decision (the one logged with it)."""
        st = self.state()
        m = self._reply_mac(entry[1], nonce, entry[0], command, counter, code, st,
                            _EMPTY_SHA256)
        return messages.encode(messages.RESULT, counter, command, code, st, now, m)

    # -- dispatch -------------------------------------------------------------
    def handle(self, conn, message):
        """One request in, one encoded reply out; never raises."""
        try:
            return self._handle(conn, message)
        except MemoryError:  # a resource error, never an authentication failure
            gc.collect()
            return _INTERNAL_REPLY
        except Exception:
            return _INTERNAL_REPLY

    def handle_pushed(self, message):
        """A message pushed over the uplink (kagiya_lock.uplink): the same handlers as BLE,
        counted against ``uplink_ratelimit`` so failures pushed by a hostile network never
        rate-limit the BLE owner. The uplink passes only TIME, REVOCATION and (v2)
        DECOMMISSION messages here."""
        ble_limit = self.ratelimit
        self.ratelimit = self.uplink_ratelimit
        try:
            return self.handle(-1, message)
        finally:
            self.ratelimit = ble_limit

    def _handle(self, conn, message):
        m, code = messages.decode(message)
        if code:
            return self._error(code, messages.counter_of(m))
        t = m[0]
        if t == T_INFO:
            return self._info()
        if t != T_HELLO and t != T_COMMAND and t != T_TIME and t != T_REVOCATION \
                and t != T_LOG_FETCH:  # a well-formed lock -> phone message
            return self._error(errors.UNKNOWN_MESSAGE)
        if self.ident is None:
            return self._error(errors.NOT_PROVISIONED)
        if t == T_COMMAND or t == T_LOG_FETCH:
            return self._authenticated(conn, m, t)
        if t == T_HELLO:
            return self._hello(conn, m)
        if t == T_TIME:
            return self._time(m)
        return self._revocation(m)

    def _info(self):
        ident = self.ident
        log = self.log
        return messages.encode(
            messages.LOCK_INFO, self.lock_id, __version__, _VERSIONS, ident["sp"] if ident else b"",
            ident["xp"] if ident else b"", self.clock.now(), self.state(),
            self.revocations.version, log.head if log else 0, ident is not None)

    def _hello(self, conn, m):
        if VERSION not in m[1]:
            return self._error(errors.UNSUPPORTED_VERSION)
        s, code = self.sessions.hello(conn, self.hal.ticks_ms())
        if code:
            return self._error(code)
        return messages.encode(messages.CHALLENGE, VERSION, self.lock_id, s.nonce,
                               self.clock.now(), self.state(), self.revocations.version)

    # -- COMMAND and LOG_FETCH ------------------------------------------------
    def _authenticated(self, conn, m, t):
        # fields checked by messages.decode: cti 16 bytes, counter u32, command 1-5 or
        # from_seq u32, proof 32 bytes, credential bytes or absent
        cti = m[1]
        counter = m[2]
        sent_proof = m[4]
        cred = m.get(5)
        if t == T_COMMAND:
            command = m[3]
            arg = 0
        else:
            command = C_LOG_FETCH
            arg = m[3]
        hal = self.hal
        now_ms = hal.ticks_ms()
        now = self.clock.now()
        s = self.sessions.get(conn, now_ms)
        if s is None:
            return self._refuse(now, command, errors.STALE_CHALLENGE, cti, None, counter)
        if counter <= s.last:
            return self._refuse(now, command, errors.REPLAYED, cti, None, counter)
        if self.ratelimit.blocked(now_ms):
            return self._refuse(now, command, errors.RATE_LIMITED, cti, None, counter)
        perm = _PERM[command]
        entry = self.cache.get(cti, now)
        fresh = False
        if entry is None:
            if cred is None:
                return self._refuse(now, command, errors.KEY_UNKNOWN, cti, None, counter)
            code, claims = credential.check(cred, self.anchors, self.lock_id, now,
                                            self.revocations)
            self.ratelimit.record(code, now_ms)
            if code:
                return self._refuse(now, command, code, cti, None, counter)
            sub = claims[credential.SUB]
            if claims[credential.CTI] != cti:
                return self._refuse(now, command, errors.MALFORMED, cti, sub, counter)
            kperm = claims[credential.PERM]
            if kperm & perm != perm:
                return self._refuse(now, command, errors.PERMISSION_DENIED, cti, sub, counter)
            key, code = cose.unwrap(claims[credential.CNF], self.lock_kid, self.ident["xk"])
            self.ratelimit.record(code, now_ms)
            if code:
                return self._refuse(now, command, code, cti, sub, counter)
            entry = [cti, key, claims[credential.EXP], sub, kperm]
            fresh = True
        else:
            if cti in self.revocations:
                self.cache.evict((cti,))
                return self._refuse(now, command, errors.REVOKED, cti, entry[3], counter,
                                    entry, s)
            if entry[4] & perm != perm:
                return self._refuse(now, command, errors.PERMISSION_DENIED, cti, entry[3],
                                    counter, entry, s)
        expect = proof.command_proof(entry[1], s.nonce, self._lid, cti, command, counter,
                                     arg)
        if not mac.compare_digest(expect, sent_proof):
            self.ratelimit.record(errors.BAD_PROOF, now_ms)
            return self._refuse(now, command, errors.BAD_PROOF, cti, entry[3], counter,
                                entry, s)
        s.accept(counter, now_ms)
        self.ratelimit.success()
        if fresh:
            self.cache.put(cti, entry[1], entry[2], entry[3], entry[4], now)
        if command == C_LOG_FETCH:
            return self._log_reply(entry, s, counter, arg, now)
        code = self._execute(command)
        self._append(now, command, code, cti, entry[3])
        return self._result(entry, s.nonce, command, counter, code, now)

    def _refuse(self, now, command, code, cti, sub, counter, entry=None, session=None):
        """Log a refused command; MACed RESULT when the key is known, else ERROR.

        An unauthenticated refusal can come from anyone in radio range, so it is logged
        only while unfetched records fill less than half the ring (protocol §11): a flood
        can never push unfetched records of real key holders out of the ring.
        """
        log = self.log
        if entry is not None or (log is not None and log.unfetched() < log.capacity // 2):
            self._append(now, command, code, cti, sub)
        if entry is None:
            return self._error(code, counter)
        return self._result(entry, session.nonce, command, counter, code, now)

    def _execute(self, command):
        if command == C_UNLOCK:
            self._set_relays(False, self.drive)
        elif command == C_LOCK:
            self._set_relays(True, self.drive)
        elif command == C_DRIVE_ENABLE:
            self._set_relays(self.doors_locked, True)
        elif command == C_DRIVE_DISABLE:
            if self.hal.moving():
                return errors.VEHICLE_MOVING
            self._set_relays(self.doors_locked, False)
        return errors.OK

    def _log_reply(self, entry, s, counter, from_seq, now):
        log = self.log
        if log is None:
            return self._error(errors.NOT_PROVISIONED, counter)
        log.append(now, C_LOG_FETCH, errors.OK, entry[0], entry[3])
        records, prev, more = log.fetch(from_seq, MAX_MESSAGE - _LOG_OVERHEAD)
        if records:
            log.mark_fetched(_seq_of(records[-1]))
        st = self.state()
        body = messages.encode(messages.LOG, counter, records, prev, log.head,
                               log.head_hash, log.lost, log.head_signature(self.ident["sk"]),
                               more, st, None)
        m = self._reply_mac(entry[1], s.nonce, entry[0], C_LOG_FETCH, counter, errors.OK,
                            st, hashlib.sha256(body).digest())
        return messages.with_mac(body, m)

    # -- TIME and REVOCATION ----------------------------------------------------
    def _signed(self, m, content_type):
        data = m[1]  # bytes (messages.decode)
        now_ms = self.hal.ticks_ms()
        if self.ratelimit.blocked(now_ms):
            return None, errors.RATE_LIMITED
        payload, code = cose.verify_signed(data, self.anchors, content_type, MAX_MESSAGE)
        self.ratelimit.record(code, now_ms)
        if code:
            return None, code
        p, code = cbor.decode(payload)
        if code == errors.TOO_LARGE:  # e.g. more than 64 revocation entries (§7)
            return None, code
        if code or type(p) is not dict:
            return None, errors.MALFORMED
        return p, errors.OK

    def _ack(self):
        return messages.encode(messages.ACK, errors.OK, self.clock.now(),
                               self.revocations.version)

    def _time(self, m):
        p, code = self._signed(m, CT_TIME)
        if code:
            return self._error(code)
        t = p.get(6)
        if type(t) is not int or t < 0:
            return self._error(errors.MALFORMED)
        if self.clock.apply_statement(t):
            self._append(self.clock.now(), E_TIME, errors.OK)
        return self._ack()

    def _revocation(self, m):
        p, code = self._signed(m, CT_REVOCATION)
        if code:
            return self._error(code)
        now = self.clock.now()
        code, entries = self.revocations.apply(p, self.lock_id, now)
        if code:
            return self._error(code)
        self.cache.evict(entries)
        self._append(now, E_REVOCATION, errors.OK)
        return self._ack()


def _seq_of(record):
    v, code = cbor.decode(record)
    return v[0] if not code else 0
