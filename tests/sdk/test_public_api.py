"""``kagiya.sdk`` as an app imports it: one surface, readable state, a clear missing-BLE error."""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
from pathlib import Path

import kagiya.sdk
import pytest
from kagiya.sdk import client_errors
from kagiya.sdk.i18n import language

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def test_every_name_docs_sdk_imports_from_the_package_exists() -> None:
    imported = set()
    text = DOC.read_text()
    found = re.findall(r"from kagiya\.sdk import \(([\w,\s]+)\)", text)
    found += re.findall(r"from kagiya\.sdk import ([\w, ]+)$", text, re.M)
    for names in found:
        imported |= {n.strip() for n in names.split(",") if n.strip()}
    assert {"find_lock", "LockClient", "LockState", "KeyExpiredError"} <= imported
    for name in imported:  # names and submodules (``from kagiya.sdk import framing``)
        exec(f"from kagiya.sdk import {name}", {})  # noqa: S102 - names from our own docs


def test_every_refusal_and_link_fault_is_exported() -> None:
    errors = {name for name, obj in inspect.getmembers(client_errors, inspect.isclass)
              if issubclass(obj, (client_errors.LockRefusedError, client_errors.LinkError))}
    assert errors <= set(kagiya.sdk.__all__)
    assert kagiya.sdk.KeyRevokedError is client_errors.KeyRevokedError
    with pytest.raises(AttributeError):
        _ = kagiya.sdk.NoSuchThing  # type: ignore[attr-defined]


def test_lock_state_reads_as_words_and_keeps_its_number() -> None:
    state = kagiya.sdk.LockState(9)
    assert state.doors_locked and state.time_trusted and not state.drive_enabled
    assert str(state) == "doors locked, drive disabled, clock trusted"
    assert f"{state}" == "9" and int(state) == 9
    pending = kagiya.sdk.LockState.DRIVE_PENDING | kagiya.sdk.LockState.DOORS_LOCKED
    assert "drive pending" in str(pending)
    with language("ja"):
        assert kagiya.sdk.LockState(9).describe() == "ドア施錠中、駆動無効、時計は確認済み"


def test_importing_the_protocol_library_does_not_load_the_ble_stack() -> None:
    code = ("import sys, kagiya.sdk, kagiya.sdk.credential, kagiya.sdk.messages\n"
            "print('bleak' in sys.modules)")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_no_bluetooth_service_is_a_clear_sdk_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux without a reachable BlueZ: bleak's D-Bus connection fails; the app gets one
    SDK error saying what to set up, not a D-Bus traceback or a retryable link fault."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the BlueZ backend is Linux's")
    monkeypatch.delenv("KAGIYA_BLE_TRANSPORT", raising=False)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/kagiya-test-bus")
    with pytest.raises(kagiya.sdk.BleUnavailableError) as scan:
        asyncio.run(kagiya.sdk.find_lock("KGY-0001", timeout=1))
    assert scan.value.retryable is False
    assert "KAGIYA_BLE_TRANSPORT" in str(scan.value) and "Bluetooth" in str(scan.value)

    async def connect() -> None:
        async with kagiya.sdk.LockClient("AA:BB:CC:DD:EE:FF", connect_timeout=1):
            pass

    with pytest.raises(kagiya.sdk.BleUnavailableError):
        asyncio.run(connect())


def test_bench_transport_without_bumble_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_BLE_TRANSPORT", "tcp-client:127.0.0.1:9")
    monkeypatch.setitem(sys.modules, "kagiya.hil.bumble_backend", None)
    from kagiya.sdk.ble import default_backend

    with pytest.raises(kagiya.sdk.BleUnavailableError, match=r"kagiya\[bench\]"):
        default_backend()


def test_test_only_helpers_are_not_in_the_sdk() -> None:
    """The golden-vector generator, the deterministic RNG and the Bumble backend are bench
    code (``kagiya.hil``): an app importing ``kagiya.sdk`` cannot pick them up."""
    import importlib.util

    for name in ("drbg", "vectors", "bumble_backend"):
        assert importlib.util.find_spec(f"kagiya.sdk.{name}") is None, name
        assert importlib.util.find_spec(f"kagiya.hil.{name}") is not None, name
