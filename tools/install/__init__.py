"""Installer tools: ``kagiya install …`` flashes, deploys, provisions, registers and tests a lock.

The board is reached over USB with mpremote's raw REPL (a virtual board's pty in tests).
See docs/installer.md.
"""

from kagiya.tools.install.cli import register

__all__ = ["register"]
