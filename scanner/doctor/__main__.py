"""``python -m scanner.doctor [--config FILE] [--relay-click] [--json]``."""

from __future__ import annotations

from scanner.doctor.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
