"""``kagiya install flash``: write a MicroPython build to an ESP32 with esptool.

The image must be a MicroPython "firmware.bin" for ESP32-class chips: an ESP-IDF image
that starts with the second-stage bootloader, written at the chip's bootloader offset. Its
header says which chip it was built for (ESP-IDF app image format: magic ``0xE9`` at byte
0, the extended header's ``chip_id`` little-endian u16 at byte 12). The tools read it,
ask the board which chip it is (esptool's ROM bootloader handshake) and refuse a mismatch
before anything is written. Download images from https://micropython.org/download/
(e.g. ``ESP32_GENERIC``, ``ESP32_GENERIC_S3``).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.report import Reporter

_MAGIC = 0xE9
_HEADER = 24  # 8-byte image header + 16-byte extended header
_DOWNLOAD_HINT = ("download the MicroPython build for your board from "
                  "https://micropython.org/download/ (ESP32_GENERIC, ESP32_GENERIC_S3, …)")


@dataclass(frozen=True)
class ImageInfo:
    """What the image header says."""

    path: Path
    size: int
    chip: str  # esptool's name, e.g. "ESP32-S3"
    chip_id: int
    offset: int  # where it is written (the chip's bootloader offset)


def _chip_defs() -> dict[int, Any]:
    from esptool.targets import CHIP_DEFS

    return {c.IMAGE_CHIP_ID: c for c in CHIP_DEFS.values() if c.IMAGE_CHIP_ID is not None}


def inspect_image(path: Path) -> ImageInfo:
    """Validate ``path`` as an ESP32 MicroPython image and return its target chip."""
    if not path.is_file():
        raise InstallError("image-invalid", f"no firmware image at {path}", _DOWNLOAD_HINT)
    with path.open("rb") as f:
        head = f.read(_HEADER)
    size = path.stat().st_size
    if head[:4] == b"UF2\n":
        raise InstallError("image-invalid", f"{path.name} is a UF2 file, not an ESP32 image",
                           "use the .bin build for ESP32 boards; " + _DOWNLOAD_HINT)
    if head[:4] == b"\x7fELF":
        raise InstallError("image-invalid", f"{path.name} is an ELF file, not a flashable image",
                           "use the .bin build; " + _DOWNLOAD_HINT)
    if len(head) < _HEADER or head[0] != _MAGIC:
        raise InstallError("image-invalid",
                           f"{path.name} is not an ESP32 firmware image (bad header)",
                           _DOWNLOAD_HINT)
    chip_id = struct.unpack_from("<H", head, 12)[0]
    chip = _chip_defs().get(chip_id)
    if chip is None:
        raise InstallError("image-invalid",
                           f"{path.name} is built for an unknown chip (chip ID {chip_id})",
                           _DOWNLOAD_HINT)
    return ImageInfo(path, size, chip.CHIP_NAME, chip_id, int(chip.BOOTLOADER_FLASH_OFFSET))


@contextlib.contextmanager
def _quiet(rep: Reporter) -> Any:
    """esptool prints progress to stdout: keep stdout clean for ``--json``."""
    if rep.as_json:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        yield


def _detect(port: str, rep: Reporter) -> Any:
    from esptool import cmds
    from esptool.util import FatalError
    from serial import SerialException

    if not port or not os.path.exists(port):
        raise InstallError("wrong-port" if port else "no-board", f"no board at {port or '?'}",
                           "plug the board in and pass its port with --port")
    try:
        with _quiet(rep), contextlib.redirect_stderr(io.StringIO()):
            return cmds.detect_chip(port, connect_attempts=3)
    except (FatalError, SerialException, OSError) as exc:
        text = str(exc)
        if "Could not exclusively lock" in text or "busy" in text.lower():
            raise InstallError("port-busy", f"{port} is in use by another program",
                               "close the other program using the port and try again") from exc
        raise InstallError(
            "board-not-responding", f"no ESP32 bootloader answers on {port}",
            "hold the board's BOOT button while pressing RESET (download mode), check the "
            "cable carries data, and that --port names the board",
        ) from exc


def flash(port: str, image_path: Path, rep: Reporter, *, erase: bool = False,
          baud: int = 460800) -> dict[str, Any]:
    """Check the image against the board's chip, then write it (optionally erasing first)."""
    from esptool import cmds
    from esptool.util import FatalError
    from serial import SerialException

    image = inspect_image(image_path)
    rep.say(f"image {image.path.name}: MicroPython for {image.chip}, {image.size} bytes")
    esp = _detect(port, rep)
    try:
        detected = str(esp.CHIP_NAME)
        if detected != image.chip:
            raise InstallError(
                "wrong-chip", f"the image is built for {image.chip} but the board is {detected}",
                "download the MicroPython build for " + detected + "; " + _DOWNLOAD_HINT,
            )
        with _quiet(rep):
            esp = esp.run_stub()
            if baud:
                esp.change_baud(baud)
            cmds.attach_flash(esp)
            if erase:
                cmds.erase_flash(esp)
            cmds.write_flash(esp, [(image.offset, str(image.path))])
            cmds.reset_chip(esp, "hard-reset")
    except InstallError:
        raise
    except (FatalError, SerialException, OSError) as exc:
        msg = str(exc)
        raise InstallError(
            "flash-failed", f"writing the image failed: {msg}",
            "keep the cable connected and run flash again (add --erase if it repeats)",
        ) from exc
    finally:
        with contextlib.suppress(Exception):
            esp._port.close()
    result = {"chip": detected, "image": str(image.path), "bytes": image.size,
              "offset": image.offset, "erased": erase}
    rep.done("flash", result, f"{image.size} bytes written to the {detected} at "
                              f"0x{image.offset:x}; board reset")
    return result
