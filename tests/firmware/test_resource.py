"""A lock short of heap answers INTERNAL, never an authentication code (issue 18, #1).

``MemoryError`` inside signature verification, the key unwrap or CBOR decoding used to be
turned into ``BAD_SIGNATURE`` / ``BAD_KEY_WRAP`` / ``MALFORMED``: a valid key was refused as
forged, counted as an attack, and after five such refusals the owner was rate-limited.
"""

from __future__ import annotations

import cbor2
import pytest

from tests.firmware import peer
from tests.firmware.harness import Bench

UNLOCK = 1
ERROR, RESULT = 15, 4
INTERNAL, RATE_LIMITED = 63, 32

# statements run inside the lock process that make one layer raise MemoryError the way
# running out of heap does (from inside the real code, not around it)
_CBOR_FAULT = (
    "import kagiya_lock.cbor as m\n"
    "m._real = m._item\n"
    "def _i(d, n, depth):\n"
    "    if depth == 0 and (%s):\n"
    "        raise MemoryError\n"
    "    return m._real(d, n, depth)\n"
    "m._item = _i\n")
FAULTS = {
    # old: BAD_SIGNATURE, counted by the rate limit
    "ed25519_verify": (
        "import kagiya_lock.ed25519 as m\n"
        "class _Be:\n"
        "    def __getattr__(self, n):\n"
        "        if n == 'dsm':\n"
        "            def f(*a):\n"
        "                raise MemoryError\n"
        "            return f\n"
        "        return getattr(m._real, n)\n"
        "m._real = m._be\n"
        "m._be = _Be()\n"),
    # old: MALFORMED (the claims map of the credential)
    "cbor_claims": _CBOR_FAULT % "d[m._p] in (0xa8, 0xa9, 0xaa, 0xab, 0xac)",
    # old: BAD_KEY_WRAP, counted (the content-encryption header {1: 30} in the unwrap)
    "cbor_unwrap": _CBOR_FAULT % "bytes(d[m._p:m._p + 4]) == b'\\xa1\\x01\\x18\\x1e'",
}
RESTORE = {
    "ed25519_verify": "import kagiya_lock.ed25519 as m\nm._be = m._real\n",
    "cbor_claims": "import kagiya_lock.cbor as m\nm._item = m._real\n",
    "cbor_unwrap": "import kagiya_lock.cbor as m\nm._item = m._real\n",
}


@pytest.mark.parametrize("layer", sorted(FAULTS))
def test_memory_error_is_internal_and_not_counted(bench: Bench, layer: str) -> None:
    key = bench.key()
    bench.lock.call("exec", code=FAULTS[layer])
    for _ in range(9):  # more than the 8 refusals a connection's budget allows
        nonce = bench.hello()[3]
        bench.counter += 1
        r = bench.lock.send(peer.command(key, nonce, bench.lock_id, UNLOCK, bench.counter,
                                         with_credential=True))
        assert r[0] == ERROR and r[1] == INTERNAL, r
    assert bench.lock.eval("lock.peers.get(1).refusals") == 0
    bench.lock.call("exec", code=RESTORE[layer])
    r = bench.command(key, UNLOCK, with_credential=True)  # the owner is not locked out
    assert r[0] == RESULT and r[3] == 0, r
    assert bench.lock.relays()["doors_locked"] is False


def test_heap_exhaustion_sweep_never_looks_like_an_attack(bench: Bench) -> None:
    """Real heap exhaustion (0.5-20 KB left free, ballast fills the rest): OK or INTERNAL only."""
    codes = set()
    for free in range(512, 20 * 1024, 768):
        key = bench.key()
        nonce = bench.hello()[3]
        bench.counter += 1
        msg = peer.command(key, nonce, bench.lock_id, UNLOCK, bench.counter,
                           with_credential=True)
        reply = cbor2.loads(bytes.fromhex(bench.lock.call("squeeze", free=free,
                                                          msg=msg.hex())["reply"]))
        code = reply[1] if reply[0] == ERROR else reply[3]
        codes.add(code)
        assert code in (0, INTERNAL), (free, reply)
        assert bench.lock.eval("lock.peers.get(1).refusals") == 0, free
    assert INTERNAL in codes and 0 in codes, codes  # both regimes were exercised
    r = bench.command(bench.key(), UNLOCK, with_credential=True)
    assert r[0] == RESULT and r[3] == 0, r
