"""``kagiya install selftest``: run the firmware's self-test on the board and report it.

The firmware checks its crypto (known-answer tests), storage, relays (doors first; drive
only while the vehicle is not moving) and clock (``kagiya_lock.selftest.run``). The
self-test is not stored on the board (firmware/targets.json ``installer``: it would cost
flash on every lock for a check run once at installation): its source is sent and run in
RAM. When an unlock check is given (a callable that performs a real unlock over BLE with a
phone key), its outcome is added as the check ``ble_unlock``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kagiya.tools.install.build import default_firmware_dir
from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.report import Reporter

UnlockCheck = Callable[[], tuple[bool, str]]


SOURCE = "lib/kagiya_lock/selftest.py"  # relative to the firmware tree


def selftest(board: Board, rep: Reporter, *, unlock: UnlockCheck | None = None,
             firmware: Path | None = None) -> dict[str, Any]:
    """Run the self-test of ``firmware`` (default: the shipped tree) on the board; raises
    ``selftest-failed`` (after printing the report) on failure."""
    source = ((firmware or default_firmware_dir()) / SOURCE).read_text()
    result = board.call(source + "\n@@RESULT@@(json.dumps(run()))",
                        what="running the self-test", timeout=300)
    checks: list[dict[str, Any]] = list(result.get("checks", []))
    if unlock is not None:
        board.close()  # the BLE lock takes over the board
        try:
            ok, detail = unlock()
        except Exception as exc:  # report the unlock failure as a failed check
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks.append({"name": "ble_unlock", "ok": ok, "detail": detail})
    ok = bool(result.get("ok")) and all(c.get("ok") for c in checks)
    for c in checks:
        mark = "[green]pass[/green]" if c.get("ok") else "[red]FAIL[/red]"
        rep.say(f"  {mark} {c.get('name')}: {c.get('detail') or ''}")
    out = {"ok": ok, "checks": checks}
    rep.steps["selftest"] = out
    if not ok:
        failed = ", ".join(str(c.get("name")) for c in checks if not c.get("ok"))
        raise InstallError("selftest-failed", f"self-test failed: {failed}",
                           "check the wiring of the failed parts, then run selftest again; "
                           "a failed crypto check means the firmware must be redeployed")
    rep.done("selftest", out, f"{len(checks)} checks passed")
    return out
