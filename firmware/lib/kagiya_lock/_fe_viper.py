"""Curve25519 group arithmetic on viper field code (internal back end).

The field layer is :mod:`kagiya_lock._fe_v64` (10 limbs of 26 bits, 64-bit viper
words: unix) or :mod:`kagiya_lock._fe_v32` (20 limbs of 13 bits, 32-bit words:
ESP32), picked by :mod:`kagiya_lock._fe_select`. Both keep a field element in a
20-word slot of ONE preallocated ``array('I')`` ``W`` and take word offsets into
it, so the hot loops allocate nothing.

Only the field operations, the NAF recoding and the masked table scan are viper;
the point formulas, the Straus loop and the ladder are bytecode calling them. A
viper function calling another one pays the same call as bytecode does, and native
code is several times the size of bytecode (docs/performance.md: the firmware must
stay under 64 KB of .mpy), so this costs little time and saves ~16 KB.

Group: twisted Edwards -x^2 + y^2 = 1 + d x^2 y^2 (RFC 8032 §5.1) in extended
coordinates (X:Y:Z:T) (Hisil, Wong, Carter, Dawson, "Twisted Edwards curves
revisited", 2008); table points in "cached" form (Y+X, Y-X, 2Z, 2dT).

* verify: Straus double-scalar multiplication [s]B - [k]A over width-5 NAF digits
  of both scalars (8 cached odd multiples each: of B, built once, and of A, per new
  key); doublings skip T when no addition follows; one inversion at the end.
  Variable time: every input of a verify is public.
* sign: 64 fixed 4-bit windows of odd signed digits (+-1, +-3, .. +-15: the same
  8-entry base-point table); the entry is read with a masked scan of all 8 and
  negated with masked swaps (no secret-dependent branch or index).
* X25519: the RFC 7748 §5 ladder with masked conditional swaps; its 14 field slots
  lie over the spare points ACC .. SEL.
* The workspace is 7.9 KB (issue 18, the 64 KB heap): it was 21.8 KB with a 32-entry
  verify table and a separate signing table, 11.6 KB with one 16-entry table (width-6
  NAF for S) and X25519 in a region of its own; the 8-entry table costs verify ~6
  additions (~2 %).

State lives in module globals (W): not re-entrant, which is fine on the lock (no
threads; nothing here yields to the asyncio loop).
"""

import array

import micropython
from micropython import const

from kagiya_lock import _fe_select

if _fe_select.WIDE:
    from kagiya_lock._fe_v64 import (
        fe_add, fe_copy, fe_cswap, fe_mul, fe_mul_small, fe_sq, fe_sqn, fe_sub,
    )
    from kagiya_lock._fe_v64 import fe_get as _get
    from kagiya_lock._fe_v64 import fe_set as _set
else:
    from kagiya_lock._fe_v32 import (
        fe_add, fe_copy, fe_cswap, fe_mul, fe_mul_small, fe_sq, fe_sqn, fe_sub,
    )
    from kagiya_lock._fe_v32 import fe_get as _get
    from kagiya_lock._fe_v32 import fe_set as _set

P = (1 << 255) - 19

# Workspace layout, in 32-bit words: a field element takes a 20-word slot, a
# point 80 words (X, Y, Z, T or, cached, Y+X, Y-X, 2Z, 2dT).
K_D = const(0)
K_D2 = const(20)
K_SQRTM1 = const(40)
T0 = const(60)  # 16 temporaries: T0 .. T0 + 300
ACC = const(380)  # accumulator point
PT = const(460)  # spare point
PT2 = const(540)  # spare point (the decoded public key)
SEL = const(620)  # the selected cached point
ATAB = const(700)  # 8 cached odd multiples of the public key
BTAB = const(1340)  # 8 cached odd multiples of B (verify and sign)
# X25519: x1, x2, z2, x3, z3 and 9 temporaries (280 words) over ACC .. SEL, which hold
# nothing between two calls (the tables ATAB and BTAB are not touched)
XL = const(380)
WORDS = const(1980)


@micropython.viper
def _zero(w: ptr32, n: int):
    """Clear the first ``n`` words of ``w``."""
    for i in range(n):
        w[i] = 0


