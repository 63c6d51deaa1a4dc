"""Curve25519 field and group arithmetic in viper (internal back end, 64-bit ports).

Field elements of GF(2^255 - 19) are 10 unsigned limbs in radix 2^25.5 (limb i
holds bits ceil(25.5 i) .. ceil(25.5 (i + 1)) - 1: 26, 25, 26, 25, ... bits),
the representation of the ref10 Ed25519 code (Bernstein et al., "High-speed
high-security signatures", 2011). Every limb lives in ONE preallocated array of
32-bit words, ``W``; functions take word offsets into it, so the hot loops
allocate nothing. Products of two limbs (< 2^27 each) times 38 stay below 2^63:
this needs viper ints of 64 bits, so :mod:`kagiya_lock._fe_select` only picks
this module where ``sys.maxsize`` says so (unix port); 32-bit ports (ESP32) use
:mod:`kagiya_lock._fe_int`.

Every add/sub/mul result is carried back to limbs < 2^26 / 2^25 (+ a tiny excess
in limb 1), so any result can feed any operation. Subtraction adds 2p first, so
limbs never go negative. Values are reduced mod p only when read back as ints.

Group: twisted Edwards -x^2 + y^2 = 1 + d x^2 y^2 in extended coordinates
(X:Y:Z:T) (Hisil, Wong, Carter, Dawson 2008); table points in "cached" form
(Y+X, Y-X, 2Z, 2dT). Verification uses a Straus double-scalar multiplication
over width-7 (base point, 32-entry table built once) and width-5 (A, 8 entries
per call) NAF digits with one inversion at the end. Signing uses fixed 4-bit
windows with a constant-time (masked) table scan. X25519 is the RFC 7748
ladder with masked conditional swaps, all inside one viper function.
"""

import array

import micropython
from micropython import const

P = (1 << 255) - 19

# ---------------------------------------------------------------------------
# Workspace layout (offsets in 32-bit words; a field element is 10 words, a
# point 40 words: X, Y, Z, T or, for cached points, Y+X, Y-X, 2Z, 2dT)
# ---------------------------------------------------------------------------
K_D = const(0)
K_D2 = const(10)
K_SQRTM1 = const(20)
T0 = const(40)  # 16 temporaries T0 .. T0 + 150
ACC = const(200)  # accumulator point
PT = const(240)  # spare point
PT2 = const(280)  # spare point
ATAB = const(320)  # 8 cached odd multiples of the public key
BTAB = const(ATAB + 8 * 40)  # 32 cached odd multiples of B
WTAB = const(BTAB + 32 * 40)  # 16 cached multiples 0..15 of B (signing)
SEL = const(WTAB + 16 * 40)  # the selected cached point (signing)
XL = const(SEL + 40)  # X25519: x1, x2, z2, x3, z3 and 9 temporaries
WORDS = const(XL + 14 * 10)

W = array.array("I", bytes(4 * WORDS))

_OFFS = (0, 26, 51, 77, 102, 128, 153, 179, 204, 230)
_SIZES = (26, 25, 26, 25, 26, 25, 26, 25, 26, 25)


def fe_set(o, v):
    """Store the integer ``v`` (0 <= v < 2^255) at word offset ``o``."""
    w = W
    for i in range(10):
        w[o + i] = (v >> _OFFS[i]) & ((1 << _SIZES[i]) - 1)


def fe_get(o):
    """The field element at ``o`` as a fully reduced integer."""
    w = W
    v = 0
    for i in range(9, -1, -1):
        v = (v << _SIZES[i]) | w[o + i]
    return v % P


