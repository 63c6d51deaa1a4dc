"""``kagiya install harden`` against espefuse's virtual eFuses (#18 §2): the exact command
sequence of release-mode flash encryption + secure boot v2 runs without a chip; nothing is
burnt without a confirmation naming the port and chip; a chip that cannot do secure boot
v2 is refused before anything is burnt."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kagiya.tools.install import harden

from tests.tools.conftest import Result

Kagiya = Callable[..., Result]
PORT = "/dev/ttyUSB7"


def _fuses(path: Path) -> dict[str, Any]:
    return harden.efuses(harden.Target("esp32", PORT, path))


def _espefuse(path: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "espefuse", "--chip", "esp32", "--virt",
                    "--path-efuse-file", str(path), "--do-not-confirm", *args],
                   check=True, capture_output=True, timeout=120)


def _harden(kagiya: Kagiya, efuse_file: Path, keys: Path, *extra: str) -> Result:
    return kagiya("install", "harden", "--port", PORT, "--chip", "esp32", "--keys", str(keys),
                  "--virt-efuses", str(efuse_file), "--json", *extra)


def test_plan_burns_nothing_and_a_wrong_confirmation_is_refused(
        kagiya: Kagiya, tmp_path: Path) -> None:
    efuse_file, keys = tmp_path / "efuses.json", tmp_path / "keys"
    r = _harden(kagiya, efuse_file, keys)
    assert r.status == 0, r.out + r.err
    step = r.json["steps"]["harden"]
    assert step["applied"] is False
    plan = "\n".join(step["plan"])
    for part in ("generate-signing-key --version 2 --scheme rsa3072",
                 "burn-key flash_encryption", "burn-key secure_boot_v2",
                 "FLASH_CRYPT_CNT 127", "ABS_DONE_1 1", "JTAG_DISABLE 1",
                 "DISABLE_DL_DECRYPT 1"):
        assert part in plan, part
    assert plan.index("burn-key flash_encryption") < plan.index("FLASH_CRYPT_CNT 127")
    assert _fuses(efuse_file)["FLASH_CRYPT_CNT"]["value"] == 0
    for confirm in ("/dev/ttyUSB0:esp32", f"{PORT}:esp32s3", PORT):
        bad = _harden(kagiya, efuse_file, keys, "--burn-efuses", confirm)
        assert bad.status == 2 and bad.json["error"] == "usage", confirm
        assert f"{PORT}:esp32" in bad.json["message"]
    fuses = _fuses(efuse_file)
    assert fuses["FLASH_CRYPT_CNT"]["value"] == 0 and fuses["ABS_DONE_1"]["value"] is False
    assert fuses["BLOCK1"]["readable"] is True


def test_a_chip_without_secure_boot_v2_is_refused_before_any_burn(
        kagiya: Kagiya, tmp_path: Path) -> None:
    efuse_file, keys = tmp_path / "efuses.json", tmp_path / "keys"
    r = _harden(kagiya, efuse_file, keys, "--burn-efuses", f"{PORT}:esp32")  # revision 0
    assert r.status == 4 and r.json["error"] == "wrong-chip"
    assert "revision 3" in r.json["message"]
    assert _fuses(efuse_file)["FLASH_CRYPT_CNT"]["value"] == 0


def test_apply_on_virtual_efuses_then_again(kagiya: Kagiya, tmp_path: Path) -> None:
    efuse_file, keys = tmp_path / "efuses.json", tmp_path / "keys"
    _espefuse(efuse_file, "burn-efuse", "CHIP_VER_REV1", "1", "CHIP_VER_REV2", "1")  # rev 3
    images = {}
    for name, size in (("bootloader", 20000), ("partitions", 3072), ("app", 70000)):
        images[name] = tmp_path / f"{name}.bin"
        images[name].write_bytes(bytes(range(256)) * (size // 256))
    r = _harden(kagiya, efuse_file, keys, "--burn-efuses", f"{PORT}:esp32",
                *(x for n, p in images.items() for x in (f"--{n}", str(p))))
    assert r.status == 0, r.out + r.err
    step = r.json["steps"]["harden"]
    assert step["applied"] is True and all(step["checks"].values())
    assert [s for s in step["skipped"] if "write-flash" in s]  # no chip to write to
    fuses = _fuses(efuse_file)
    assert fuses["FLASH_CRYPT_CNT"]["value"] == 127 and fuses["ABS_DONE_1"]["value"] is True
    assert fuses["BLOCK1"]["readable"] is False  # the flash key cannot be read back
    digest = (keys / harden.DIGEST).read_bytes()
    assert bytes.fromhex(fuses["BLOCK2"]["value"].replace(" ", "")) == digest
    assert not (keys / harden.FLASH_KEY).exists()  # not left on the laptop
    # the app is signed with the operator's key and stored encrypted
    subprocess.run([sys.executable, "-m", "espsecure", "verify-signature", "--version", "2",
                    "--keyfile", str(keys / harden.SIGNING_KEY),
                    str(keys / "app.signed.bin")], check=True, capture_output=True)
    encrypted = (keys / "app.encrypted.bin").read_bytes()
    assert images["app"].read_bytes()[:4096] not in encrypted
    # idempotent: a hardened chip is recognised, nothing is burnt again
    again = _harden(kagiya, efuse_file, keys, "--burn-efuses", f"{PORT}:esp32")
    assert again.status == 0 and again.json["steps"]["harden"]["already_hardened"] is True
