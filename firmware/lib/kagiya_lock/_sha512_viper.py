"""SHA-512 (FIPS 180-4) with the compression function in viper (internal).

64-bit words are kept as (high, low) pairs of 32-bit halves, and additions are
done on 16-bit pieces, so the code is correct whether viper's machine word is
64 bits (unix) or 32 bits (ESP32): every value is masked with ``M`` = 2^32 - 1
(passed in as an argument, a no-op on 32-bit words). The schedule and state live
in preallocated arrays; a compression allocates nothing.
"""

import array
import struct

import micropython

from kagiya_lock._sha512_int import H0, K

# round constants as (high, low) 32-bit halves
# Viper converts any buffer to a ptr32/ptr8 argument at the call; the stubs type such a
# parameter as the pointer class, so the arrays passed to _compress are declared as
# pointers (the same objects).
_K: ptr32 = array.array("I", [0] * 160)  # type: ignore[assignment]
for _i in range(80):
    _K[2 * _i] = K[_i] >> 32
    _K[2 * _i + 1] = K[_i] & 0xFFFFFFFF
_W: ptr32 = array.array("I", [0] * 160)  # type: ignore[assignment]
_HS_ARRAY = array.array("I", [0] * 16)  # the hash state (16 halves) of the digest in progress
_HS: ptr32 = _HS_ARRAY  # type: ignore[assignment]
_M = 0xFFFFFFFF


