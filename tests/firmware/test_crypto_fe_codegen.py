"""The straight-line viper field code is generated: this file is the generator.

``_fe_v64.py`` and ``_fe_v32.py`` contain one line per column of the schoolbook
product, which nobody should edit by hand. The functions below produce that code;
the test asserts the committed modules contain it verbatim, so the generator and
the firmware cannot drift apart. To regenerate after a change, run
``.venv/bin/python tests/firmware/test_crypto_fe_codegen.py v64|v32`` and paste
the output over the generated block of the module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parents[2] / "firmware" / "lib" / "kagiya_lock"


# ---------------------------------------------------------------------------
# 64-bit words: 10 limbs, radix 2^25.5 (26, 25, 26, ... bits)
# ---------------------------------------------------------------------------
def v64_carry_chain(ind: str = "    ") -> list[str]:
    """Carry h0..h9 into 26/25-bit limbs, h9 folded into h0 with 19."""
    out = []
    for i in range(10):
        bits = 26 if i % 2 == 0 else 25
        nxt = (i + 1) % 10
        if i == 9:
            out.append(f"{ind}c = h9 >> 25")
            out.append(f"{ind}h9 &= 0x1FFFFFF")
            out.append(f"{ind}h0 += c * 19")
        else:
            out.append(f"{ind}c = h{i} >> {bits}")
            out.append(f"{ind}h{i} &= {hex((1 << bits) - 1)}")
            out.append(f"{ind}h{nxt} += c")
    out.append(f"{ind}c = h0 >> 26")
    out.append(f"{ind}h0 &= 0x3ffffff")
    out.append(f"{ind}h1 += c")
    return out


def v64_mul() -> list[str]:
    """fe_mul: 100 products, odd*odd doubled, columns >= 10 folded with 19."""
    L = [
        "@micropython.viper",
        "def fe_mul(w: ptr32, o: int, a: int, b: int):",
        '    """w[o] = w[a] * w[b] (10 limbs each; any of o, a, b may coincide)."""',
    ]
    for i in range(10):
        L.append(f"    f{i} = int(w[a + {i}])")
    for i in range(10):
        L.append(f"    g{i} = int(w[b + {i}])")
    for j in range(1, 10):
        L.append(f"    g{j}_19 = g{j} * 19")
    for i in (1, 3, 5, 7, 9):
        L.append(f"    f{i}_2 = f{i} * 2")
    terms: dict[int, list[str]] = {k: [] for k in range(10)}
    for i in range(10):
        for j in range(10):
            dbl = i % 2 == 1 and j % 2 == 1
            k = i + j
            red = k >= 10
            if red:
                k -= 10
            fa = f"f{i}_2" if dbl else f"f{i}"
            ga = f"g{j}_19" if red else f"g{j}"
            terms[k].append(f"{fa} * {ga}")
    for k in range(10):
        L.append(f"    h{k} = " + " + ".join(terms[k][:4]))
        for t in range(4, len(terms[k]), 4):
            L.append(f"    h{k} += " + " + ".join(terms[k][t : t + 4]))
    L += v64_carry_chain()
    for i in range(10):
        L.append(f"    w[o + {i}] = h{i}")
    return L


def v64_sq() -> list[str]:
    """fe_sq: 55 products."""
    L = ["@micropython.viper", "def fe_sq(w: ptr32, o: int, a: int):", '    """w[o] = w[a]^2."""']
    for i in range(10):
        L.append(f"    f{i} = int(w[a + {i}])")
    sq_terms: dict[int, list[tuple[int, int, int]]] = {k: [] for k in range(10)}
    for i in range(10):
        for j in range(i, 10):
            c = 1
            if i != j:
                c *= 2
            if i % 2 == 1 and j % 2 == 1:
                c *= 2
            k = i + j
            if k >= 10:
                k -= 10
                c *= 19
            sq_terms[k].append((c, i, j))
    # precompute multiples needed
    need: set[tuple[int, int]] = set()
    for ts in sq_terms.values():
        for c, i, _ in ts:
            need.add((i, c))
    for i, c in sorted(need):
        if c != 1:
            L.append(f"    f{i}_{c} = f{i} * {c}")
    for k in range(10):
        exprs = [(f"f{i}_{c}" if c != 1 else f"f{i}") + f" * f{j}" for c, i, j in sq_terms[k]]
        L.append(f"    h{k} = " + " + ".join(exprs[:4]))
        for t in range(4, len(exprs), 4):
            L.append(f"    h{k} += " + " + ".join(exprs[t : t + 4]))
    L += v64_carry_chain()
    for i in range(10):
        L.append(f"    w[o + {i}] = h{i}")
    return L


def v64_addsub(name: str, op: str) -> list[str]:
    """fe_add / fe_sub (adds 2p first)."""
    two_p = [2 * ((1 << 26) - 19)] + [
        2 * ((1 << 25) - 1) if i % 2 else 2 * ((1 << 26) - 1) for i in range(1, 10)
    ]
    doc = "w[o] = w[a] + w[b]" if op == "+" else "w[o] = w[a] - w[b] (as w[a] + 2p - w[b])"
    L = [
        "@micropython.viper",
        f"def {name}(w: ptr32, o: int, a: int, b: int):",
        f'    """{doc}."""',
    ]
    for i in range(10):
        if op == "+":
            L.append(f"    h{i} = int(w[a + {i}]) + int(w[b + {i}])")
        else:
            L.append(f"    h{i} = int(w[a + {i}]) + {hex(two_p[i])} - int(w[b + {i}])")
    L += v64_carry_chain()
    for i in range(10):
        L.append(f"    w[o + {i}] = h{i}")
    return L


def v64_mulsmall() -> list[str]:
    """fe_mul_small: times a constant < 2^20."""
    L = [
        "@micropython.viper",
        "def fe_mul_small(w: ptr32, o: int, a: int, k: int):",
        '    """w[o] = w[a] * k for 0 <= k < 2^20."""',
    ]
    for i in range(10):
        L.append(f"    h{i} = int(w[a + {i}]) * k")
    L += v64_carry_chain()
    for i in range(10):
        L.append(f"    w[o + {i}] = h{i}")
    return L


def v64_code() -> str:
    """The generated block of _fe_v64.py."""
    parts = [
        v64_mul(),
        v64_sq(),
        v64_addsub("fe_add", "+"),
        v64_addsub("fe_sub", "-"),
        v64_mulsmall(),
    ]
    return "\n\n\n".join("\n".join(p) for p in parts)


# ---------------------------------------------------------------------------
# 32-bit words: 20 limbs of 13 bits
# ---------------------------------------------------------------------------
N = 20
MASK = 0x1FFF
FOLD = 608  # 2^260 = 2^5 * 2^255 = 32 * 19 (mod p)


def v32_carry_fold(ind: str = "    ") -> list[str]:
    """Carry h0..h39 (columns) into 13-bit limbs, fold 20..39 with *608, carry again."""
    out = []
    for k in range(2 * N - 2):
        out.append(f"{ind}h{k + 1} += h{k} >> 13")
        out.append(f"{ind}h{k} &= 0x1FFF")
    # h38 may exceed 13 bits: split into h38 (13 bits) and h39
    out.append(f"{ind}h39 = h38 >> 13")
    out.append(f"{ind}h38 &= 0x1FFF")
    for k in range(N):
        out.append(f"{ind}h{k} += h{k + N} * 608")
    out += v32_carry_low(ind)
    return out


def v32_carry_low(ind: str = "    ") -> list[str]:
    out = []
    for k in range(N - 1):
        out.append(f"{ind}h{k + 1} += h{k} >> 13")
        out.append(f"{ind}h{k} &= 0x1FFF")
    out.append(f"{ind}h0 += (h19 >> 13) * 608")
    out.append(f"{ind}h19 &= 0x1FFF")
    out.append(f"{ind}h1 += h0 >> 13")
    out.append(f"{ind}h0 &= 0x1FFF")
    return out


def v32_store(ind: str = "    ") -> list[str]:
    """Store h0..h19 at w[o]."""
    return [f"{ind}w[o + {i}] = h{i}" for i in range(N)]


def v32_columns(terms: dict[int, list[str]]) -> list[str]:
    """One assignment per product column, 5 terms a line."""
    L = []
    for k in range(2 * N - 1):
        ts = terms[k]
        L.append(f"    h{k} = " + " + ".join(ts[:5]))
        for t in range(5, len(ts), 5):
            L.append(f"    h{k} += " + " + ".join(ts[t : t + 5]))
    return L


def v32_mul() -> list[str]:
    L = [
        "@micropython.viper",
        "def fe_mul(w: ptr32, o: int, a: int, b: int):",
        '    """w[o] = w[a] * w[b] (any of o, a, b may coincide)."""',
    ]
    L += [f"    f{i} = int(w[a + {i}])" for i in range(N)]
    L += [f"    g{i} = int(w[b + {i}])" for i in range(N)]
    terms: dict[int, list[str]] = {k: [] for k in range(2 * N - 1)}
    for i in range(N):
        for j in range(N):
            terms[i + j].append(f"f{i} * g{j}")
    L += v32_columns(terms)
    L += v32_carry_fold()
    L += v32_store()
    return L


def v32_sq() -> list[str]:
    L = ["@micropython.viper", "def fe_sq(w: ptr32, o: int, a: int):", '    """w[o] = w[a]^2."""']
    L += [f"    f{i} = int(w[a + {i}])" for i in range(N)]
    L += [f"    d{i} = f{i} * 2" for i in range(N - 1)]
    terms: dict[int, list[str]] = {k: [] for k in range(2 * N - 1)}
    for i in range(N):
        for j in range(i, N):
            terms[i + j].append(f"f{i} * f{j}" if i == j else f"d{i} * f{j}")
    L += v32_columns(terms)
    L += v32_carry_fold()
    L += v32_store()
    return L


# a multiple of p with every limb >= 2^13 + slack: limbs 2^14 - 2, limb 0 less 1214
TWO_P = [16382 - 1214] + [16382] * (N - 1)


def v32_addsub(name: str, op: str) -> list[str]:
    doc = "w[o] = w[a] + w[b]" if op == "+" else "w[o] = w[a] - w[b] (plus a multiple of p)"
    L = [
        "@micropython.viper",
        f"def {name}(w: ptr32, o: int, a: int, b: int):",
        f'    """{doc}."""',
    ]
    for i in range(N):
        if op == "+":
            L.append(f"    h{i} = int(w[a + {i}]) + int(w[b + {i}])")
        else:
            L.append(f"    h{i} = int(w[a + {i}]) + {TWO_P[i]} - int(w[b + {i}])")
    L += v32_carry_low()
    L += v32_store()
    return L


def v32_mulsmall() -> list[str]:
    L = [
        "@micropython.viper",
        "def fe_mul_small(w: ptr32, o: int, a: int, k: int):",
        '    """w[o] = w[a] * k for 0 <= k < 2^17."""',
    ]
    for i in range(N):
        L.append(f"    h{i} = int(w[a + {i}]) * k")
    L += v32_carry_low()
    L += v32_carry_low()  # the first pass can leave limb 1 up to ~2^14
    L += v32_store()
    return L


def v32_code() -> str:
    """The generated block of _fe_v32.py."""
    parts = [
        v32_mul(),
        v32_sq(),
        v32_addsub("fe_add", "+"),
        v32_addsub("fe_sub", "-"),
        v32_mulsmall(),
    ]
    return "\n\n\n".join("\n".join(p) for p in parts)


def test_two_p_is_a_multiple_of_p() -> None:
    p = 2**255 - 19
    assert sum(v << (13 * i) for i, v in enumerate(TWO_P)) % p == 0
    assert min(TWO_P) > (1 << 13) + (1 << 10)


@pytest.mark.parametrize(("module", "gen"), [("_fe_v64", v64_code), ("_fe_v32", v32_code)])
def test_committed_code_is_the_generated_code(module: str, gen: object) -> None:
    assert callable(gen)
    text = (FW / f"{module}.py").read_text()
    for block in gen().split("\n\n\n"):
        assert block in text, block.splitlines()[1]


if __name__ == "__main__":
    print(v64_code() if sys.argv[1:] == ["v64"] else v32_code())
