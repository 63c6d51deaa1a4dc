"""Overflow bounds of the viper field code, checked line by line under CPython.

On the unix port viper ints are 64-bit, so a 32-bit overflow in
``kagiya_lock._fe_v32`` (the ESP32 field layer) could never show up in the
micropython tests. Here the same source runs under CPython with the viper
decorators stubbed out, and a tracer asserts after EVERY line that every local
integer stays in [0, 2^31) (v32) or [0, 2^63) (v64), for extreme and random
inputs; results are compared with plain modular arithmetic and the output limb
bounds the other functions rely on are asserted. The functional tests of these
modules run under the real micropython (test_crypto_ed25519/x25519).
"""

from __future__ import annotations

import random
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

FW = Path(__file__).resolve().parents[2] / "firmware" / "lib" / "kagiya_lock"
P = 2**255 - 19


class Ptr:
    """A viper ``ptr32`` under CPython: a word offset into a list or array.

    ``int(ptr)`` is an "address" (``_BASE * id + 4 * offset``) that ``ptr32(address)``
    turns back into a pointer, as the field code does to address limbs and rows. Every
    store is checked against the word limit: column sums live in memory, not in locals.
    """

    limit = 2**31
    _mem: ClassVar[dict[int, Any]] = {}
    _BASE = 1 << 40

    def __init__(self, mem: Any, off: int = 0) -> None:
        self.mem, self.off = mem, off
        Ptr._mem[id(mem)] = mem

    def __int__(self) -> int:
        return id(self.mem) * self._BASE + 4 * self.off

    def __getitem__(self, i: int) -> int:
        return int(self.mem[self.off + i])

    def __setitem__(self, i: int, v: int) -> None:
        assert 0 <= v < min(self.limit, 2**32), ("stored word out of bounds", i, v)
        self.mem[self.off + i] = v


def ptr32(x: Any) -> Ptr:
    """The shim of viper's ``ptr32(...)`` cast."""
    if isinstance(x, Ptr):
        return x
    if isinstance(x, int):
        mem = Ptr._mem[x // Ptr._BASE]
        return Ptr(mem, (x % Ptr._BASE) // 4)
    return Ptr(x)


def _load(name: str) -> dict[str, Any]:
    shim = types.ModuleType("micropython")
    shim.viper = lambda f: f  # type: ignore[attr-defined]
    shim.const = lambda x: x  # type: ignore[attr-defined]
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = shim
    try:
        ns: dict[str, Any] = {"ptr32": ptr32, "ptr8": object, "uint": int, "__name__": name}
        exec(compile((FW / f"{name}.py").read_text(), name, "exec"), ns)  # noqa: S102
    finally:
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved
    for key, fn in list(ns.items()):  # viper converts a buffer argument to a pointer
        ptr_args = [i for i, a in enumerate(getattr(fn, "__annotations__", {}).values())
                    if a is ptr32 or a == "ptr32"]  # a string: annotations are lazy here
        if callable(fn) and ptr_args:
            ns[key] = _converting(fn, ptr_args)
    return ns


def _converting(fn: Any, ptr_args: list[int]) -> Any:
    def call(*args: Any) -> Any:
        return fn(*(ptr32(a) if i in ptr_args else a for i, a in enumerate(args)))
    return call


CONFIGS = {
    # module: (word limit, nominal limb sizes, allowed excess of a limb after an operation,
    # the limbs that may have it)
    "_fe_v32": (2**31, [13] * 20, 2**10, (1, 2)),
    "_fe_v64": (2**63, [26] * 10, 2**23, (1,)),
}


def _value(w: list[int], o: int, sizes: list[int]) -> int:
    v, shift = 0, 0
    for i, s in enumerate(sizes):
        v += w[o + i] << shift
        shift += s
    return v % P


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_field_ops_stay_in_word_bounds(name: str) -> None:
    limit, sizes, excess, loose = CONFIGS[name]
    ns = _load(name)
    Ptr.limit = limit
    n = len(sizes)
    maxed = [(1 << s) - 1 for s in sizes]
    for i in loose:
        maxed[i] += excess  # the worst input any operation can produce
    rng = random.Random(255)  # noqa: S311  (reproducible test data)
    worst = 0

    def tracer(frame: types.FrameType, event: str, arg: object) -> Any:
        nonlocal worst
        if frame.f_code.co_filename != name:
            return tracer
        for key, val in frame.f_locals.items():
            if isinstance(val, int) and not key.startswith("p_"):  # p_*: addresses
                if val // Ptr._BASE in Ptr._mem:  # an address passed in (_fold's o)
                    continue
                assert 0 <= val < limit, (frame.f_code.co_name, key, val)
                worst = max(worst, val)
        return tracer

    def check_out(w: list[int], o: int) -> None:
        for i, s in enumerate(sizes):
            bound = (1 << s) + (excess if i in loose else 0)
            assert 0 <= w[o + i] < bound, (i, w[o + i])

    inputs = [maxed, [0] * n, [(1 << s) - 1 for s in sizes]]
    for _ in range(30):
        v = rng.randrange(P)
        inputs.append([(v >> sum(sizes[:i])) & ((1 << s) - 1) for i, s in enumerate(sizes)])
    sys.settrace(tracer)
    try:
        for x in inputs:
            for y in (maxed, inputs[rng.randrange(len(inputs))]):
                w = x + y + [0] * n
                a, b = _value(w, 0, sizes), _value(w, n, sizes)
                ns["fe_mul"](ptr32(w), 2 * n, 0, n)
                check_out(w, 2 * n)
                assert _value(w, 2 * n, sizes) == a * b % P
                ns["fe_sq"](ptr32(w), 2 * n, 0)
                check_out(w, 2 * n)
                if name == "_fe_v32":  # fe_mul adds into columns 0..n-2: zero on entry
                    assert not any(ns["_T"][:n - 1]), "fe_mul/fe_sq left _T dirty"
                assert _value(w, 2 * n, sizes) == a * a % P
                ns["fe_add"](ptr32(w), 2 * n, 0, n)
                check_out(w, 2 * n)
                assert _value(w, 2 * n, sizes) == (a + b) % P
                ns["fe_sub"](ptr32(w), 2 * n, 0, n)
                check_out(w, 2 * n)
                assert _value(w, 2 * n, sizes) == (a - b) % P
                ns["fe_mul_small"](ptr32(w), 2 * n, 0, 121665)
                check_out(w, 2 * n)
                assert _value(w, 2 * n, sizes) == a * 121665 % P
    finally:
        sys.settrace(None)
    assert worst > limit >> 10  # the tracer did look at the big column sums
