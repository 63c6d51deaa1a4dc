"""``python -m kagiya.server run|admin …`` — the same as ``kagiya server …``."""

from __future__ import annotations

import argparse
import sys

from kagiya.server.cli import register


def main() -> int:
    """Parse and run."""
    parser = argparse.ArgumentParser(prog="python -m kagiya.server")
    register(parser)
    args = parser.parse_args()
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
