"""``kagiya install harden``: ESP32 flash encryption (release mode) + secure boot v2.

A locked-down lock still keeps its private keys and key cache in flash; a thief who reads
the SPI flash (desoldered, or through the ROM bootloader) would read them. Hardening uses
Espressif's own tools (``espsecure``, ``espefuse``, ``esptool``, shipped with esptool):

1. keys (``espsecure``): the operator's secure boot v2 signing key (RSA-3072, kept in
   ``--keys``; it signs every later firmware image) and its public-key digest; a fresh
   per-board flash encryption key (256 bits), deleted from the laptop once burnt unless
   ``--keep-flash-key``;
2. images (with ``--bootloader/--partitions/--app``, a MicroPython build configured for
   secure boot v2 and release-mode flash encryption): signed (``sign-data --version 2``),
   encrypted for their flash offsets (``encrypt-flash-data``) and written (``esptool``);
3. eFuses (``espefuse``, **irreversible**): the flash encryption key into BLOCK1 (read-
   and write-protected), the signing key digest into BLOCK2, ``FLASH_CRYPT_CONFIG=0xF``,
   ``FLASH_CRYPT_CNT=127`` (release mode: never off again), ``ABS_DONE_1`` (secure boot
   v2), ``JTAG_DISABLE``, ``CONSOLE_DEBUG_DISABLE`` and the ROM download mode's
   ``DISABLE_DL_ENCRYPT/DECRYPT/CACHE``;
4. verification: ``espefuse summary --format json`` shows every value burnt and BLOCK1
   unreadable.

Without ``--burn-efuses PORT:CHIP`` (naming exactly the ``--port`` and ``--chip`` given)
nothing is burnt: the plan is printed. ``--virt-efuses FILE`` runs the eFuse steps against
espefuse's virtual eFuses (tests), and skips writing the flash (no chip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.report import Reporter

CHIPS = ("esp32",)  # secure boot v2 on the ESP32 needs silicon revision 3
OFFSETS = {"bootloader": 0x1000, "partitions": 0x8000, "app": 0x10000}
RELEASE = {"FLASH_CRYPT_CONFIG": 15, "FLASH_CRYPT_CNT": 127, "ABS_DONE_1": True,
           "JTAG_DISABLE": True, "CONSOLE_DEBUG_DISABLE": True, "DISABLE_DL_ENCRYPT": True,
           "DISABLE_DL_DECRYPT": True, "DISABLE_DL_CACHE": True}
SIGNING_KEY = "secure_boot_signing_key.pem"
DIGEST = "secure_boot_key_digest.bin"
FLASH_KEY = "flash_encryption_key.bin"


@dataclass(frozen=True)
class Step:
    """One command of the plan."""

    what: str
    tool: str  # espsecure | espefuse | esptool
    args: tuple[str, ...]
    irreversible: bool = False
    needs_chip: bool = False  # skipped with virtual eFuses

    def line(self) -> str:
        """The command as an installer would type it."""
        return " ".join((self.tool, *self.args))


@dataclass(frozen=True)
class Target:
    """Where the eFuse commands go: a chip on a port, or a virtual eFuse file."""

    chip: str
    port: str
    virt_file: Path | None = None

    def efuse_args(self) -> tuple[str, ...]:
        """espefuse's connection options."""
        if self.virt_file is not None:
            return ("--chip", self.chip, "--virt", "--path-efuse-file", str(self.virt_file))
        return ("--chip", self.chip, "--port", self.port)


def _run(tool: str, args: tuple[str, ...], what: str) -> str:
    out = subprocess.run([sys.executable, "-m", tool, *args], capture_output=True, text=True,
                         timeout=300, check=False)
    if out.returncode:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise InstallError("harden-failed", f"{tool} failed while {what}: {' '.join(tail)}",
                           "check the port and the chip; nothing after this step was done")
    return out.stdout


def efuses(target: Target) -> dict[str, Any]:
    """The chip's eFuse summary (``espefuse summary --format json``), name -> entry."""
    out = _run("espefuse", (*target.efuse_args(), "summary", "--format", "json"),
               "reading the eFuses")
    try:
        return dict(json.loads(out[out.index("{"):]))
    except ValueError as exc:
        raise InstallError("harden-failed", "unreadable eFuse summary from espefuse",
                           "update esptool (pip install -U esptool)") from exc


def hardened(fuses: dict[str, Any]) -> dict[str, bool]:
    """Which release-mode settings are in place (and BLOCK1 unreadable)."""
    done = {name: fuses.get(name, {}).get("value") == value for name, value in RELEASE.items()}
    done["BLOCK1 read-protected"] = fuses.get("BLOCK1", {}).get("readable") is False
    return done


