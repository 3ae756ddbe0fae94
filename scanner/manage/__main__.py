"""``python -m scanner.manage passes list --config FILE``: the manage commands on their own."""

from __future__ import annotations

from scanner.manage.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
