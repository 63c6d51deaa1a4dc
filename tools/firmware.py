"""Where the lock firmware is: the one lookup the installer, the bench and the demo share.

The firmware tree (``boot.py``, ``main.py``, ``lib/kagiya_lock/``, ``targets.json``) ships
inside the ``kagiya`` distribution as the data package ``kagiya.firmware``: in an editable
checkout that name maps to the checkout's ``firmware/`` folder, in a wheel install it is
the copy under ``site-packages/kagiya/firmware``. ``$KAGIYA_FIRMWARE_DIR`` points the tools
at another tree (a firmware developer's work copy).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ENV = "KAGIYA_FIRMWARE_DIR"
PACKAGE = "kagiya.firmware"


class FirmwareNotFoundError(RuntimeError):
    """No firmware tree where the installation should have one."""


def is_firmware_tree(path: Path) -> bool:
    """True if ``path`` looks like a Kagiya firmware tree (``main.py`` and the lock package)."""
    return (path / "main.py").is_file() and (path / "lib" / "kagiya_lock").is_dir()


def firmware_root() -> Path:
    """The firmware tree to deploy or run: ``$KAGIYA_FIRMWARE_DIR`` when set, else the one
    shipped with this installation. Raises :class:`FirmwareNotFoundError` if neither is a
    firmware tree."""
    env = os.environ.get(ENV)
    if env:
        root = Path(env).expanduser().resolve()
        if not is_firmware_tree(root):
            raise FirmwareNotFoundError(f"${ENV}={env} is not a firmware tree "
                                        "(no main.py and lib/kagiya_lock/)")
        return root
    spec = importlib.util.find_spec(PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        root = Path(location).resolve()
        if is_firmware_tree(root):
            return root
    raise FirmwareNotFoundError(
        "this installation of kagiya has no firmware tree (reinstall it: "
        "`pip install --force-reinstall 'kagiya[tools]'`, or set $KAGIYA_FIRMWARE_DIR)")
