"""`python -m scanner.server server run --db PATH`: the server CLI without the kiosk's."""

from __future__ import annotations

import argparse
import sys

from scanner.server.cli import add_server_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner.server")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_server_parser(subparsers)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
