"""The ``kagiya`` command: one entry point whose subcommands grow with the product.

Each component registers its own sub-command group lazily so that ``kagiya --help`` stays
fast and a missing optional part never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

# group name -> (module that provides ``register(subparsers)``, one-line help, the extra
# of the ``kagiya`` distribution that installs its dependencies)
GROUPS: dict[str, tuple[str, str, str]] = {
    "server": ("kagiya.server.cli", "run and administer the key server", "server"),
    "lock": ("kagiya.hil.cli", "virtual lock boards and the BLE lock simulator", "bench"),
    "phone": ("kagiya.phone.cli", "the phone app simulator", "phone"),
    "install": (
        "kagiya.tools.install",
        "installer steps: flash, deploy, provision, register, self-test; list ports",
        "tools",
    ),
    "demo": ("kagiya.tools.demo", "the full offline unlock story", "bench"),
}


def version() -> str:
    """The installed version of the ``kagiya`` distribution."""
    try:
        return metadata.version("kagiya")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _missing_extra(name: str, extra: str, missing: str) -> Callable[[argparse.Namespace], int]:
    def handler(_args: argparse.Namespace) -> int:
        print(f"kagiya {name}: this installation lacks {missing!r}; install the {extra} extra: "
              f"pip install 'kagiya[{extra}]'", file=sys.stderr)
        return 2
    return handler


class _Parser(argparse.ArgumentParser):
    """An argument parser that remembers itself in the namespace, so that an unknown flag
    is reported with the usage of the sub-command it was given to (argparse's subparsers
    inherit this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(_usage_parser=self)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command group; a group whose extra is not
    installed stays listed and says which extra to install."""
    parser = _Parser(prog="kagiya", description="Kagiya digital keys for vehicles")
    parser.add_argument("-V", "--version", action="version", version=f"kagiya {version()}")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    for name, (module_name, help_text, extra) in GROUPS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.startswith("kagiya"):
                continue  # that component is not part of this build
            p = sub.add_parser(name, help=f"{help_text} (needs kagiya[{extra}])",
                               add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(handler=_missing_extra(name, extra, exc.name))
            continue
        module.register(sub.add_parser(name, help=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kagiya`` command line; returns the process exit code."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # exits with status 2 and the sub-command's own usage line
        getattr(args, "_usage_parser", parser).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except ModuleNotFoundError as exc:  # a dependency the command imports when it runs
        if exc.name is None or exc.name.startswith("kagiya") or args.group not in GROUPS:
            raise
        return _missing_extra(args.group, GROUPS[args.group][2], exc.name)(args)


if __name__ == "__main__":
    sys.exit(main())
