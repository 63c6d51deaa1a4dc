"""GF(2^255 - 19) arithmetic in viper for 64-bit machine words (internal).

10 unsigned limbs in radix 2^25.5 (26, 25, 26, 25, ... bits), the representation
of the ref10 Ed25519 code (Bernstein, Duif, Lange, Schwabe, Yang, "High-speed
high-security signatures", 2011), stored as 32-bit words at an offset of one
``array('I')`` (see :mod:`kagiya_lock._fe_viper`). A limb product times 38 sums
to < 2^61 over a column, which needs 64-bit viper ints: only selected where
``sys.maxsize`` says so (:mod:`kagiya_lock._fe_select`).

Every result is carried to limbs < 2^26 / 2^25 (limb 1 may exceed by a few
units), so any result can feed any operation. Subtraction adds 2p first, so limbs
never go negative. The straight-line code below was generated (one line per
column of the schoolbook product) and is checked by the tests.
"""

import micropython

P = (1 << 255) - 19
LIMBS = 10
_OFFS = (0, 26, 51, 77, 102, 128, 153, 179, 204, 230)
_SIZES = (26, 25, 26, 25, 26, 25, 26, 25, 26, 25)


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


def fe_set(w, o, v):
    """Store the integer ``v`` (0 <= v < 2^255) at word offset ``o`` of ``w``."""
    for i in range(10):
        w[o + i] = (v >> _OFFS[i]) & ((1 << _SIZES[i]) - 1)


def fe_get(w, o):
    """The field element at offset ``o`` of ``w`` as a fully reduced integer.

    Limbs may exceed their nominal size a little (limb 1 after a carry), so they are added.
    """
    v = 0
    for i in range(9, -1, -1):
        v = (v << _SIZES[i]) + w[o + i]
    return v % P