# Filled from a sized iterable, the array is allocated once and written in place;
# array("I", bytes(4 * WORDS)) first built a bytes object as large, so the import
# needed twice the workspace (issue 18: the smallest heap the lock runs in).
_W_ARRAY = array.array("I", range(WORDS))
# Viper converts any buffer to a ptr32/ptr8 argument at the call; the stubs type such
# a parameter as the pointer class, so the buffers passed to viper code are declared as
# pointers once, here (the same objects).
W: ptr32 = _W_ARRAY  # type: ignore[assignment]
_zero(W, WORDS)


def fe_set(o, v):
    """Store the integer ``v`` (0 <= v < 2^255) at offset ``o`` of W."""
    _set(W, o, v)


def fe_get(o):
    """The field element at offset ``o`` of W, fully reduced."""
    return _get(W, o)


def _chain_2_250(z, t0, t1, t2, t3):
    """Common addition chain: t0 = z^11, t1 = z^(2^250 - 1) (ref10 layout)."""
    w = W
    fe_sq(w, t0, z)
    fe_sqn(w, t1, t0, 2)
    fe_mul(w, t1, z, t1)
    fe_mul(w, t0, t0, t1)
    fe_sq(w, t2, t0)
    fe_mul(w, t1, t1, t2)
    fe_sqn(w, t2, t1, 5)
    fe_mul(w, t1, t2, t1)
    fe_sqn(w, t2, t1, 10)
    fe_mul(w, t2, t2, t1)
    fe_sqn(w, t3, t2, 20)
    fe_mul(w, t2, t3, t2)
    fe_sqn(w, t2, t2, 10)
    fe_mul(w, t1, t2, t1)
    fe_sqn(w, t2, t1, 50)
    fe_mul(w, t2, t2, t1)
    fe_sqn(w, t3, t2, 100)
    fe_mul(w, t2, t3, t2)
    fe_sqn(w, t2, t2, 50)
    fe_mul(w, t1, t2, t1)


def fe_invert(o, z):
    """w[o] = w[z]^(p - 2) = 1 / w[z] (0 for 0). Uses T0+240 .. T0+300."""
    t0, t1, t2, t3 = T0 + 240, T0 + 260, T0 + 280, T0 + 300
    _chain_2_250(z, t0, t1, t2, t3)
    fe_sqn(W, t1, t1, 5)
    fe_mul(W, o, t1, t0)


def fe_pow22523(o, z):
    """w[o] = w[z]^((p - 5) / 8) (square-root helper, RFC 8032 §5.1.3)."""
    t0, t1, t2, t3 = T0 + 240, T0 + 260, T0 + 280, T0 + 300
    _chain_2_250(z, t0, t1, t2, t3)
    fe_sqn(W, t1, t1, 2)
    fe_mul(W, o, t1, z)


# ---------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------
def pt_dbl(w, r, p, want_t):
    """r = 2p (dbl-2008-hwcd, a = -1); T of r only if want_t. r may equal p."""
    a = T0
    b = T0 + 20
    c = T0 + 40
    h = T0 + 60
    e = T0 + 80
    g = T0 + 100
    fe_sq(w, a, p)
    fe_sq(w, b, p + 20)
    fe_sq(w, c, p + 40)
    fe_add(w, c, c, c)
    fe_add(w, e, p, p + 20)
    fe_sq(w, e, e)
    fe_add(w, h, a, b)
    fe_sub(w, e, h, e)
    fe_sub(w, g, a, b)
    fe_add(w, c, c, g)  # F
    fe_mul(w, r, e, c)
    fe_mul(w, r + 20, g, h)
    fe_mul(w, r + 40, c, g)
    if want_t:
        fe_mul(w, r + 60, e, h)