@micropython.viper
def fe_mul(w: ptr32, o: int, a: int, b: int):
    """w[o] = w[a] * w[b] (10 limbs each; any of o, a, b may coincide)."""
    f0 = int(w[a + 0])
    f1 = int(w[a + 1])
    f2 = int(w[a + 2])
    f3 = int(w[a + 3])
    f4 = int(w[a + 4])
    f5 = int(w[a + 5])
    f6 = int(w[a + 6])
    f7 = int(w[a + 7])
    f8 = int(w[a + 8])
    f9 = int(w[a + 9])
    g0 = int(w[b + 0])
    g1 = int(w[b + 1])
    g2 = int(w[b + 2])
    g3 = int(w[b + 3])
    g4 = int(w[b + 4])
    g5 = int(w[b + 5])
    g6 = int(w[b + 6])
    g7 = int(w[b + 7])
    g8 = int(w[b + 8])
    g9 = int(w[b + 9])
    g1_19 = g1 * 19
    g2_19 = g2 * 19
    g3_19 = g3 * 19
    g4_19 = g4 * 19
    g5_19 = g5 * 19
    g6_19 = g6 * 19
    g7_19 = g7 * 19
    g8_19 = g8 * 19
    g9_19 = g9 * 19
    f1_2 = f1 * 2
    f3_2 = f3 * 2
    f5_2 = f5 * 2
    f7_2 = f7 * 2
    f9_2 = f9 * 2
    h0 = f0 * g0 + f1_2 * g9_19 + f2 * g8_19 + f3_2 * g7_19
    h0 += f4 * g6_19 + f5_2 * g5_19 + f6 * g4_19 + f7_2 * g3_19
    h0 += f8 * g2_19 + f9_2 * g1_19
    h1 = f0 * g1 + f1 * g0 + f2 * g9_19 + f3 * g8_19
    h1 += f4 * g7_19 + f5 * g6_19 + f6 * g5_19 + f7 * g4_19
    h1 += f8 * g3_19 + f9 * g2_19
    h2 = f0 * g2 + f1_2 * g1 + f2 * g0 + f3_2 * g9_19
    h2 += f4 * g8_19 + f5_2 * g7_19 + f6 * g6_19 + f7_2 * g5_19
    h2 += f8 * g4_19 + f9_2 * g3_19
    h3 = f0 * g3 + f1 * g2 + f2 * g1 + f3 * g0
    h3 += f4 * g9_19 + f5 * g8_19 + f6 * g7_19 + f7 * g6_19
    h3 += f8 * g5_19 + f9 * g4_19
    h4 = f0 * g4 + f1_2 * g3 + f2 * g2 + f3_2 * g1
    h4 += f4 * g0 + f5_2 * g9_19 + f6 * g8_19 + f7_2 * g7_19
    h4 += f8 * g6_19 + f9_2 * g5_19
    h5 = f0 * g5 + f1 * g4 + f2 * g3 + f3 * g2
    h5 += f4 * g1 + f5 * g0 + f6 * g9_19 + f7 * g8_19
    h5 += f8 * g7_19 + f9 * g6_19
    h6 = f0 * g6 + f1_2 * g5 + f2 * g4 + f3_2 * g3
    h6 += f4 * g2 + f5_2 * g1 + f6 * g0 + f7_2 * g9_19
    h6 += f8 * g8_19 + f9_2 * g7_19
    h7 = f0 * g7 + f1 * g6 + f2 * g5 + f3 * g4
    h7 += f4 * g3 + f5 * g2 + f6 * g1 + f7 * g0
    h7 += f8 * g9_19 + f9 * g8_19
    h8 = f0 * g8 + f1_2 * g7 + f2 * g6 + f3_2 * g5
    h8 += f4 * g4 + f5_2 * g3 + f6 * g2 + f7_2 * g1
    h8 += f8 * g0 + f9_2 * g9_19
    h9 = f0 * g9 + f1 * g8 + f2 * g7 + f3 * g6
    h9 += f4 * g5 + f5 * g4 + f6 * g3 + f7 * g2
    h9 += f8 * g1 + f9 * g0
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    c = h1 >> 25
    h1 &= 0x1ffffff
    h2 += c
    c = h2 >> 26
    h2 &= 0x3ffffff
    h3 += c
    c = h3 >> 25
    h3 &= 0x1ffffff
    h4 += c
    c = h4 >> 26
    h4 &= 0x3ffffff
    h5 += c
    c = h5 >> 25
    h5 &= 0x1ffffff
    h6 += c
    c = h6 >> 26
    h6 &= 0x3ffffff
    h7 += c
    c = h7 >> 25
    h7 &= 0x1ffffff
    h8 += c
    c = h8 >> 26
    h8 &= 0x3ffffff
    h9 += c
    c = h9 >> 25
    h9 &= 0x1FFFFFF
    h0 += c * 19
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    w[o + 0] = h0
    w[o + 1] = h1
    w[o + 2] = h2
    w[o + 3] = h3
    w[o + 4] = h4
    w[o + 5] = h5
    w[o + 6] = h6
    w[o + 7] = h7
    w[o + 8] = h8
    w[o + 9] = h9



