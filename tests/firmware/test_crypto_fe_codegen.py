"""The viper field layers are generated: this file is the generator.

``_fe_v32.py`` (20 limbs of 13 bits, 32-bit viper words: ESP32) and ``_fe_v64.py``
(10 limbs of 26 bits, 64-bit viper words: the unix port) are the same code with
different limb counts and sizes: both cover 260 bits, so 2^260 = 32 * 19 = 608 (mod p)
folds the high half in both. The unrolled product rows are written out here; the test
asserts the committed modules are exactly the generated text, so the generator and the
firmware cannot drift apart. To regenerate after a change, run
``.venv/bin/python tests/firmware/test_crypto_fe_codegen.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parents[2] / "firmware" / "lib" / "kagiya_lock"
P = 2**255 - 19
FOLD = 608  # 2^260 = 2^5 * 2^255 = 32 * 19 (mod p)

# module: (limbs, bits per limb, word bits, who selects it)
LAYOUTS = {
    "_fe_v32": (20, 13, 32, "32-bit machine words, as on ESP32"),
    "_fe_v64": (10, 26, 64, "64-bit machine words, as on the unix port"),
}


def two_p(n: int, bits: int) -> list[int]:
    """64p in ``n`` limbs of ``bits``, every limb > 2^bits + 2^(bits - 3) (so a - b + 64p
    has no negative limb): 2(2^bits - 1) everywhere, limb 0 less 1214."""
    top = 2 * ((1 << bits) - 1)
    return [top - 1214] + [top] * (n - 1)


def _bounds_doc(n: int, bits: int, word: int) -> str:
    col = n * ((1 << bits) + (1 << (bits - 3))) ** 2
    loose = "limbs 1 and 2" if word == 32 else "limb 1"
    carry = (f"* ``_fold`` carries the high columns {n}..{2 * n - 2} of the scratch array ``_T``"
             f" and folds\n  each, once {bits} bits, into its low column with 2^260 = 608"
             f" (mod p), in one pass;" if word == 32 else
             f"* the {2 * n - 1} columns (in the scratch array ``_T``) are carried to {bits}-bit "
             f"limbs, then\n"
             f"  limbs {n}..{2 * n - 1} are folded down with 2^260 = 608 (mod p) and carried again;")
    return (
        f"* limbs are < 2^{bits} after every operation, except {loose} (< 2^{bits} + "
        f"2^{bits - 3});\n"
        f"* a product column is a sum of at most {n} limb products: < {col:.3g} < "
        f"2^{word - 1};\n"
        f"{carry}\n"
        f"* subtraction adds 64p written with limbs {two_p(n, bits)[0]}, "
        f"{two_p(n, bits)[1]}, ... (all larger\n"
        f"  than any limb, so no limb goes negative)."
    )


ROWS = 2  # product rows accumulated per pass (v32): a column is read and written once per 2 MACs


def _group(n: int) -> str:
    """ROWS rows at once: column j of the group gets f_r * g_(j - r) for r < ROWS (f_0 is
    the register local ``o``, g the register local ``w``; the loads come first, so
    viper multiplies by a register)."""
    lines = []
    names = ["o"] + [f"f{r}" for r in range(1, ROWS)]
    for j in range(n + ROWS - 1):
        terms = [f"int(w[{j - r}]) * {names[r]}" for r in range(ROWS) if 0 <= j - r < n]
        fresh = j >= n - 1  # columns i + n - 1 .. are first written by rows i, i + 1
        lines.append(f"        r[{j}] = " + " + ".join(terms) + ("" if fresh else f" + int(r[{j}])"))
    return "\n".join(lines)


def _product(name: str, doc: str, args: str, n: int, bits: int, square: bool) -> str:
    """v32 multiply / square: products into the scratch columns ``_T`` (zero on entry),
    then :func:`_carry_fold`. Viper keeps only the first two locals (here the parameters
    ``w`` and ``o``) in registers, so they are reused for the hottest values: ``w`` is
    re-pointed at g (multiply) and ``o`` holds the current f limb."""
    if square:  # straight line into the columns: half the products of a multiply
        body = "    f = ptr32(p_f)\n    t = ptr32(p_t)\n" + _square_lines(n, bits)
    else:
        body = f"""    w = ptr32(p_w + 4 * b)  # g, in a register from here on
    i = 0
    while i < {n}:  # rows i, i + 1 (f_i in the register local o), added into columns i ..
        fp = ptr32(p_f + 4 * i)
        o = int(fp[0])
        f1 = int(fp[1])
        r = ptr32(p_t + 4 * i)
{_group(n)}
        i += {ROWS}"""
    return f'''@micropython.viper
def {name}(w: ptr32, o: int, {args}):
    """{doc}"""
    p_w = int(w)
    p_o = p_w + 4 * o
    p_f = p_w + 4 * a
    p_t = int(ptr32(_T))
{body}
    _fold(_T, p_o)'''


FOLD_STEPS = 2  # carry/fold steps per pass of _fold's loop


def _carry_fold(n: int, bits: int) -> str:
    """``_fold(_T, out)``: the columns t[0..2n-2] (each < 2^31) to n limbs at address
    ``out`` in ONE pass: the high columns are carried (chain ``c``) and each, once
    {bits} bits, is folded into its low column with 2^260 = 608 (chain ``o``); the carry
    out of the top column is folded into limb n - 1 whole. Columns 0..n-2 are zeroed
    again (the multiply adds into them; it writes the others first). One copy for fe_mul
    and fe_sq (a viper call costs ~250 instructions), a loop of FOLD_STEPS steps at
    constant offsets of moving pointers (unrolled, it was 2.5 KB of xtensawin code)."""
    mask = hex((1 << bits) - 1)

    def step(k: int, first: bool) -> list[str]:
        hi = n + k
        out = [f"        h = int(w[{hi}]) + c" if not first else f"    h = int(w[{hi}])"]
        ind = "        " if not first else "    "
        out = [out[0],
               f"{ind}c = h >> {bits}",
               f"{ind}s = int(w[{k}]) + (h & {mask}) * {FOLD}" + ("" if first else " + o"),
               f"{ind}w[{k}] = 0",
               f"{ind}out[{k}] = s & {mask}",
               f"{ind}o = s >> {bits}"]
        return out

    loop = [line for k in range(FOLD_STEPS) for line in step(k, False)]
    passes = (n - 1) // FOLD_STEPS
    tail = n - 1 - passes * FOLD_STEPS
    lines = [f"""@micropython.viper