def pt_add(w, r, p, q, neg, want_t):
    """r = p + q (neg == 0) or p - q (neg == 1); q cached (add-2008-hwcd-3)."""
    a = T0 + 120
    b = T0 + 140
    c = T0 + 160
    d = T0 + 180
    e = T0 + 200
    h = T0 + 220
    fe_sub(w, a, p + 20, p)
    fe_add(w, b, p + 20, p)
    if neg:
        fe_mul(w, a, a, q)
        fe_mul(w, b, b, q + 20)
    else:
        fe_mul(w, a, a, q + 20)
        fe_mul(w, b, b, q)
    fe_mul(w, c, p + 60, q + 60)
    fe_mul(w, d, p + 40, q + 40)
    fe_sub(w, e, b, a)
    fe_add(w, h, b, a)
    if neg:
        fe_add(w, a, d, c)  # F
        fe_sub(w, b, d, c)  # G
    else:
        fe_sub(w, a, d, c)
        fe_add(w, b, d, c)
    fe_mul(w, r, e, a)
    fe_mul(w, r + 20, b, h)
    fe_mul(w, r + 40, a, b)
    if want_t:
        fe_mul(w, r + 60, e, h)


def pt_cached(w, c, p):
    """c = cached form (Y+X, Y-X, 2Z, 2dT) of the extended point p (c != p)."""
    fe_add(w, c, p + 20, p)
    fe_sub(w, c + 20, p + 20, p)
    fe_add(w, c + 40, p + 40, p + 40)
    fe_mul(w, c + 60, p + 60, K_D2)


@micropython.viper
def pt_select(w: ptr32, dst: int, tab: int, idx: int):
    """dst = tab[idx] (8 cached points): reads every entry, masks, no branch on idx."""
    for i in range(80):
        w[dst + i] = 0
    for j in range(8):
        mask = ((j ^ idx) - 1) >> 8  # -1 iff j == idx (any word size)
        base = tab + 80 * j
        for i in range(80):
            w[dst + i] = int(w[dst + i]) | (int(w[base + i]) & mask)


