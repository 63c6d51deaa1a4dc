"""Fixtures of the firmware tests: a provisioned lock in a MicroPython process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firmware.harness import Bench


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    """A provisioned lock (fresh state directory) and its issuer."""
    b = Bench(tmp_path / "state")
    yield b
    b.close()
