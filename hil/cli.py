"""``kagiya lock …``: virtual lock boards (``board``) and the BLE lock simulator (``sim``)."""

from __future__ import annotations

import argparse
import importlib


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``kagiya lock`` sub-commands provided by the bench modules that exist."""
    sub = parser.add_subparsers(dest="lock_command", metavar="SUBCOMMAND", required=True)
    for module_name in ("kagiya.hil.board_cli", "kagiya.hil.sim_cli"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(sub)
