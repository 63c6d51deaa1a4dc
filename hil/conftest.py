"""The scenario suite's target selection: ``pytest hil --target sim|hw`` (default sim)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kagiya.hil.sim_target import Target, hardware_target, sim_target


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--target``."""
    parser.addoption("--target", default="sim", choices=("sim", "hw"),
                     help="scenario target: sim (virtual lock, default) or hw (real board)")


def pytest_configure(config: pytest.Config) -> None:
    """``--target hw`` without a usable board is a usage error naming what is missing (a
    run of skips would read as a pass)."""
    if config.getoption("--target", "sim") == "hw":
        t = hardware_target()
        if isinstance(t, str):
            raise pytest.UsageError(f"--target hw: {t}")


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A freshly provisioned lock (virtual, or the attached board)."""
    if request.config.getoption("--target") == "hw":
        t = hardware_target()
        if isinstance(t, str):
            pytest.skip(t)
        yield t
        return
    t = sim_target(tmp_path / "lock")
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def sim(target: Target) -> Target:
    """The target, when it is the virtual lock (power cycles, vehicle inputs, faults)."""
    if target.sim is None:
        pytest.skip("needs the virtual bench (power cycle / fault injection)")
    return target


@pytest.fixture(autouse=True)
async def _close_radios() -> AsyncIterator[None]:
    """Close the phones' Bumble radios opened by a test."""
    yield
    from kagiya.hil.bumble_backend import close_adapters

    await close_adapters()