def _fold(w: ptr32, o: int):
    \"\"\"Carry and fold the product columns ``w`` (= _T) into the limbs at address ``o``
    (see the module doc); ``w`` and ``o`` are the register locals.\"\"\"
    out = ptr32(o)
    o = 0
    c = 0
    i = 0
    while i < {passes}:  # low columns {FOLD_STEPS} i .. {FOLD_STEPS} i + {FOLD_STEPS - 1} and their high ones""",
             *loop,
             f"        w = ptr32(int(w) + {4 * FOLD_STEPS})",
             f"        out = ptr32(int(out) + {4 * FOLD_STEPS})",
             "        i += 1"]
    for k in range(tail):
        lines += [x[4:] for x in step(k, False)]
    k = tail
    lines += [f"    s = int(w[{k}]) + c * {FOLD} + o  # limb {n - 1}: the top carry, whole",
              f"    out[{k}] = s & {mask}",
              f"    out = ptr32(int(out) - {4 * (n - 1 - tail)})",
              f"    s = int(out[0]) + (s >> {bits}) * {FOLD}  # the carry out of limb {n - 1} (2^260)",
              f"    out[0] = s & {mask}",
              f"    s = int(out[1]) + (s >> {bits})",
              f"    out[1] = s & {mask}",
              f"    out[2] = int(out[2]) + (s >> {bits})"]
    return "\n".join(lines)


def _fold(bits: int) -> str:
    """The carry out of the top limb (weight 2^260) folded into limb 0, once more to 1."""
    mask = hex((1 << bits) - 1)
    return f"""    s = int(out[0]) + c * {FOLD}
    out[0] = s & {mask}
    out[1] = int(out[1]) + (s >> {bits})"""


