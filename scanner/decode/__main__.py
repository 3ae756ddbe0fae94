"""``python -m scanner.decode [--json] [--decoder NAME] IMAGE...``: the decode command alone."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scanner.decode.cli import add_decode_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner")
    add_decode_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["decode", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