def plan(target: Target, keys: Path, images: dict[str, Path],
         *, have_keys: bool) -> list[Step]:
    """The whole command sequence, in order."""
    sk, digest, fk = keys / SIGNING_KEY, keys / DIGEST, keys / FLASH_KEY
    steps: list[Step] = []
    if not have_keys:
        steps.append(Step("create the operator's secure boot v2 signing key", "espsecure",
                          ("generate-signing-key", "--version", "2", "--scheme", "rsa3072",
                           str(sk))))
    steps += [
        Step("digest of the signing key's public half (burnt into BLOCK2)", "espsecure",
             ("digest-sbv2-public-key", "--keyfile", str(sk), "--output", str(digest))),
        Step("a fresh flash encryption key for this board", "espsecure",
             ("generate-flash-encryption-key", str(fk))),
    ]
    written: list[str] = []
    for name, path in images.items():
        src = path
        if name != "partitions":
            signed = keys / f"{name}.signed.bin"
            steps.append(Step(f"sign the {name} (secure boot v2)", "espsecure",
                              ("sign-data", "--version", "2", "--keyfile", str(sk), "--output",
                               str(signed), str(path))))
            src = signed
        enc = keys / f"{name}.encrypted.bin"
        steps.append(Step(f"encrypt the {name} for offset {OFFSETS[name]:#x}", "espsecure",
                          ("encrypt-flash-data", "--keyfile", str(fk), "--address",
                           f"{OFFSETS[name]:#x}", "--output", str(enc), str(src))))
        written += [f"{OFFSETS[name]:#x}", str(enc)]
    if written:
        steps.append(Step("write the signed, encrypted images", "esptool",
                          ("--chip", target.chip, "--port", target.port, "write-flash",
                           *written), needs_chip=True))
    fuse = target.efuse_args()
    steps += [
        Step("burn the flash encryption key (read- and write-protected)", "espefuse",
             (*fuse, "--do-not-confirm", "burn-key", "flash_encryption", str(fk)),
             irreversible=True),
        Step("burn the secure boot v2 key digest", "espefuse",
             (*fuse, "--do-not-confirm", "burn-key", "secure_boot_v2", str(digest)),
             irreversible=True),
        Step("enable release-mode flash encryption and secure boot v2; close JTAG and the "
             "ROM download mode's flash access", "espefuse",
             (*fuse, "--do-not-confirm", "burn-efuse",
              *(x for name, value in RELEASE.items()
                for x in (name, hex(value) if name == "FLASH_CRYPT_CONFIG" else str(int(value))))),
             irreversible=True),
    ]
    return steps


def harden(target: Target, keys: Path, rep: Reporter, *, confirm: str | None,
           images: dict[str, Path] | None = None, keep_flash_key: bool = False
           ) -> dict[str, Any]:
    """Plan (``confirm`` None) or apply the hardening of ``target``; returns the report."""
    if target.chip not in CHIPS:
        raise InstallError("wrong-chip", f"hardening is implemented for {', '.join(CHIPS)}, "
                           f"not {target.chip}", "pass --chip esp32")
    images = images or {}
    expected = f"{target.port}:{target.chip}"
    if confirm is not None and confirm != expected:
        raise InstallError("usage", f"--burn-efuses must name this board: {expected}",
                           "eFuse burns are irreversible; name the port and chip you mean")
    keys.mkdir(parents=True, exist_ok=True)
    os.chmod(keys, 0o700)
    fuses = efuses(target)
    state = hardened(fuses)
    if all(state.values()):
        already = {"applied": False, "already_hardened": True, "checks": state}
        rep.done("harden", already, "already hardened (release-mode flash encryption, "
                 "secure boot v2): nothing to burn")
        return already
    rev = int(fuses.get("WAFER_VERSION_MAJOR", {}).get("value", 0) or 0)
    steps = plan(target, keys, images, have_keys=(keys / SIGNING_KEY).exists())
    out: dict[str, Any] = {"applied": False, "chip_revision": rev,
                           "plan": [s.line() for s in steps]}
    if confirm is None:
        for s in steps:
            rep.say(f"{'!' if s.irreversible else ' '} {s.line()}    # {s.what}")
        rep.done("harden", out, f"plan only ({len(steps)} commands; ! = irreversible): "
                 f"nothing burnt. Apply with --burn-efuses {expected}")
        return out
    if rev < 3:
        raise InstallError("wrong-chip", f"secure boot v2 needs ESP32 revision 3; this chip "
                           f"is revision {rev}", "use an ESP32 revision 3 (ECO3) module")
    ran, skipped = [], []
    for s in steps:
        if s.needs_chip and target.virt_file is not None:
            skipped.append(s.line())
            continue
        _run(s.tool, s.args, s.what)
        ran.append(s.line())
    if not keep_flash_key:
        (keys / FLASH_KEY).unlink(missing_ok=True)
    state = hardened(efuses(target))
    if not all(state.values()):
        missing = ", ".join(k for k, v in state.items() if not v)
        raise InstallError("harden-failed", f"the eFuses do not show: {missing}",
                           "read them with `espefuse summary` and contact the vendor")
    out.update(applied=True, ran=ran, skipped=skipped, checks=state,
               flash_key_kept=keep_flash_key)
    rep.done("harden", out, "hardened: release-mode flash encryption and secure boot v2 "
             "(keep the signing key in --keys safe: every firmware image needs it)")
    return out
