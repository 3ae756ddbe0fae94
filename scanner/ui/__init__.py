"""The Textual kiosk UI. The core (``scanner.runtime`` and below) never imports this."""

from __future__ import annotations

from scanner.ui.app import KioskApp

__all__ = ["KioskApp"]