@micropython.viper
def fe_sq(w: ptr32, o: int, a: int):
    """w[o] = w[a]^2."""
    f0 = int(w[a + 0])
    f1 = int(w[a + 1])
    f2 = int(w[a + 2])
    f3 = int(w[a + 3])
    f4 = int(w[a + 4])
    f5 = int(w[a + 5])
    f6 = int(w[a + 6])
    f7 = int(w[a + 7])
    f8 = int(w[a + 8])
    f9 = int(w[a + 9])
    f0_2 = f0 * 2
    f1_2 = f1 * 2
    f1_4 = f1 * 4
    f1_76 = f1 * 76
    f2_2 = f2 * 2
    f2_38 = f2 * 38
    f3_2 = f3 * 2
    f3_4 = f3 * 4
    f3_38 = f3 * 38
    f3_76 = f3 * 76
    f4_2 = f4 * 2
    f4_38 = f4 * 38
    f5_38 = f5 * 38
    f5_76 = f5 * 76
    f6_19 = f6 * 19
    f6_38 = f6 * 38
    f7_38 = f7 * 38
    f7_76 = f7 * 76
    f8_19 = f8 * 19
    f8_38 = f8 * 38
    f9_38 = f9 * 38
    h0 = f0 * f0 + f1_76 * f9 + f2_38 * f8 + f3_76 * f7
    h0 += f4_38 * f6 + f5_38 * f5
    h1 = f0_2 * f1 + f2_38 * f9 + f3_38 * f8 + f4_38 * f7
    h1 += f5_38 * f6
    h2 = f0_2 * f2 + f1_2 * f1 + f3_76 * f9 + f4_38 * f8
    h2 += f5_76 * f7 + f6_19 * f6
    h3 = f0_2 * f3 + f1_2 * f2 + f4_38 * f9 + f5_38 * f8
    h3 += f6_38 * f7
    h4 = f0_2 * f4 + f1_4 * f3 + f2 * f2 + f5_76 * f9
    h4 += f6_38 * f8 + f7_38 * f7
    h5 = f0_2 * f5 + f1_2 * f4 + f2_2 * f3 + f6_38 * f9
    h5 += f7_38 * f8
    h6 = f0_2 * f6 + f1_4 * f5 + f2_2 * f4 + f3_2 * f3
    h6 += f7_76 * f9 + f8_19 * f8
    h7 = f0_2 * f7 + f1_2 * f6 + f2_2 * f5 + f3_2 * f4
    h7 += f8_38 * f9
    h8 = f0_2 * f8 + f1_4 * f7 + f2_2 * f6 + f3_4 * f5
    h8 += f4 * f4 + f9_38 * f9
    h9 = f0_2 * f9 + f1_2 * f8 + f2_2 * f7 + f3_2 * f6
    h9 += f4_2 * f5
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    c = h1 >> 25
    h1 &= 0x1ffffff
    h2 += c
    c = h2 >> 26
    h2 &= 0x3ffffff
    h3 += c
    c = h3 >> 25
    h3 &= 0x1ffffff
    h4 += c
    c = h4 >> 26
    h4 &= 0x3ffffff
    h5 += c
    c = h5 >> 25
    h5 &= 0x1ffffff
    h6 += c
    c = h6 >> 26
    h6 &= 0x3ffffff
    h7 += c
    c = h7 >> 25
    h7 &= 0x1ffffff
    h8 += c
    c = h8 >> 26
    h8 &= 0x3ffffff
    h9 += c
    c = h9 >> 25
    h9 &= 0x1FFFFFF
    h0 += c * 19
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    w[o + 0] = h0
    w[o + 1] = h1
    w[o + 2] = h2
    w[o + 3] = h3
    w[o + 4] = h4
    w[o + 5] = h5
    w[o + 6] = h6
    w[o + 7] = h7
    w[o + 8] = h8
    w[o + 9] = h9



