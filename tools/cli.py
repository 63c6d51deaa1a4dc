"""The ``kagiya`` command: one entry point whose subcommands grow with the product.

Each component registers its own sub-command group lazily so that ``kagiya --help`` stays
fast and a missing optional part never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# group name -> (module that provides ``register(subparsers)``, one-line help)
GROUPS: dict[str, tuple[str, str]] = {
    "server": ("kagiya.server.cli", "run and administer the key server"),
    "lock": ("kagiya.hil.cli", "virtual lock boards and the BLE lock simulator"),
    "phone": ("kagiya.phone.cli", "the phone app simulator"),
    "install": (
        "kagiya.tools.install",
        "installer steps: flash, deploy, provision, register, self-test",
    ),
    "demo": ("kagiya.tools.demo", "the full offline unlock story"),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command group."""
    parser = argparse.ArgumentParser(prog="kagiya", description="Kagiya digital keys for vehicles")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    for name, (module_name, help_text) in GROUPS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith("kagiya"):
                continue  # that component is not built yet
            raise
        module.register(sub.add_parser(name, help=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kagiya`` command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
