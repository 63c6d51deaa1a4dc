"""AES-CCM (RFC 3610) on top of the port's AES block function ``cryptolib.aes(key, 1)``.

COSE alg 30 (AES-CCM-16-128-128, RFC 9053 §4.2) uses a 13-byte nonce (L = 2) and
a 16-byte tag; other RFC 3610 parameters (nonce 7..13 bytes, even tag 4..16) work too.
Keys are 16 or 32 bytes (AES-128 / AES-256).
"""

import cryptolib

from kagiya_lock.mac import compare_digest


def _check(key, nonce, tag_len):
    if len(key) not in (16, 32):
        raise ValueError("CCM key length")
    if not 7 <= len(nonce) <= 13:
        raise ValueError("CCM nonce length")
    if tag_len < 4 or tag_len > 16 or tag_len & 1:
        raise ValueError("CCM tag length")


def _xor(a, b):
    """a XOR b for equal-length byte strings (big-integer XOR: fast on MicroPython)."""
    n = len(a)
    if n == 0:
        return b""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big")


def _keystream(aes, nonce, n):
    """CTR blocks S_1.. (RFC 3610 §2.3) covering ``n`` bytes, and S_0."""
    q = 15 - len(nonce)
    flags = bytes((q - 1,))
    blocks = (n + 15) // 16
    ctr = bytearray()
    for i in range(blocks + 1):
        ctr += flags + nonce + i.to_bytes(q, "big")
    s = aes.encrypt(ctr)
    return s[:16], s[16:16 + n]


def _cbc_mac(aes, nonce, msg, aad, tag_len):
    """The authentication field T (RFC 3610 §2.2)."""
    q = 15 - len(nonce)
    if len(msg) >= 1 << (8 * q):
        raise ValueError("CCM message too long")
    flags = (0x40 if aad else 0) | (((tag_len - 2) // 2) << 3) | (q - 1)
    data = bytearray(bytes((flags,)) + nonce + len(msg).to_bytes(q, "big"))
    la = len(aad)
    if la:
        if la < 0xFF00:
            data += la.to_bytes(2, "big")
        else:
            data += b"\xff\xfe" + la.to_bytes(4, "big")
        data += aad
        data += bytes(-len(data) % 16)
    data += msg
    data += bytes(-len(data) % 16)
    x = bytes(16)
    for i in range(0, len(data), 16):
        x = aes.encrypt(_xor(x, data[i:i + 16]))
    return x[:tag_len]


def encrypt(key, nonce, plaintext, aad, tag_len=16):
    """CCM-encrypt ``plaintext``; returns ciphertext || tag (``tag_len`` bytes)."""
    key, nonce, plaintext, aad = bytes(key), bytes(nonce), bytes(plaintext), bytes(aad)
    _check(key, nonce, tag_len)
    aes = cryptolib.aes(key, 1)
    t = _cbc_mac(aes, nonce, plaintext, aad, tag_len)
    s0, s = _keystream(aes, nonce, len(plaintext))
    return _xor(plaintext, s) + _xor(t, s0[:tag_len])


def decrypt(key, nonce, data, aad, tag_len=16):
    """CCM-decrypt ciphertext || tag; returns the plaintext, or None if the tag is wrong.

    The tag comparison is constant-time. Parameter errors (key/nonce/tag sizes)
    raise ValueError; a ``data`` shorter than the tag returns None.
    """
    key, nonce, data, aad = bytes(key), bytes(nonce), bytes(data), bytes(aad)
    _check(key, nonce, tag_len)
    if len(data) < tag_len:
        return None
    aes = cryptolib.aes(key, 1)
    n = len(data) - tag_len
    s0, s = _keystream(aes, nonce, n)
    plaintext = _xor(data[:n], s)
    t = _cbc_mac(aes, nonce, plaintext, aad, tag_len)
    if not compare_digest(_xor(t, s0[:tag_len]), data[n:]):
        return None
    return plaintext
