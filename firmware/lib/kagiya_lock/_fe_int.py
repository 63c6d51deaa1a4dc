"""Curve25519 arithmetic with plain big integers (internal back end, any port).

Field GF(p), p = 2^255 - 19; twisted Edwards curve -x^2 + y^2 = 1 + d x^2 y^2
(RFC 8032 §5.1) in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z
(Hisil-Wong-Carter-Dawson 2008); Montgomery ladder for X25519 (RFC 7748 §5).

Every MicroPython big-integer operation allocates, so the cost is roughly the
number of operations: the formulas below keep that count low. Points are lists,
not tuples: building a tuple of 3+ items is anomalously slow (~5-20 us) on the
unix port measured here, a list costs ~0.4 us. Timing of
big-integer operations depends on operand sizes, so this back end is not
constant-time at the machine level; it has no secret-dependent branches.
"""

P = (1 << 255) - 19
MASK255 = (1 << 255) - 1
D = -121665 * pow(121666, P - 2, P) % P
D2 = 2 * D % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
BY = 4 * pow(5, P - 2, P) % P
BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202


def _recover_x(y, sign):
    """x with the given sign bit for ``y`` (RFC 8032 §5.1.3), or None."""
    y2 = y * y % P
    u = y2 - 1
    v = D * y2 + 1
    v3 = v * v % P * v % P
    x = u * v3 % P * pow(u * v3 % P * v3 % P * v % P, (P - 5) // 8, P) % P
    vx2 = v * x % P * x % P
    if vx2 != u % P:
        if vx2 != -u % P:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def decode(s):
    """Strict point decoding (RFC 8032 §5.1.3): None if y >= p or no such point."""
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= MASK255
    if y >= P:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    return [x, y, 1, x * y % P]


def encode(pt):
    """Canonical 32-byte encoding of an extended point (one inversion)."""
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x = x * zi % P
    y = y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _dbl(pt, want_t=True):
    """2P (dbl-2008-hwcd, a = -1); T is left 0 unless ``want_t`` (the next
    doubling does not read it, an addition does)."""
    x, y, z, _ = pt
    a = x * x % P
    b = y * y % P
    c = (z * z % P) << 1
    h = a + b
    e = x + y
    e = h - e * e % P
    g = a - b
    f = c + g
    return [e * f % P, g * h % P, f * g % P, e * h % P if want_t else 0]


def _add(pt, q):
    """P + Q with Q in cached form (Y-X, Y+X, 2dT, 2Z) (add-2008-hwcd-3)."""
    x, y, z, t = pt
    a = (y - x) * q[0] % P
    b = (y + x) * q[1] % P
    c = t * q[2] % P
    d = z * q[3] % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return [e * f % P, g * h % P, f * g % P, e * h % P]


def _cached(pt):
    x, y, z, t = pt
    return [(y - x) % P, (y + x) % P, D2 * t % P, 2 * z % P]


def _neg_cached(c):
    return [c[1], c[0], P - c[2], c[3]]


def _odd_multiples(pt, n):
    """Cached forms of P, 3P, 5P, ..., (2n-1)P and their negations."""
    p2 = _cached(_dbl(pt))
    out = [_cached(pt)]
    cur = pt
    for _ in range(n - 1):
        cur = _add(cur, p2)
        out.append(_cached(cur))
    return out, [_neg_cached(c) for c in out]


BASE = [BX, BY, 1, BX * BY % P]
_base_tab = None


def _base_table():
    global _base_tab
    if _base_tab is None:
        _base_tab = _odd_multiples(BASE, 32)
    return _base_tab


def _naf(k, w):
    """Width-w non-adjacent form of k >= 0, least significant digit first."""
    out = []
    half = 1 << (w - 1)
    full = 1 << w
    while k:
        if k & 1:
            d = k & (full - 1)
            if d >= half:
                d -= full
            k -= d
        else:
            d = 0
        out.append(d)
        k >>= 1
    return out


def dsm(s, k, a):
    """[s]B - [k]A (Straus over width-7 NAF of s, width-5 NAF of k)."""
    s_naf = _naf(s, 7)
    k_naf = _naf(k, 5)
    bpos, bneg = _base_table()
    # -A's table: negating A swaps the roles of the positive and negative tables
    aneg, apos = _odd_multiples(a, 8)
    q = [0, 1, 1, 0]
    n = max(len(s_naf), len(k_naf))
    started = False
    ns = len(s_naf)
    nk = len(k_naf)
    for i in range(n - 1, -1, -1):
        d = s_naf[i] if i < ns else 0
        dk = k_naf[i] if i < nk else 0
        if started:
            q = _dbl(q, d or dk)
        if d > 0:
            q = _add(q, bpos[d >> 1])
            started = True
        elif d < 0:
            q = _add(q, bneg[(-d) >> 1])
            started = True
        if dk > 0:
            q = _add(q, apos[dk >> 1])
            started = True
        elif dk < 0:
            q = _add(q, aneg[(-dk) >> 1])
            started = True
    return q


_base_win = None


def base_mul(k):
    """[k]B for a secret scalar k < 2^256: fixed 4-bit windows, no digit-dependent branch."""
    global _base_win
    if _base_win is None:
        tab = [_cached([0, 1, 1, 0])]
        cur = [0, 1, 1, 0]
        bc = _cached(BASE)
        for _ in range(15):
            cur = _add(cur, bc)
            tab.append(_cached(cur))
        _base_win = tab
    q = [0, 1, 1, 0]
    for i in range(252, -1, -4):
        q = _dbl(_dbl(_dbl(_dbl(q, False), False), False))
        q = _add(q, _base_win[(k >> i) & 15])
    return q


A24 = 121665


def x25519(k, u):
    """RFC 7748 §5 Montgomery ladder: k (clamped int), u (int) -> u-coordinate int."""
    x1 = u % P
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        kt = (k >> t) & 1
        swap ^= kt
        m = -swap
        dummy = m & (x2 ^ x3)
        x2 ^= dummy
        x3 ^= dummy
        dummy = m & (z2 ^ z3)
        z2 ^= dummy
        z3 ^= dummy
        swap = kt
        a = x2 + z2
        aa = a * a % P
        b = x2 - z2
        bb = b * b % P
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % P
        cb = c * b % P
        x3 = (da + cb) * (da + cb) % P
        t2 = da - cb
        z3 = x1 * (t2 * t2 % P) % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    m = -swap
    dummy = m & (x2 ^ x3)
    x2 ^= dummy
    dummy = m & (z2 ^ z3)
    z2 ^= dummy
    return x2 * pow(z2, P - 2, P) % P