def pt_set_identity(o):
    fe_set(o, 0)
    fe_set(o + 20, 1)
    fe_set(o + 40, 1)
    fe_set(o + 60, 0)


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------
_D = -121665 * pow(121666, P - 2, P) % P
fe_set(K_D, _D)
fe_set(K_D2, 2 * _D % P)
fe_set(K_SQRTM1, pow(2, (P - 1) // 4, P))
_BY = 4 * pow(5, P - 2, P) % P
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202


def _load_point(o, x, y):
    fe_set(o, x)
    fe_set(o + 20, y)
    fe_set(o + 40, 1)
    fe_set(o + 60, x * y % P)


# ---------------------------------------------------------------------------
# Back-end interface used by ed25519.py / x25519.py (same as _fe_int)
# ---------------------------------------------------------------------------
_atab_key = None  # the public key whose multiples are in ATAB (the last verified)
_pending_key = None  # the key last decoded into PT2
_ATAB_READY = const(-1)


def decode(s):
    """Strict RFC 8032 §5.1.3 decoding into the spare point PT2; None if invalid.

    Returns the offset of the decoded point (valid until the next decode), or
    _ATAB_READY when ``s`` is the key of the previous verify: its multiples are
    still in ATAB (the lock verifies against 1-4 issuer keys, mostly the same).
    """
    global _pending_key
    if s == _atab_key:
        return _ATAB_READY
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    w = W
    u, v, v3, x, t = T0 + 120, T0 + 140, T0 + 160, T0 + 180, T0 + 200
    fe_set(PT2 + 20, y)
    fe_sq(w, u, PT2 + 20)  # y^2
    fe_mul(w, v, u, K_D)
    fe_set(t, 1)
    fe_sub(w, u, u, t)  # u = y^2 - 1
    fe_add(w, v, v, t)  # v = d y^2 + 1
    fe_sq(w, v3, v)
    fe_mul(w, v3, v3, v)  # v^3
    fe_sq(w, x, v3)
    fe_mul(w, x, x, v)
    fe_mul(w, x, x, u)  # u v^7
    fe_pow22523(x, x)
    fe_mul(w, x, x, v3)
    fe_mul(w, x, x, u)  # x = u v^3 (u v^7)^((p-5)/8)
    fe_sq(w, t, x)
    fe_mul(w, t, t, v)  # v x^2
    vx2 = fe_get(t)
    uu = fe_get(u)
    if vx2 != uu:
        if vx2 != (P - uu) % P:
            return None
        fe_mul(w, x, x, K_SQRTM1)
    xv = fe_get(x)
    if xv == 0 and sign:
        return None
    if xv & 1 != sign:
        xv = P - xv
    _load_point(PT2, xv, y)
    _pending_key = bytes(s)
    return PT2


def encode(p):
    """Canonical 32-byte encoding of the extended point at offset ``p``."""
    zi = T0 + 220
    fe_invert(zi, p + 40)
    fe_mul(W, T0 + 120, p, zi)
    fe_mul(W, T0 + 140, p + 20, zi)
    x = fe_get(T0 + 120)
    y = fe_get(T0 + 140)
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _odd_multiples(tab, p, n):
    """tab[i] = cached (2i+1)P for i < n (P at offset p; uses PT)."""
    w = W
    pt_cached(w, tab, p)
    pt_dbl(w, PT, p, 1)
    pt_cached(w, SEL, PT)
    fe_copy(w, PT, p)
    fe_copy(w, PT + 20, p + 20)
    fe_copy(w, PT + 40, p + 40)
    fe_copy(w, PT + 60, p + 60)
    for i in range(1, n):
        pt_add(w, PT, PT, SEL, 0, 1)
        pt_cached(w, tab + 80 * i, PT)


_have_btab = False


def _base_point(o):
    _load_point(o, _BX, _BY)


@micropython.viper
def _naf(out: ptr8, sc: ptr8, wd: int):
    """Width-``wd`` NAF of the 32-byte little-endian scalar ``sc`` into out[0..263]
    (signed digits as two's-complement bytes, least significant first)."""
    width = 1 << wd
    half = width >> 1
    for i in range(264):
        out[i] = 0
    pos = 0
    carry = 0
    while pos < 262:
        v = 0
        for j in range(wd):
            bit = pos + j
            if bit < 256:
                v |= ((int(sc[bit >> 3]) >> (bit & 7)) & 1) << j
        window = carry + v
        if window & 1 == 0:
            pos += 1
            continue
        if window < half:
            carry = 0
            out[pos] = window
        else:
            carry = 1
            out[pos] = (window - width) & 0xFF
        pos += wd


def _straus(w, sd, kd):
    """ACC = [s]B - [k]A from the NAF digit bytes of s and k (both width 5)."""
    started = 0
    i = 263
    while i >= 0:
        ds = int(sd[i])
        if ds > 127:
            ds -= 256
        dk = int(kd[i])
        if dk > 127:
            dk -= 256
        if started:
            want_t = 0
            if ds != 0 or dk != 0:
                want_t = 1
            pt_dbl(w, ACC, ACC, want_t)
        if ds > 0:
            pt_add(w, ACC, ACC, BTAB + 40 * (ds - 1), 0, 1)
            started = 1
        elif ds < 0:
            pt_add(w, ACC, ACC, BTAB + 40 * (-ds - 1), 1, 1)
            started = 1
        # subtracting [k]A: a positive digit subtracts, a negative one adds
        if dk > 0:
            pt_add(w, ACC, ACC, ATAB + 40 * (dk - 1), 1, 1)
            started = 1
        elif dk < 0:
            pt_add(w, ACC, ACC, ATAB + 40 * (-dk - 1), 0, 1)
            started = 1
        i -= 1


_SD: ptr8 = bytearray(264)  # type: ignore[assignment]  # see W
_KD: ptr8 = bytearray(264)  # type: ignore[assignment]  # see W


def _btab():
    """Build the base-point table once (uses ACC and PT)."""
    global _have_btab
    if not _have_btab:
        _base_point(ACC)
        _odd_multiples(BTAB, ACC, 8)
        _have_btab = True


def dsm(s, k, a):
    """[s]B - [k]A for s, k < 2^253 and the point at offset ``a``; returns ACC."""
    global _atab_key
    w = W
    _btab()
    if a != _ATAB_READY:
        _odd_multiples(ATAB, a, 8)
        _atab_key = _pending_key if a == PT2 else None
    pt_set_identity(ACC)
    _naf(_SD, s.to_bytes(32, "little"), 5)
    _naf(_KD, k.to_bytes(32, "little"), 5)
    _straus(w, _SD, _KD)
    return ACC


_L = (1 << 252) + 27742317777372353535851937790883648493


def _windows(w, k):
    """ACC = [k]B for an odd k < 2^256 in 64 fixed 4-bit windows of odd signed digits
    d = +-1 .. +-15 (k = sum d_i 16^i): each window adds the masked-scan entry |d| of
    BTAB, negated (Y+X and Y-X swapped, 2dT negated) by masked swaps when d < 0."""
    digits = bytearray(64)
    for i in range(63):
        d = (k & 31) - 16  # odd, since k stays odd
        k = (k - d) >> 4
        digits[i] = d & 0xFF
    digits[63] = k  # 1 .. 11 for k < 1.25 * 2^255
    zero = T0 + 300
    neg_t = T0 + 280
    fe_set(zero, 0)
    i = 63
    while i >= 0:
        pt_dbl(w, ACC, ACC, 0)
        pt_dbl(w, ACC, ACC, 0)
        pt_dbl(w, ACC, ACC, 0)
        pt_dbl(w, ACC, ACC, 1)
        d = digits[i]
        neg = d >> 7  # 1 iff the digit is negative (two's-complement byte)
        mag = (d ^ (0 - neg & 0xFF)) + neg & 0xFF  # |d|, branch-free
        pt_select(w, SEL, BTAB, mag >> 1)
        fe_cswap(w, SEL, SEL + 20, neg)
        fe_sub(w, neg_t, zero, SEL + 60)
        fe_cswap(w, SEL + 60, neg_t, neg)
        pt_add(w, ACC, ACC, SEL, 0, 1)
        i -= 1


def base_mul(k):
    """[k]B for a secret k < 2^255: k, or k + L when k is even (the same point, chosen
    by arithmetic, not a branch), in odd signed 4-bit windows (:func:`_windows`)."""
    if k >> 255:  # never for the lock's scalars (clamped, or reduced mod L)
        k %= _L
    _btab()
    pt_set_identity(ACC)
    _windows(W, k + _L * (1 - (k & 1)))
    return ACC


def _ladder(w, k, xl):
    """RFC 7748 §5 ladder on w[xl..]: x1, x2, z2, x3, z3 then 9 temporaries."""
    x1 = xl
    x2 = xl + 20
    z2 = xl + 40
    x3 = xl + 60
    z3 = xl + 80
    ta = xl + 100
    taa = xl + 120
    tb = xl + 140
    tbb = xl + 160
    te = xl + 180
    tc = xl + 200
    td = xl + 220
    tda = xl + 240
    tcb = xl + 260
    swap = 0
    t = 254
    while t >= 0:
        kt = (int(k[t >> 3]) >> (t & 7)) & 1
        swap ^= kt
        fe_cswap(w, x2, x3, swap)
        fe_cswap(w, z2, z3, swap)
        swap = kt
        fe_add(w, ta, x2, z2)
        fe_sq(w, taa, ta)
        fe_sub(w, tb, x2, z2)
        fe_sq(w, tbb, tb)
        fe_sub(w, te, taa, tbb)
        fe_add(w, tc, x3, z3)
        fe_sub(w, td, x3, z3)
        fe_mul(w, tda, td, ta)
        fe_mul(w, tcb, tc, tb)
        fe_add(w, x3, tda, tcb)
        fe_sq(w, x3, x3)
        fe_sub(w, z3, tda, tcb)
        fe_sq(w, z3, z3)
        fe_mul(w, z3, z3, x1)
        fe_mul(w, x2, taa, tbb)
        fe_mul_small(w, z2, te, 121665)
        fe_add(w, z2, z2, taa)
        fe_mul(w, z2, z2, te)
        t -= 1
    fe_cswap(w, x2, x3, swap)
    fe_cswap(w, z2, z3, swap)


def x25519(k, u):
    """RFC 7748 X25519 on ints: clamped scalar ``k``, u-coordinate ``u`` -> int."""
    fe_set(XL, u % P)
    fe_set(XL + 20, 1)
    fe_set(XL + 40, 0)
    fe_set(XL + 60, u % P)
    fe_set(XL + 80, 1)
    _ladder(W, k.to_bytes(32, "little"), XL)
    fe_invert(T0, XL + 40)
    fe_mul(W, T0, T0, XL + 20)
    return fe_get(T0)
