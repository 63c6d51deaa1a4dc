"""Phone profiles: one directory per simulated phone, holding its keystore and outbox.

Profiles live under ``$KAGIYA_PHONE_HOME`` (default ``~/.kagiya/phones``), one directory
per profile name, so one laptop can play several phones (``--profile alice``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kagiya.phone.keystore import Keystore
from kagiya.phone.outbox import Outbox

HOME_ENV = "KAGIYA_PHONE_HOME"
DEFAULT_PROFILE = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_home() -> Path:
    """``$KAGIYA_PHONE_HOME`` or ``~/.kagiya/phones``."""
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path.home() / ".kagiya" / "phones"


class Profile:
    """A named phone profile: its directory, keystore and outbox."""

    def __init__(self, name: str = DEFAULT_PROFILE, home: Path | None = None,
                 passphrase: str | None = None) -> None:
        if not _NAME.match(name):
            raise ValueError(
                f"profile name {name!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        self.name = name
        self.directory = (home or default_home()) / name
        self.keystore = Keystore(self.directory, passphrase)
        self.outbox = Outbox(self.directory, self.keystore.profile_key)

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, {str(self.directory)!r})"
