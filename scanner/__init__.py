"""passqr-scanner: a door and gate scanner for PassQR passes."""

__version__ = "0.1.0"