@micropython.viper
def fe_add(w: ptr32, o: int, a: int, b: int):
    """w[o] = w[a] + w[b]."""
    h0 = int(w[a + 0]) + int(w[b + 0])
    h1 = int(w[a + 1]) + int(w[b + 1])
    h2 = int(w[a + 2]) + int(w[b + 2])
    h3 = int(w[a + 3]) + int(w[b + 3])
    h4 = int(w[a + 4]) + int(w[b + 4])
    h5 = int(w[a + 5]) + int(w[b + 5])
    h6 = int(w[a + 6]) + int(w[b + 6])
    h7 = int(w[a + 7]) + int(w[b + 7])
    h8 = int(w[a + 8]) + int(w[b + 8])
    h9 = int(w[a + 9]) + int(w[b + 9])
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    c = h1 >> 25
    h1 &= 0x1ffffff
    h2 += c
    c = h2 >> 26
    h2 &= 0x3ffffff
    h3 += c
    c = h3 >> 25
    h3 &= 0x1ffffff
    h4 += c
    c = h4 >> 26
    h4 &= 0x3ffffff
    h5 += c
    c = h5 >> 25
    h5 &= 0x1ffffff
    h6 += c
    c = h6 >> 26
    h6 &= 0x3ffffff
    h7 += c
    c = h7 >> 25
    h7 &= 0x1ffffff
    h8 += c
    c = h8 >> 26
    h8 &= 0x3ffffff
    h9 += c
    c = h9 >> 25
    h9 &= 0x1FFFFFF
    h0 += c * 19
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    w[o + 0] = h0
    w[o + 1] = h1
    w[o + 2] = h2
    w[o + 3] = h3
    w[o + 4] = h4
    w[o + 5] = h5
    w[o + 6] = h6
    w[o + 7] = h7
    w[o + 8] = h8
    w[o + 9] = h9



@micropython.viper
def fe_sub(w: ptr32, o: int, a: int, b: int):
    """w[o] = w[a] - w[b] (as w[a] + 2p - w[b])."""
    h0 = int(w[a + 0]) + 0x7ffffda - int(w[b + 0])
    h1 = int(w[a + 1]) + 0x3fffffe - int(w[b + 1])
    h2 = int(w[a + 2]) + 0x7fffffe - int(w[b + 2])
    h3 = int(w[a + 3]) + 0x3fffffe - int(w[b + 3])
    h4 = int(w[a + 4]) + 0x7fffffe - int(w[b + 4])
    h5 = int(w[a + 5]) + 0x3fffffe - int(w[b + 5])
    h6 = int(w[a + 6]) + 0x7fffffe - int(w[b + 6])
    h7 = int(w[a + 7]) + 0x3fffffe - int(w[b + 7])
    h8 = int(w[a + 8]) + 0x7fffffe - int(w[b + 8])
    h9 = int(w[a + 9]) + 0x3fffffe - int(w[b + 9])
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    c = h1 >> 25
    h1 &= 0x1ffffff
    h2 += c
    c = h2 >> 26
    h2 &= 0x3ffffff
    h3 += c
    c = h3 >> 25
    h3 &= 0x1ffffff
    h4 += c
    c = h4 >> 26
    h4 &= 0x3ffffff
    h5 += c
    c = h5 >> 25
    h5 &= 0x1ffffff
    h6 += c
    c = h6 >> 26
    h6 &= 0x3ffffff
    h7 += c
    c = h7 >> 25
    h7 &= 0x1ffffff
    h8 += c
    c = h8 >> 26
    h8 &= 0x3ffffff
    h9 += c
    c = h9 >> 25
    h9 &= 0x1FFFFFF
    h0 += c * 19
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    w[o + 0] = h0
    w[o + 1] = h1
    w[o + 2] = h2
    w[o + 3] = h3
    w[o + 4] = h4
    w[o + 5] = h5
    w[o + 6] = h6
    w[o + 7] = h7
    w[o + 8] = h8
    w[o + 9] = h9



