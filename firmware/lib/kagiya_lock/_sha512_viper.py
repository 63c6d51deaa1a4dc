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


# round constants as (high, low) 32-bit halves
# Viper converts any buffer to a ptr32/ptr8 argument at the call; the stubs type such a
# parameter as the pointer class, so the arrays passed to _compress are declared as
# pointers (the same objects).
# FIPS 180-4 §4.2.3 and §5.3.5 as big-endian bytes (the same values as _sha512_int.K and
# H0, checked by tests/firmware/test_crypto_sha512.py): importing the big-integer module
# for them kept 80 + 8 big integers and that module resident on every lock.
_KB = (
    b"\x42\x8a\x2f\x98\xd7\x28\xae\x22\x71\x37\x44\x91\x23\xef\x65\xcd\xb5\xc0\xfb\xcf\xec\x4d\x3b\x2f\xe9\xb5\xdb\xa5\x81\x89\xdb\xbc"
    b"\x39\x56\xc2\x5b\xf3\x48\xb5\x38\x59\xf1\x11\xf1\xb6\x05\xd0\x19\x92\x3f\x82\xa4\xaf\x19\x4f\x9b\xab\x1c\x5e\xd5\xda\x6d\x81\x18"
    b"\xd8\x07\xaa\x98\xa3\x03\x02\x42\x12\x83\x5b\x01\x45\x70\x6f\xbe\x24\x31\x85\xbe\x4e\xe4\xb2\x8c\x55\x0c\x7d\xc3\xd5\xff\xb4\xe2"
    b"\x72\xbe\x5d\x74\xf2\x7b\x89\x6f\x80\xde\xb1\xfe\x3b\x16\x96\xb1\x9b\xdc\x06\xa7\x25\xc7\x12\x35\xc1\x9b\xf1\x74\xcf\x69\x26\x94"
    b"\xe4\x9b\x69\xc1\x9e\xf1\x4a\xd2\xef\xbe\x47\x86\x38\x4f\x25\xe3\x0f\xc1\x9d\xc6\x8b\x8c\xd5\xb5\x24\x0c\xa1\xcc\x77\xac\x9c\x65"
    b"\x2d\xe9\x2c\x6f\x59\x2b\x02\x75\x4a\x74\x84\xaa\x6e\xa6\xe4\x83\x5c\xb0\xa9\xdc\xbd\x41\xfb\xd4\x76\xf9\x88\xda\x83\x11\x53\xb5"
    b"\x98\x3e\x51\x52\xee\x66\xdf\xab\xa8\x31\xc6\x6d\x2d\xb4\x32\x10\xb0\x03\x27\xc8\x98\xfb\x21\x3f\xbf\x59\x7f\xc7\xbe\xef\x0e\xe4"
    b"\xc6\xe0\x0b\xf3\x3d\xa8\x8f\xc2\xd5\xa7\x91\x47\x93\x0a\xa7\x25\x06\xca\x63\x51\xe0\x03\x82\x6f\x14\x29\x29\x67\x0a\x0e\x6e\x70"
    b"\x27\xb7\x0a\x85\x46\xd2\x2f\xfc\x2e\x1b\x21\x38\x5c\x26\xc9\x26\x4d\x2c\x6d\xfc\x5a\xc4\x2a\xed\x53\x38\x0d\x13\x9d\x95\xb3\xdf"
    b"\x65\x0a\x73\x54\x8b\xaf\x63\xde\x76\x6a\x0a\xbb\x3c\x77\xb2\xa8\x81\xc2\xc9\x2e\x47\xed\xae\xe6\x92\x72\x2c\x85\x14\x82\x35\x3b"
    b"\xa2\xbf\xe8\xa1\x4c\xf1\x03\x64\xa8\x1a\x66\x4b\xbc\x42\x30\x01\xc2\x4b\x8b\x70\xd0\xf8\x97\x91\xc7\x6c\x51\xa3\x06\x54\xbe\x30"
    b"\xd1\x92\xe8\x19\xd6\xef\x52\x18\xd6\x99\x06\x24\x55\x65\xa9\x10\xf4\x0e\x35\x85\x57\x71\x20\x2a\x10\x6a\xa0\x70\x32\xbb\xd1\xb8"
    b"\x19\xa4\xc1\x16\xb8\xd2\xd0\xc8\x1e\x37\x6c\x08\x51\x41\xab\x53\x27\x48\x77\x4c\xdf\x8e\xeb\x99\x34\xb0\xbc\xb5\xe1\x9b\x48\xa8"
    b"\x39\x1c\x0c\xb3\xc5\xc9\x5a\x63\x4e\xd8\xaa\x4a\xe3\x41\x8a\xcb\x5b\x9c\xca\x4f\x77\x63\xe3\x73\x68\x2e\x6f\xf3\xd6\xb2\xb8\xa3"
    b"\x74\x8f\x82\xee\x5d\xef\xb2\xfc\x78\xa5\x63\x6f\x43\x17\x2f\x60\x84\xc8\x78\x14\xa1\xf0\xab\x72\x8c\xc7\x02\x08\x1a\x64\x39\xec"
    b"\x90\xbe\xff\xfa\x23\x63\x1e\x28\xa4\x50\x6c\xeb\xde\x82\xbd\xe9\xbe\xf9\xa3\xf7\xb2\xc6\x79\x15\xc6\x71\x78\xf2\xe3\x72\x53\x2b"
    b"\xca\x27\x3e\xce\xea\x26\x61\x9c\xd1\x86\xb8\xc7\x21\xc0\xc2\x07\xea\xda\x7d\xd6\xcd\xe0\xeb\x1e\xf5\x7d\x4f\x7f\xee\x6e\xd1\x78"
    b"\x06\xf0\x67\xaa\x72\x17\x6f\xba\x0a\x63\x7d\xc5\xa2\xc8\x98\xa6\x11\x3f\x98\x04\xbe\xf9\x0d\xae\x1b\x71\x0b\x35\x13\x1c\x47\x1b"
    b"\x28\xdb\x77\xf5\x23\x04\x7d\x84\x32\xca\xab\x7b\x40\xc7\x24\x93\x3c\x9e\xbe\x0a\x15\xc9\xbe\xbc\x43\x1d\x67\xc4\x9c\x10\x0d\x4c"
    b"\x4c\xc5\xd4\xbe\xcb\x3e\x42\xb6\x59\x7f\x29\x9c\xfc\x65\x7e\x2a\x5f\xcb\x6f\xab\x3a\xd6\xfa\xec\x6c\x44\x19\x8c\x4a\x47\x58\x17"
)
_H0B = (
    b"\x6a\x09\xe6\x67\xf3\xbc\xc9\x08\xbb\x67\xae\x85\x84\xca\xa7\x3b\x3c\x6e\xf3\x72\xfe\x94\xf8\x2b\xa5\x4f\xf5\x3a\x5f\x1d\x36\xf1"
    b"\x51\x0e\x52\x7f\xad\xe6\x82\xd1\x9b\x05\x68\x8c\x2b\x3e\x6c\x1f\x1f\x83\xd9\xab\xfb\x41\xbd\x6b\x5b\xe0\xcd\x19\x13\x7e\x21\x79"
)
_K: ptr32 = array.array("I", [0] * 160)  # type: ignore[assignment]
for _i in range(160):
    _K[_i] = struct.unpack_from(">I", _KB, 4 * _i)[0]
_H0 = array.array("I", struct.unpack(">16I", _H0B))  # the initial state as 16 halves
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
    for i in range(16):
        hs[i] = _H0[i]
    for off in range(0, full, 128):
        _compress(hs, data, off, _W, _K, _M)
    for off in range(0, len(tail), 128):
        _compress(hs, tail, off, _W, _K, _M)
    return struct.pack(">16I", *_HS_ARRAY)