@micropython.viper
def _compress(hs: ptr32, blk: ptr8, off: int, w: ptr32, k: ptr32, M: uint):
    """hs (16 halves) <- compression of the 128-byte block at blk[off:]."""
    for i in range(32):
        j = off + 4 * i
        w[i] = (uint(blk[j]) << 24) | (uint(blk[j + 1]) << 16) | (uint(blk[j + 2]) << 8) | uint(blk[j + 3])
    for t in range(16, 80):
        x1 = uint(w[2 * t - 30])  # W[t-15]
        x0 = uint(w[2 * t - 29])
        # sigma0 = rotr1 ^ rotr8 ^ shr7
        s1 = (((x1 >> 1) | (x0 << 31)) ^ ((x1 >> 8) | (x0 << 24)) ^ (x1 >> 7)) & M
        s0 = (((x0 >> 1) | (x1 << 31)) ^ ((x0 >> 8) | (x1 << 24)) ^ ((x0 >> 7) | (x1 << 25))) & M
        y1 = uint(w[2 * t - 4])  # W[t-2]
        y0 = uint(w[2 * t - 3])
        # sigma1 = rotr19 ^ rotr61 ^ shr6
        r1 = (((y1 >> 19) | (y0 << 13)) ^ ((y0 >> 29) | (y1 << 3)) ^ (y1 >> 6)) & M
        r0 = (((y0 >> 19) | (y1 << 13)) ^ ((y1 >> 29) | (y0 << 3)) ^ ((y0 >> 6) | (y1 << 26))) & M
        p0 = uint(w[2 * t - 13])  # W[t-7]
        q0 = uint(w[2 * t - 31])  # W[t-16]
        lo = (s0 & 0xFFFF) + (r0 & 0xFFFF) + (p0 & 0xFFFF) + (q0 & 0xFFFF)
        mid = (s0 >> 16) + (r0 >> 16) + (p0 >> 16) + (q0 >> 16) + (lo >> 16)
        w[2 * t + 1] = (lo & 0xFFFF) | ((mid & 0xFFFF) << 16)
        w[2 * t] = (s1 + r1 + uint(w[2 * t - 14]) + uint(w[2 * t - 32]) + (mid >> 16)) & M
    a1 = uint(hs[0])
    a0 = uint(hs[1])
    b1 = uint(hs[2])
    b0 = uint(hs[3])
    c1 = uint(hs[4])
    c0 = uint(hs[5])
    d1 = uint(hs[6])
    d0 = uint(hs[7])
    e1 = uint(hs[8])
    e0 = uint(hs[9])
    f1 = uint(hs[10])
    f0 = uint(hs[11])
    g1 = uint(hs[12])
    g0 = uint(hs[13])
    h1 = uint(hs[14])
    h0 = uint(hs[15])
    for t in range(80):
        # Sigma1(e) = rotr14 ^ rotr18 ^ rotr41
        s1 = (((e1 >> 14) | (e0 << 18)) ^ ((e1 >> 18) | (e0 << 14)) ^ ((e0 >> 9) | (e1 << 23))) & M
        s0 = (((e0 >> 14) | (e1 << 18)) ^ ((e0 >> 18) | (e1 << 14)) ^ ((e1 >> 9) | (e0 << 23))) & M
        ch1 = (e1 & f1) ^ ((e1 ^ M) & g1)
        ch0 = (e0 & f0) ^ ((e0 ^ M) & g0)
        k1 = uint(k[2 * t])
        k0 = uint(k[2 * t + 1])
        w1 = uint(w[2 * t])
        w0 = uint(w[2 * t + 1])
        lo = (h0 & 0xFFFF) + (s0 & 0xFFFF) + (ch0 & 0xFFFF) + (k0 & 0xFFFF) + (w0 & 0xFFFF)
        mid = (h0 >> 16) + (s0 >> 16) + (ch0 >> 16) + (k0 >> 16) + (w0 >> 16) + (lo >> 16)
        t0 = (lo & 0xFFFF) | ((mid & 0xFFFF) << 16)
        t1 = (h1 + s1 + ch1 + k1 + w1 + (mid >> 16)) & M
        # Sigma0(a) = rotr28 ^ rotr34 ^ rotr39
        s1 = (((a1 >> 28) | (a0 << 4)) ^ ((a0 >> 2) | (a1 << 30)) ^ ((a0 >> 7) | (a1 << 25))) & M
        s0 = (((a0 >> 28) | (a1 << 4)) ^ ((a1 >> 2) | (a0 << 30)) ^ ((a1 >> 7) | (a0 << 25))) & M
        mj1 = (a1 & b1) ^ (a1 & c1) ^ (b1 & c1)
        mj0 = (a0 & b0) ^ (a0 & c0) ^ (b0 & c0)
        h1 = g1
        h0 = g0
        g1 = f1
        g0 = f0
        f1 = e1
        f0 = e0
        # e = d + T1
        lo = (d0 & 0xFFFF) + (t0 & 0xFFFF)
        mid = (d0 >> 16) + (t0 >> 16) + (lo >> 16)
        e0 = (lo & 0xFFFF) | ((mid & 0xFFFF) << 16)
        e1 = (d1 + t1 + (mid >> 16)) & M
        d1 = c1
        d0 = c0
        c1 = b1
        c0 = b0
        b1 = a1
        b0 = a0
        # a = T1 + Sigma0 + Maj
        lo = (t0 & 0xFFFF) + (s0 & 0xFFFF) + (mj0 & 0xFFFF)
        mid = (t0 >> 16) + (s0 >> 16) + (mj0 >> 16) + (lo >> 16)
        a0 = (lo & 0xFFFF) | ((mid & 0xFFFF) << 16)
        a1 = (t1 + s1 + mj1 + (mid >> 16)) & M
    w[0] = a1
    w[1] = a0
    w[2] = b1
    w[3] = b0
    w[4] = c1
    w[5] = c0
    w[6] = d1
    w[7] = d0
    w[8] = e1
    w[9] = e0
    w[10] = f1
    w[11] = f0
    w[12] = g1
    w[13] = g0
    w[14] = h1
    w[15] = h0
    for i in range(0, 16, 2):
        x0 = uint(hs[i + 1])
        y0 = uint(w[i + 1])
        lo = (x0 & 0xFFFF) + (y0 & 0xFFFF)
        mid = (x0 >> 16) + (y0 >> 16) + (lo >> 16)
        hs[i + 1] = (lo & 0xFFFF) | ((mid & 0xFFFF) << 16)
        hs[i] = (uint(hs[i]) + uint(w[i]) + (mid >> 16)) & M


def sha512(data):
    """SHA-512 digest (64 bytes) of ``data``."""
    data = bytes(data)
    n = len(data)
    full = n - n % 128
    tail = data[full:] + b"\x80"
    tail += bytes((112 - len(tail)) % 128) + (n * 8).to_bytes(16, "big")
    hs = _HS
    for i in range(8):
        hs[2 * i] = H0[i] >> 32
        hs[2 * i + 1] = H0[i] & 0xFFFFFFFF
    for off in range(0, full, 128):
        _compress(hs, data, off, _W, _K, _M)
    for off in range(0, len(tail), 128):
        _compress(hs, tail, off, _W, _K, _M)
    return struct.pack(">16I", *_HS_ARRAY)