@micropython.viper
def fe_mul_small(w: ptr32, o: int, a: int, k: int):
    """w[o] = w[a] * k for 0 <= k < 2^20."""
    h0 = int(w[a + 0]) * k
    h1 = int(w[a + 1]) * k
    h2 = int(w[a + 2]) * k
    h3 = int(w[a + 3]) * k
    h4 = int(w[a + 4]) * k
    h5 = int(w[a + 5]) * k
    h6 = int(w[a + 6]) * k
    h7 = int(w[a + 7]) * k
    h8 = int(w[a + 8]) * k
    h9 = int(w[a + 9]) * k
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    c = h1 >> 25
    h1 &= 0x1ffffff
    h2 += c
    c = h2 >> 26
    h2 &= 0x3ffffff
    h3 += c
    c = h3 >> 25
    h3 &= 0x1ffffff
    h4 += c
    c = h4 >> 26
    h4 &= 0x3ffffff
    h5 += c
    c = h5 >> 25
    h5 &= 0x1ffffff
    h6 += c
    c = h6 >> 26
    h6 &= 0x3ffffff
    h7 += c
    c = h7 >> 25
    h7 &= 0x1ffffff
    h8 += c
    c = h8 >> 26
    h8 &= 0x3ffffff
    h9 += c
    c = h9 >> 25
    h9 &= 0x1FFFFFF
    h0 += c * 19
    c = h0 >> 26
    h0 &= 0x3ffffff
    h1 += c
    w[o + 0] = h0
    w[o + 1] = h1
    w[o + 2] = h2
    w[o + 3] = h3
    w[o + 4] = h4
    w[o + 5] = h5
    w[o + 6] = h6
    w[o + 7] = h7
    w[o + 8] = h8
    w[o + 9] = h9



@micropython.viper
def fe_copy(w: ptr32, o: int, a: int):
    """w[o] = w[a]."""
    for i in range(10):
        w[o + i] = w[a + i]


@micropython.viper
def fe_cswap(w: ptr32, a: int, b: int, swap: int):
    """Swap w[a] and w[b] iff swap == 1, without a branch on ``swap``."""
    mask = 0 - swap
    for i in range(10):
        x = int(w[a + i])
        y = int(w[b + i])
        t = (x ^ y) & mask
        w[a + i] = x ^ t
        w[b + i] = y ^ t


@micropython.viper
def fe_sqn(w: ptr32, o: int, a: int, n: int):
    """w[o] = w[a]^(2^n), n >= 1."""
    fe_sq(w, o, a)
    for _ in range(n - 1):
        fe_sq(w, o, o)


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
    """w[o] = w[z]^(p - 2) = 1 / w[z] (0 for 0). Uses T0+120 .. T0+150."""
    t0, t1, t2, t3 = T0 + 120, T0 + 130, T0 + 140, T0 + 150
    _chain_2_250(z, t0, t1, t2, t3)
    fe_sqn(W, t1, t1, 5)
    fe_mul(W, o, t1, t0)


def fe_pow22523(o, z):
    """w[o] = w[z]^((p - 5) / 8) (square-root helper, RFC 8032 §5.1.3)."""
    t0, t1, t2, t3 = T0 + 120, T0 + 130, T0 + 140, T0 + 150
    _chain_2_250(z, t0, t1, t2, t3)
    fe_sqn(W, t1, t1, 2)
    fe_mul(W, o, t1, z)


