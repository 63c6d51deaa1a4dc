"""Every build's code size against its budget (firmware/targets.json ``budgets``,
docs/performance.md "Code size budgets"): each target's compiled set, plain and connected,
exactly as ``kagiya install deploy`` builds it (``build.build_image``), and its ROMFS image
against the ROMFS partition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kagiya.tools.install import build, romfs

from tests.mpy import FIRMWARE_LIB

FIRMWARE = FIRMWARE_LIB.parent
DOC = json.loads((FIRMWARE / "targets.json").read_text())
BUDGETS = DOC["budgets"]


@pytest.mark.parametrize("connected", [False, True], ids=["plain", "connected"])
@pytest.mark.parametrize("target", sorted(DOC["targets"]))
def test_each_build_is_within_its_budget(target: str, connected: bool, tmp_path: Path) -> None:
    version, sub, _ = build.mpy_cross_version()
    arch = DOC["targets"][target]["arch"]
    image = build.build_image(FIRMWARE, build.Target(version, sub, arch), cache=tmp_path,
                              connected=connected)
    assert not image.notes, image.notes  # every module compiled (no source fallback)
    mpy = {p: len(b) for p, b in image.files.items() if p.endswith(".mpy")}
    uplink = {p for p in mpy if p.rsplit("/", 1)[1] in {"mqtt.mpy", "uplink.mpy"}}
    assert bool(uplink) == connected  # a plain build never carries the uplink
    budget = BUDGETS["connected_mpy_kb" if connected else "plain_mpy_kb"] * 1024
    total = sum(mpy.values())
    assert total <= budget, (
        f"{target} {'connected' if connected else 'plain'} build: {total} bytes of .mpy "
        f"over its budget of {budget} (firmware/targets.json budgets)")
    rom = romfs.build(image.files)
    assert len(rom) <= BUDGETS["romfs_partition_kb"] * 1024, len(rom)


def test_the_connected_budget_is_the_plain_one_plus_the_uplink_allowance() -> None:
    """The connected budget only adds room for the connected modules: the plain lock's
    budget is the same for both, so a connected build never makes room for the lock."""
    assert BUDGETS["plain_mpy_kb"] == 64
    assert 0 < BUDGETS["connected_mpy_kb"] - BUDGETS["plain_mpy_kb"] <= 8
    assert BUDGETS["connected_mpy_kb"] < BUDGETS["romfs_partition_kb"]
