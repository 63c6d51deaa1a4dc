"""Command proofs and reply MACs (protocol §8), HMAC-SHA-256 under the key's secret K.

``lid`` is the length-prefixed lock ID, ``u8(len(lock_id)) || lock_id``. The fixed-size
tail of each MAC input is written into a preallocated buffer (no per-call byte strings).
"""

from kagiya_lock import mac

_CMD = b"KGY1-CMD"
_RES = b"KGY1-RES"
_TAIL = bytearray(9)
_MV = memoryview(_TAIL)


def _u32(buf, at, v):
    buf[at] = (v >> 24) & 0xFF
    buf[at + 1] = (v >> 16) & 0xFF
    buf[at + 2] = (v >> 8) & 0xFF
    buf[at + 3] = v & 0xFF


def command_proof(key, nonce, lid, cti, command, counter, arg):
    """HMAC(K, "KGY1-CMD" || nonce || lid || cti || u8(cmd) || u32be(c) || u32be(arg))."""
    t = _TAIL
    t[0] = command
    _u32(t, 1, counter)
    _u32(t, 5, arg)
    return mac.hmac_parts(key, (_CMD, nonce, lid, cti, t))


def reply_mac(key, nonce, lid, cti, command, counter, code, state, body_hash):
    """HMAC(K, "KGY1-RES" || nonce || lid || cti || u8(cmd) || u32be(c) || u16be(code)
    || u8(state) || SHA-256(body)); ``body_hash`` is that SHA-256."""
    t = _TAIL
    t[0] = command
    _u32(t, 1, counter)
    t[5] = (code >> 8) & 0xFF
    t[6] = code & 0xFF
    t[7] = state
    return mac.hmac_parts(key, (_RES, nonce, lid, cti, _MV[:8], body_hash))


def length_prefixed(lock_id):
    """``u8(len(lock_id)) || lock_id`` (UTF-8)."""
    b = lock_id.encode()
    return bytes((len(b),)) + b