# ---------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------
@micropython.viper
def pt_dbl(w: ptr32, r: int, p: int, want_t: int):
    """r = 2p (dbl-2008-hwcd, a = -1); T of r only if want_t. r may equal p."""
    a = T0
    b = T0 + 10
    c = T0 + 20
    h = T0 + 30
    e = T0 + 40
    g = T0 + 50
    fe_sq(w, a, p)
    fe_sq(w, b, p + 10)
    fe_sq(w, c, p + 20)
    fe_add(w, c, c, c)
    fe_add(w, e, p, p + 10)
    fe_sq(w, e, e)
    fe_add(w, h, a, b)
    fe_sub(w, e, h, e)
    fe_sub(w, g, a, b)
    fe_add(w, c, c, g)  # F
    fe_mul(w, r, e, c)
    fe_mul(w, r + 10, g, h)
    fe_mul(w, r + 20, c, g)
    if want_t:
        fe_mul(w, r + 30, e, h)


@micropython.viper
def pt_add(w: ptr32, r: int, p: int, q: int, neg: int, want_t: int):
    """r = p + q (neg == 0) or p - q (neg == 1); q cached (add-2008-hwcd-3)."""
    a = T0 + 60
    b = T0 + 70
    c = T0 + 80
    d = T0 + 90
    e = T0 + 100
    h = T0 + 110
    fe_sub(w, a, p + 10, p)
    fe_add(w, b, p + 10, p)
    if neg:
        fe_mul(w, a, a, q)
        fe_mul(w, b, b, q + 10)
    else:
        fe_mul(w, a, a, q + 10)
        fe_mul(w, b, b, q)
    fe_mul(w, c, p + 30, q + 30)
    fe_mul(w, d, p + 20, q + 20)
    fe_sub(w, e, b, a)
    fe_add(w, h, b, a)
    if neg:
        fe_add(w, a, d, c)  # F
        fe_sub(w, b, d, c)  # G
    else:
        fe_sub(w, a, d, c)
        fe_add(w, b, d, c)
    fe_mul(w, r, e, a)
    fe_mul(w, r + 10, b, h)
    fe_mul(w, r + 20, a, b)
    if want_t:
        fe_mul(w, r + 30, e, h)


@micropython.viper
def pt_cached(w: ptr32, c: int, p: int):
    """c = cached form (Y+X, Y-X, 2Z, 2dT) of the extended point p (c != p)."""
    fe_add(w, c, p + 10, p)
    fe_sub(w, c + 10, p + 10, p)
    fe_add(w, c + 20, p + 20, p + 20)
    fe_mul(w, c + 30, p + 30, K_D2)


@micropython.viper
def pt_select(w: ptr32, dst: int, tab: int, idx: int):
    """dst = tab[idx] (16 cached points): reads every entry, masks, no branch on idx."""
    for i in range(40):
        w[dst + i] = 0
    for j in range(16):
        mask = ((j ^ idx) - 1) >> 63  # -1 iff j == idx (64-bit words)
        base = tab + 40 * j
        for i in range(40):
            w[dst + i] = int(w[dst + i]) | (int(w[base + i]) & mask)


def pt_set_identity(o):
    fe_set(o, 0)
    fe_set(o + 10, 1)
    fe_set(o + 20, 1)
    fe_set(o + 30, 0)


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
    fe_set(o + 10, y)
    fe_set(o + 20, 1)
    fe_set(o + 30, x * y % P)


# ---------------------------------------------------------------------------
# Back-end interface used by ed25519.py / x25519.py (same as _fe_int)
# ---------------------------------------------------------------------------
def decode(s):
    """Strict RFC 8032 §5.1.3 decoding into the spare point PT2; None if invalid.

    Returns the offset of the decoded point (valid until the next decode).
    """
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    w = W
    u, v, v3, x, t = T0 + 60, T0 + 70, T0 + 80, T0 + 90, T0 + 100
    fe_set(PT2 + 10, y)
    fe_sq(w, u, PT2 + 10)  # y^2
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
    return PT2


