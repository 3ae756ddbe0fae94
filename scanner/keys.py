"""The PassQR API key: from the environment, a systemd credential or a private file.

Never from the config file or the command line, never in a message. A key file
must be a regular file only its owner can read; at most 4 KiB of it is read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from scanner.errors import ConfigError, register_secret
from scanner.smallfile import NotARegularFile, read_small_file

if TYPE_CHECKING:
    from scanner.config import Config


def _check_key(key: str, origin: str) -> str:
    key = _checked(key, origin)
    register_secret(key)
    return key


def _checked(key: str, origin: str) -> str:
    key = key.strip()
    if not key:
        raise ConfigError(f"{origin}: the API key is empty")
    if any(ch.isspace() for ch in key) or not key.isprintable():
        raise ConfigError(f"{origin}: the API key contains spaces or control characters")
    if not key.startswith("pqr_"):
        raise ConfigError(f"{origin}: this does not look like a PassQR API key (pqr_live_...)")
    return key


_KEY_FILE_MAX = 4096
"""Bytes read from a key file at most: a key is about 50; this is not a key file."""


def read_key_file(path: Path, origin: str, *, private: bool = True) -> str:
    """The API key in ``path``, checked; ``origin`` says where the path came from.

    Args:
        path: the file.
        origin: for messages, e.g. ``"api.key_file"``.
        private: refuse a file group or others can read. A systemd credential
            needs no such check: systemd makes it and sets its mode.

    Raises:
        ConfigError: unreadable, not a regular file, readable by others (when
            ``private``), not UTF-8, or not a key. The message never contains the key.
    """
    where = f"{origin} {path}"
    try:
        data, mode = read_small_file(path, _KEY_FILE_MAX)
    except NotARegularFile:
        raise ConfigError(f"{where}: not a regular file") from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot read the API key ({err.strerror})") from err
    if private and mode & (stat.S_IRGRP | stat.S_IROTH):
        raise ConfigError(
            f"{where}: readable by other users (mode {stat.S_IMODE(mode):04o}); chmod 600 {path}"
        )
    if len(data) > _KEY_FILE_MAX:
        raise ConfigError(f"{where}: too long to hold only an API key")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Not chained: the decode error carries the file's bytes, the key among them.
        raise ConfigError(f"{where}: not UTF-8 text") from None
    return _check_key(text, where)


def load_api_key(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """The kiosk's API key: see :func:`load_key` (the file is ``api.key_file``)."""
    return load_key(config.api.key_file, "api.key_file", environ)


def load_key(key_file: Path | None, file_key: str, environ: Mapping[str, str] | None = None) -> str:
    """Find the API key: ``PASSQR_API_KEY``, then the systemd credential, then ``key_file``.

    The credential comes before the file: a unit with ``LoadCredential=`` is the
    deliberate choice of whoever installed the service, and the file it loads
    from is usually readable by root only. ``file_key`` names the config key of
    ``key_file`` in messages (``api.key_file``, ``upstream.key_file``).

    Raises:
        ConfigError: no key anywhere, or an unreadable or malformed one, or a
            key file others can read. The message never contains the key.
    """
    env = os.environ if environ is None else environ
    if env.get("PASSQR_API_KEY"):
        return _check_key(env["PASSQR_API_KEY"], "PASSQR_API_KEY")
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir and os.path.exists(os.path.join(cred_dir, "api-key")):
        return read_key_file(Path(cred_dir) / "api-key", "systemd credential", private=False)
    if key_file is not None:
        return read_key_file(key_file, file_key)
    raise ConfigError(
        f"no API key: set PASSQR_API_KEY, {file_key} in the config, "
        "or LoadCredential=api-key:... in the systemd unit"
    )
