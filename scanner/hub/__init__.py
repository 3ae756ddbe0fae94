"""The venue hub."""