def encode(p):
    """Canonical 32-byte encoding of the extended point at offset ``p``."""
    zi = T0 + 110
    fe_invert(zi, p + 20)
    fe_mul(W, T0 + 60, p, zi)
    fe_mul(W, T0 + 70, p + 10, zi)
    x = fe_get(T0 + 60)
    y = fe_get(T0 + 70)
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _odd_multiples(tab, p, n):
    """tab[i] = cached (2i+1)P for i < n (P at offset p; uses PT)."""
    w = W
    pt_cached(w, tab, p)
    pt_dbl(w, PT, p, 1)
    pt_cached(w, SEL, PT)
    fe_copy(w, PT, p)
    fe_copy(w, PT + 10, p + 10)
    fe_copy(w, PT + 20, p + 20)
    fe_copy(w, PT + 30, p + 30)
    for i in range(1, n):
        pt_add(w, PT, PT, SEL, 0, 1)
        pt_cached(w, tab + 40 * i, PT)


_have_btab = False


def _base_point(o):
    _load_point(o, _BX, _BY)


def dsm(s_naf, k_naf, a):
    """[s]B - [k]A (Straus, NAF digits as for _fe_int.dsm); returns the result's offset."""
    global _have_btab
    w = W
    if not _have_btab:
        _base_point(ACC)
        _odd_multiples(BTAB, ACC, 32)
        _have_btab = True
    _odd_multiples(ATAB, a, 8)
    pt_set_identity(ACC)
    ns = len(s_naf)
    nk = len(k_naf)
    started = False
    for i in range(max(ns, nk) - 1, -1, -1):
        ds = s_naf[i] if i < ns else 0
        dk = k_naf[i] if i < nk else 0
        if started:
            pt_dbl(w, ACC, ACC, 1 if (ds or dk) else 0)
        if ds:
            started = True
            if ds > 0:
                pt_add(w, ACC, ACC, BTAB + 20 * (ds - 1), 0, 1)
            else:
                pt_add(w, ACC, ACC, BTAB + 20 * (-ds - 1), 1, 1)
        if dk:
            started = True
            # subtracting [k]A: a positive digit subtracts, a negative one adds
            if dk > 0:
                pt_add(w, ACC, ACC, ATAB + 20 * (dk - 1), 1, 1)
            else:
                pt_add(w, ACC, ACC, ATAB + 20 * (-dk - 1), 0, 1)
    return ACC


_have_wtab = False


def base_mul(k):
    """[k]B for a secret 256-bit k: 64 fixed 4-bit windows, masked table scan."""
    global _have_wtab
    w = W
    if not _have_wtab:
        pt_set_identity(PT2)
        pt_cached(w, WTAB, PT2)
        _base_point(PT)
        pt_cached(w, SEL, PT)
        for j in range(1, 16):
            pt_add(w, PT2, PT2, SEL, 0, 1)
            pt_cached(w, WTAB + 40 * j, PT2)
        _have_wtab = True
    pt_set_identity(ACC)
    for i in range(252, -1, -4):
        pt_dbl(w, ACC, ACC, 0)
        pt_dbl(w, ACC, ACC, 0)
        pt_dbl(w, ACC, ACC, 0)
        pt_dbl(w, ACC, ACC, 1)
        pt_select(w, SEL, WTAB, (k >> i) & 15)
        pt_add(w, ACC, ACC, SEL, 0, 1)
    return ACC


@micropython.viper
def _ladder(w: ptr32, k: ptr8, xl: int):
    """RFC 7748 §5 ladder on w[xl..]: x1, x2, z2, x3, z3 then 9 temporaries."""
    x1 = xl
    x2 = xl + 10
    z2 = xl + 20
    x3 = xl + 30
    z3 = xl + 40
    ta = xl + 50
    taa = xl + 60
    tb = xl + 70
    tbb = xl + 80
    te = xl + 90
    tc = xl + 100
    td = xl + 110
    tda = xl + 120
    tcb = xl + 130
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
    fe_set(XL + 10, 1)
    fe_set(XL + 20, 0)
    fe_set(XL + 30, u % P)
    fe_set(XL + 40, 1)
    _ladder(W, k.to_bytes(32, "little"), XL)
    fe_invert(T0, XL + 20)
    fe_mul(W, T0, T0, XL + 10)
    return fe_get(T0)
