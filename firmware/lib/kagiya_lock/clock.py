"""The lock's clock (protocol §12 "Clock").

Lock time = max(rtc, hwm), ``hwm`` a persisted high-water mark raised by accepted time
statements, at least every 60 s by ``tick``, and at boot to the newest log record's time.
Time is trusted after provisioning, an authenticated installer correction or a *fresh*
(nonce-bound) time statement, until the RTC is found below ``hwm`` (an RTC lost in a
power cut, or rolled back). Then the RTC is moved up to ``hwm`` (a lower bound of the
real time) and the clock is untrusted: the lock cannot know how long it was off, so it
refuses keys (TIME_UNTRUSTED) until a fresh statement tells it the time. Plain
statements only raise the lower bound; a fresh one may also move the clock back.
"""

from micropython import const

from kagiya_lock import errors

_PERSIST_MS = const(60000)
_COALESCE_S = const(60)


class Clock:
    """Forward-only clock over the HAL's RTC, persisted in the store as ``clock``."""

    def __init__(self, hal, store):
        self._hal = hal
        self._store = store
        st = store.load("clock")
        if isinstance(st, list) and len(st) == 2:
            self.hwm, self.trusted = st[0], bool(st[1])
        else:
            self.hwm, self.trusted = 0, False
        self._saved_ms = hal.ticks_ms()
        self._saved_hwm = self.hwm
        self.now()  # detects an RTC reset that happened while powered off

    def _save(self):
        self._store.save("clock", [self.hwm, self.trusted])
        self._saved_ms = self._hal.ticks_ms()
        self._saved_hwm = self.hwm

    def now(self):
        """Lock time in unix seconds; never below any time this lock has seen."""
        rtc = self._hal.rtc()
        if rtc >= self.hwm:
            return rtc
        # the RTC went below the high-water mark: reset or rollback
        self._hal.set_rtc(self.hwm)
        if self.trusted:
            self.trusted = False
            self._save()
        return self.hwm

    def check_plain(self, t, ahead_s):
        """Cheap checks of a plain time statement's ``t`` before its signature is
        verified; returns an error code or 0.

        Trusted: ``t`` at most ``now`` is stale (nothing to learn); more than ``ahead_s``
        ahead is implausible (one faulty server clock must not brick the lock).
        Untrusted: only a ``t`` above ``hwm`` tells the lock anything.
        """
        now = self.now()
        if self.trusted:
            if t <= now:
                return errors.STALE_UPDATE
            if t > now + ahead_s:
                return errors.TIME_IMPLAUSIBLE
        elif t <= self.hwm:
            return errors.STALE_UPDATE
        return errors.OK

    def raise_to(self, t):
        """Apply a verified plain statement: ``t`` is a lower bound of the real time.

        It moves the clock forward but never makes an untrusted clock trusted (a plain
        statement may be old: only a fresh one bounds the time from above). Saved only
        when it moves the persisted mark by a minute or more (flash wear); returns True
        then (the lock logs it), so repeated statements coalesce.
        """
        if t > self.now():
            self._hal.set_rtc(t)
        if t > self.hwm:
            self.hwm = t
        if t - self._saved_hwm >= _COALESCE_S:
            self._save()
            return True
        return False

    def correct(self, t):
        """Apply a verified fresh (nonce-bound) statement: the lock's time becomes ``t``,
        also backwards (the recovery from a wrong future time), and trusted.

        Returns True when the clock moved by a minute or more or trust changed (the lock
        logs it); small corrections of a trusted clock write nothing.
        """
        now = self.now()
        moved = t - now if t >= now else now - t
        self._hal.set_rtc(t)
        self.hwm = t
        if not self.trusted or moved >= _COALESCE_S:
            self.trusted = True
            self._save()
            return True
        return False

    def set(self, t):
        """Provisioning: set the time and mark it trusted (never moves ``hwm`` down)."""
        if t > self._hal.rtc():
            self._hal.set_rtc(t)
        if t > self.hwm:
            self.hwm = t
        self.trusted = True
        self._save()

    def observe(self, t):
        """Raise ``hwm`` to a time the lock is known to have used (e.g. its newest log
        record after a power cut between two ``tick`` saves)."""
        if t > self.hwm:
            self.hwm = t
            self._save()
            self.now()

    def tick(self):
        """Housekeeping: persist ``hwm`` = now at least every 60 s."""
        if self._hal.ticks_ms() - self._saved_ms >= _PERSIST_MS:
            n = self.now()
            if n > self.hwm:
                self.hwm = n
            self._save()
