"""Command proofs and reply MACs (protocol §8), HMAC-SHA-256 under the key's secret K.

``lid`` is the length-prefixed lock ID, ``u8(len(lock_id)) || lock_id``.
"""

from kagiya_lock import mac


def command_proof(key, nonce, lid, cti, command, counter, arg):
    """HMAC(K, "KGY1-CMD" || nonce || lid || cti || u8(cmd) || u32be(c) || u32be(arg))."""
    return mac.hmac_sha256(key, b"KGY1-CMD" + nonce + lid + cti + bytes((command,))
                           + counter.to_bytes(4, "big") + arg.to_bytes(4, "big"))


def reply_mac(key, nonce, lid, cti, command, counter, code, state, body_hash):
    """HMAC(K, "KGY1-RES" || nonce || lid || cti || u8(cmd) || u32be(c) || u16be(code)
    || u8(state) || SHA-256(body)); ``body_hash`` is that SHA-256."""
    return mac.hmac_sha256(key, b"KGY1-RES" + nonce + lid + cti + bytes((command,))
                           + counter.to_bytes(4, "big") + code.to_bytes(2, "big")
                           + bytes((state,)) + body_hash)


def length_prefixed(lock_id):
    """``u8(len(lock_id)) || lock_id`` (UTF-8)."""
    b = lock_id.encode()
    return bytes((len(b),)) + b