def _square_lines(n: int, bits: int) -> str:
    """Squaring, straight line: column k = sum of f_i * 2f_j (i < j, i + j = k) plus
    f_(k/2)^2, at most 5 terms a line, stored to the scratch column t[k]."""
    lines = [f"    f{i} = int(f[{i}])" for i in range(n)]
    lines += [f"    d{i} = f{i} + f{i}" for i in range(n - 1)]
    for k in range(2 * n - 1):
        terms = [f"d{i} * f{k - i}" for i in range(max(0, k - n + 1), (k + 1) // 2)]
        if k % 2 == 0:
            terms.append(f"f{k // 2} * f{k // 2}")
        lines.append("    h = " + " + ".join(terms[:5]))
        lines += ["    h += " + " + ".join(terms[x:x + 5]) for x in range(5, len(terms), 5)]
        lines.append(f"    t[{k}] = h")
    return "\n".join(lines)


def _columns(name: str, doc: str, args: str, n: int, bits: int, square: bool) -> str:
    """Product scanning for 64-bit words: one column at a time in a local (a column of
    26-bit limb products does not fit the 32-bit scratch words), carried as it goes."""
    mask = hex((1 << bits) - 1)
    if square:
        body = """        s = 0
        i = lo
        while i + i < k:  # each pair f_i f_(k-i), i < k - i, counted twice
            s += int(f[i]) * int(f[k - i])
            i += 1
        s += s + c
        if i + i == k:
            s += int(f[i]) * int(f[i])"""
    else:
        body = """        s = c
        i = lo
        while i <= hi:
            s += int(f[i]) * int(g[k - i])
            i += 1"""
    g = "" if square else "\n    g = ptr32(p_w + 4 * b)"
    hi = "" if square else f"\n        hi = k if k < {n} else {n - 1}"
    return f'''@micropython.viper
def {name}(w: ptr32, o: int, {args}):
    """{doc}"""
    p_w = int(w)
    f = ptr32(p_w + 4 * a){g}
    t = ptr32(_T)
    c = 0
    for k in range({2 * n - 1}):
        lo = k - {n - 1} if k > {n - 1} else 0{hi}
{body}
        t[k] = s & {mask}
        c = s >> {bits}
    t[{2 * n - 1}] = c
    out = ptr32(p_w + 4 * o)
    c = 0
    for k in range({n}):  # fold the high limbs in (* 608) and carry
        s = int(t[k]) + int(t[k + {n}]) * {FOLD} + c
        out[k] = s & {mask}
        c = s >> {bits}
{_fold(bits)}'''


ADD_STEPS = 4  # limbs per pass of the v32 add/sub loops


def _addsub(n: int, bits: int, word: int, tp: list[int]) -> str:
    """fe_add and fe_sub. v32: limbs at constant offsets of three moving pointers,
    ADD_STEPS a pass; the register locals are ``w`` (re-pointed at f) and ``o`` (the
    running sum, whose high bits are the carry)."""
    mask = hex((1 << bits) - 1)
    if word != 32:
        return OLD_ADDSUB.format(n=n, mask=mask, bits=bits, tp=tp, fold=_fold(bits))
    assert n % ADD_STEPS == 0
    out = []
    for name, doc, sub in (("fe_add", "w[o] = w[a] + w[b].", False),
                           ("fe_sub", "w[o] = w[a] - w[b] (plus 64p).", True)):
        body = []
        for j in range(ADD_STEPS):
            k = "kk" if sub and j == 0 else str(tp[1])
            term = f"int(w[{j}]) + {k} - int(g[{j}])" if sub else f"int(w[{j}]) + int(g[{j}])"
            body += [f"        o = {term} + (o >> {bits})", f"        out[{j}] = o & {mask}"]
        step = 4 * ADD_STEPS
        kk = [f"    kk = {tp[0]}  # limb 0 of 64p; {tp[1]} from limb 1 on"] if sub else []
        kk2 = [f"        kk = {tp[1]}"] if sub else []
        lines = [f"""@micropython.viper
def {name}(w: ptr32, o: int, a: int, b: int):
    \"\"\"{doc}\"\"\"
    p_w = int(w)
    out = ptr32(p_w + 4 * o)
    g = ptr32(p_w + 4 * b)
    w = ptr32(p_w + 4 * a)
    o = 0""", *kk,
                 "    i = 0",
                 f"    while i < {n // ADD_STEPS}:  # out may be f or g: a limb is read before it is written",
                 *body, *kk2,
                 f"        w = ptr32(int(w) + {step})",
                 f"        g = ptr32(int(g) + {step})",
                 f"        out = ptr32(int(out) + {step})",
                 "        i += 1",
                 f"    out = ptr32(int(out) - {4 * n})",
                 f"    s = int(out[0]) + (o >> {bits}) * {FOLD}",
                 f"    out[0] = s & {mask}",
                 f"    out[1] = int(out[1]) + (s >> {bits})"]
        out.append("\n".join(lines))
    return "\n\n\n".join(out) + "\n\n\n"


OLD_ADDSUB = '''@micropython.viper
def fe_add(w: ptr32, o: int, a: int, b: int):
    """w[o] = w[a] + w[b]."""
    p_w = int(w)
    f = ptr32(p_w + 4 * a)
    g = ptr32(p_w + 4 * b)
    out = ptr32(p_w + 4 * o)
    c = 0
    for k in range({n}):  # out may be f or g: limb k is read before it is written
        s = int(f[k]) + int(g[k]) + c
        out[k] = s & {mask}
        c = s >> {bits}
{fold}


@micropython.viper
def fe_sub(w: ptr32, o: int, a: int, b: int):
    """w[o] = w[a] - w[b] (plus 64p)."""
    p_w = int(w)
    f = ptr32(p_w + 4 * a)
    g = ptr32(p_w + 4 * b)
    out = ptr32(p_w + 4 * o)
    s = int(f[0]) + {tp[0]} - int(g[0])
    out[0] = s & {mask}
    c = s >> {bits}
    for k in range(1, {n}):
        s = int(f[k]) + {tp[1]} - int(g[k]) + c
        out[k] = s & {mask}
        c = s >> {bits}
{fold}


'''


def _cswap(n: int, word: int) -> str:
    """fe_cswap: v32 as fe_add (moving pointers, ADD_STEPS limbs a pass, ``w`` and ``a``
    in registers); no branch on ``swap`` (the loop count is fixed)."""
    if word != 32:
        return OLD_CSWAP.format(n=n)
    body = []
    for j in range(ADD_STEPS):
        body += [f"        a = (int(w[{j}]) ^ int(g[{j}])) & mask",
                 f"        w[{j}] = int(w[{j}]) ^ a", f"        g[{j}] = int(g[{j}]) ^ a"]
    step = 4 * ADD_STEPS
    return "\n".join([f"""@micropython.viper
def fe_cswap(w: ptr32, a: int, b: int, swap: int):
    \"\"\"Swap w[a] and w[b] iff swap == 1, without a branch on ``swap``.\"\"\"
    p_w = int(w)
    mask = 0 - swap
    g = ptr32(p_w + 4 * b)
    w = ptr32(p_w + 4 * a)
    i = 0
    while i < {n // ADD_STEPS}:""", *body,
                       f"        w = ptr32(int(w) + {step})",
                       f"        g = ptr32(int(g) + {step})",
                       "        i += 1"]) + "\n\n\n"


OLD_CSWAP = '''@micropython.viper
def fe_cswap(w: ptr32, a: int, b: int, swap: int):
    """Swap w[a] and w[b] iff swap == 1, without a branch on ``swap``."""
    mask = 0 - swap
    for i in range({n}):
        x = int(w[a + i])
        y = int(w[b + i])
        t = (x ^ y) & mask
        w[a + i] = x ^ t
        w[b + i] = y ^ t


'''


def module(name: str) -> str:
    """The full text of ``firmware/lib/kagiya_lock/<name>.py``."""
    n, bits, word, who = LAYOUTS[name]
    mask = hex((1 << bits) - 1)
    tp = two_p(n, bits)
    doc_mul = "w[o] = w[a] * w[b] (any of o, a, b may coincide)."
    style = (f"Products go by rows, {ROWS} at a time: each scratch column is read and written\n"
             f"once per {ROWS} multiply-accumulates, at constant offsets of a row pointer."
             if word == 32 else
             "Products go by columns, each summed in a 64-bit local (a column does not\n"
             "fit a 32-bit scratch word), squares with each cross product once.")
    if word == 32:  # rows of products accumulated in the 32-bit scratch columns
        mul = _product("fe_mul", doc_mul, "a: int, b: int", n, bits, False)
        sq = _product("fe_sq", "w[o] = w[a]^2 (unrolled: squarings are half the work of a "
                      "verify).", "a: int", n, bits, True)
    else:
        mul = _columns("fe_mul", doc_mul, "a: int, b: int", n, bits, False)
        sq = _columns("fe_sq", "w[o] = w[a]^2 (each cross product once, doubled).", "a: int",
                      n, bits, True)
    fold = _carry_fold(n, bits) + "\n\n\n" if word == 32 else ""
    addsub = _addsub(n, bits, word, tp)
    calls = ("The only call is\nfe_mul/fe_sq -> ``_fold(_T, address)`` (~250 instructions; "
             "the address is a small int on\nESP32, whose RAM is below 2^30; a larger one "
             "would be boxed as a big integer: right, but\nslower)."
             if word == 32 else
             "Nothing here calls a module-level function or passes a\npointer in the hot "
             "path (a call costs time; on ESP32 an address may not fit a small int).")
    cswap = _cswap(n, word)
    t_decl = (f'_T: ptr32 = array.array("I", bytes(4 * {2 * n}))  # type: ignore[assignment]\n'
              f"# the {2 * n - 1} product columns (+ 1 unused), passed to viper as a pointer "
              "(see _fe_viper.W)"
              if word == 32 else
              f'_T = array.array("I", bytes(4 * {2 * n}))  # the {2 * n - 1} product columns + '
              "the top carry")
    return f'''"""GF(2^255 - 19) arithmetic in viper for {who} (internal).

GENERATED by tests/firmware/test_crypto_fe_codegen.py - do not edit by hand.

{n} unsigned limbs of {bits} bits (radix 2^{bits}, 260 bits), stored as 32-bit words at an
offset of one ``array('I')`` (see :mod:`kagiya_lock._fe_viper`). Nothing overflows a
signed {word}-bit viper int:

{_bounds_doc(n, bits, word)}

These bounds are checked under CPython by tests/firmware/test_crypto_fe_bounds.py (every
local after every line, for extreme and random inputs): the 64-bit unix port cannot show
a 32-bit overflow.

Size matters (the firmware must stay under 64 KB of .mpy), so the code loops over limbs.
{style}
Limbs are addressed through pointers made with ``ptr32(address)``; locals holding
addresses are named ``p_*``. {calls}
"""

import array

import micropython

P = (1 << 255) - 19
LIMBS = {n}
BITS = {bits}
TWO_P = ({tp[0]}, {tp[1]})  # limb 0 and limbs 1..{n - 1} of 64p
{t_decl}


{fold}{mul}


{sq}


{addsub}@micropython.viper
def fe_mul_small(w: ptr32, o: int, a: int, k: int):
    """w[o] = w[a] * k for 0 <= k < 2^17."""
    p_w = int(w)
    f = ptr32(p_w + 4 * a)
    out = ptr32(p_w + 4 * o)
    c = 0
    for i in range({n}):
        s = int(f[i]) * k + c
        out[i] = s & {mask}
        c = s >> {bits}
    c = c * {FOLD}  # c < 2^18: folded, it can carry past limb 1, so carry once more
    for i in range({n}):
        s = int(out[i]) + c
        out[i] = s & {mask}
        c = s >> {bits}
{_fold(bits)}


@micropython.viper
def fe_copy(w: ptr32, o: int, a: int):
    """w[o] = w[a]."""
    for i in range({n}):
        w[o + i] = w[a + i]


{cswap}@micropython.viper
def fe_sqn(w: ptr32, o: int, a: int, n: int):
    """w[o] = w[a]^(2^n), n >= 1."""
    fe_sq(w, o, a)
    for _ in range(n - 1):
        fe_sq(w, o, o)


def fe_set(w, o, v):
    """Store the integer ``v`` (0 <= v < 2^255) at word offset ``o`` of ``w``."""
    for i in range({n}):
        w[o + i] = (v >> ({bits} * i)) & {mask}


def fe_get(w, o):
    """The field element at offset ``o`` of ``w`` as a fully reduced integer.

    Limbs may exceed their nominal size a little (limb 1 after a carry), so they are added.
    """
    v = 0
    for i in range({n - 1}, -1, -1):
        v = (v << {bits}) + w[o + i]
    return v % P
'''


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_two_p_is_a_multiple_of_p(name: str) -> None:
    n, bits, _word, _who = LAYOUTS[name]
    tp = two_p(n, bits)
    assert sum(v << (bits * i) for i, v in enumerate(tp)) == 64 * P
    assert min(tp) > (1 << bits) + (1 << (bits - 3))
    assert n * bits == 260  # the fold constant 608 is 2^260 mod p for both layouts
    assert (1 << 260) % P == FOLD


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_committed_code_is_the_generated_code(name: str) -> None:
    assert (FW / f"{name}.py").read_text() == module(name), (
        f"{name}.py differs from the generator: run "
        f"`.venv/bin/python {Path(__file__).relative_to(FW.parents[2])}`")


if __name__ == "__main__":
    for mod in LAYOUTS:
        (FW / f"{mod}.py").write_text(module(mod))
        print(FW / f"{mod}.py")
    sys.exit(0)
