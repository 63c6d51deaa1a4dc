"""``kagiya install flash``: image validation, chip check and the no-board paths.

A real esptool flash needs hardware; these tests cover everything before the first write.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kagiya.hil.board import VirtualBoard
from kagiya.tools.install import flash

from tests.tools.conftest import Result

Kagiya = Callable[..., Result]
ESP32, ESP32_S3 = 0, 9  # ESP-IDF image chip IDs


def _image(path: Path, chip_id: int, magic: int = 0xE9) -> Path:
    head = bytearray(4096)
    head[0] = magic
    head[1] = 3  # segments
    struct.pack_into("<H", head, 12, chip_id)
    path.write_bytes(bytes(head))
    return path


@pytest.mark.parametrize(("chip_id", "name", "offset"), [
    (ESP32, "ESP32", 0x1000), (ESP32_S3, "ESP32-S3", 0x0), (5, "ESP32-C3", 0x0)])
def test_image_header_names_the_chip(tmp_path: Path, chip_id: int, name: str, offset: int) -> None:
    info = flash.inspect_image(_image(tmp_path / "fw.bin", chip_id))
    assert (info.chip, info.offset) == (name, offset)


@pytest.mark.parametrize(("content", "needle"), [
    (b"UF2\n" + b"\0" * 60, "UF2"),
    (b"\x7fELF" + b"\0" * 60, "ELF"),
    (b"\x00" * 64, "not an ESP32 firmware image"),
    (b"\xe9\x03", "not an ESP32 firmware image"),
])
def test_invalid_images_are_refused_before_touching_the_board(
        kagiya: Kagiya, tmp_path: Path, content: bytes, needle: str) -> None:
    img = tmp_path / "fw.bin"
    img.write_bytes(content)
    r = kagiya("install", "flash", "--port", "/dev/ttyNOPE0", "--image", str(img), "--json")
    assert r.status == 4 and r.json["error"] == "image-invalid"
    assert needle in r.json["message"] and "micropython.org" in r.json["hint"]


def test_missing_image_and_unknown_chip(kagiya: Kagiya, tmp_path: Path) -> None:
    r = kagiya("install", "flash", "--port", "/dev/x", "--image", str(tmp_path / "no.bin"),
               "--json")
    assert r.status == 4 and r.json["error"] == "image-invalid"
    r = kagiya("install", "flash", "--port", "/dev/x", "--image",
               str(_image(tmp_path / "odd.bin", 0x7777)), "--json")
    assert r.status == 4 and "unknown chip" in r.json["message"]


def test_no_board_at_the_port(kagiya: Kagiya, tmp_path: Path) -> None:
    img = _image(tmp_path / "fw.bin", ESP32)
    r = kagiya("install", "flash", "--port", "/dev/ttyNOPE0", "--image", str(img), "--json")
    assert r.status == 3 and r.json["error"] == "wrong-port"


def test_a_board_without_rom_bootloader_answer_is_not_responding(
        kagiya: Kagiya, board: VirtualBoard, tmp_path: Path) -> None:
    img = _image(tmp_path / "fw.bin", ESP32)
    r = kagiya("install", "flash", "--port", board.port, "--image", str(img), "--json")
    assert r.status == 3 and r.json["error"] == "board-not-responding"
    assert "BOOT" in r.json["hint"]


def test_wrong_chip_is_refused_before_writing(
        kagiya: Kagiya, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[Any] = []

    class FakeEsp:  # what esptool's detect_chip returns for a plain ESP32
        CHIP_NAME = "ESP32"

        class _port:
            @staticmethod
            def close() -> None:
                pass

        def run_stub(self) -> FakeEsp:
            writes.append("stub")
            return self

    monkeypatch.setattr(flash, "_detect", lambda port, rep: FakeEsp())
    img = _image(tmp_path / "s3.bin", ESP32_S3)
    r = kagiya("install", "flash", "--port", "/dev/ttyUSB0", "--image", str(img), "--json")
    assert r.status == 4 and r.json["error"] == "wrong-chip"
    assert "ESP32-S3" in r.json["message"] and "ESP32" in r.json["hint"]
    assert writes == []  # nothing was sent to the chip
