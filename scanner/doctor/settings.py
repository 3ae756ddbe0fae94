"""The config file and the API key: can the kiosk start at all?

The key is never shown, only where it was found; the file it came from is checked
for who else can read it and whether the service user can.
"""

from __future__ import annotations

import contextlib
import dataclasses
import stat
from collections.abc import Mapping
from pathlib import Path

from scanner.config import Config, load_api_key, load_config, read_key_file
from scanner.doctor.report import Check, Status
from scanner.errors import ConfigError

__all__ = ["DEFAULT_CREDENTIAL_FILE", "check_config", "check_key"]

#: Where the systemd units' ``LoadCredential=api-key:`` reads the key from.
DEFAULT_CREDENTIAL_FILE = Path("/etc/passqr-scanner/api-key")


def check_config(path: Path) -> tuple[Check, Config | None]:
    try:
        config = load_config(path)
    except ConfigError as err:
        return (
            Check(
                name="config",
                status=Status.FAIL,
                detail=err.message,
                fix="correct the file and key named above (every key is in the README's "
                "Configuration table; config/example.toml is a template)",
            ),
            None,
        )
    kinds = ", ".join(s.type for s in config.sources) or "none"
    relay = config.relay.type + (f" on {config.relay.port}" if config.relay.port else "")
    detail = (
        f"{path}: gate {config.gate.name!r}, sources: {kinds}; relay: {relay}; "
        f"API {config.api.base_url}"
    )
    check = Check(name="config", status=Status.OK, detail=detail)
    if not config.sources:
        check = dataclasses.replace(
            check,
            status=Status.WARN,
            detail=detail + " (no [[sources]]: nothing will be scanned)",
            fix="add a [[sources]] table for the scanner",
        )
    return check, config


@dataclasses.dataclass(frozen=True)
class _Origin:
    """Where the kiosk would find its key: the words, the file, and how to load it."""

    text: str
    file: Path | None
    config: Config
    environ: Mapping[str, str]
    by_hand: bool = False
    """The credential file read outside the unit (systemd hands the service its own copy)."""


def _origin(config: Config, environ: Mapping[str, str], credential_file: Path) -> _Origin | None:
    """In the kiosk's order; None when there is no key anywhere."""
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if environ.get("PASSQR_API_KEY"):
        return _Origin("the environment variable PASSQR_API_KEY", None, config, environ)
    if config.api.key_file is not None:
        file = config.api.key_file
        return _Origin(f"api.key_file {file}", file, config, environ)
    if cred_dir and (Path(cred_dir) / "api-key").exists():
        file = Path(cred_dir) / "api-key"
        return _Origin(f"the systemd credential {file}", file, config, environ)
    if credential_file.exists():
        # Run by hand, outside the unit: read what LoadCredential= would hand over.
        api = dataclasses.replace(config.api, key_file=credential_file)
        text = f"{credential_file} (what the units' LoadCredential= hands to the service)"
        return _Origin(
            text, credential_file, dataclasses.replace(config, api=api), {}, by_hand=True
        )
    return None


def check_key(
    config: Config, environ: Mapping[str, str], credential_file: Path
) -> tuple[Check, str | None]:
    name = "api key"
    origin = _origin(config, environ, credential_file)
    if origin is None:
        return Check(
            name=name,
            status=Status.FAIL,
            detail="no API key: not in PASSQR_API_KEY, api.key_file or a systemd credential",
            fix=f"put the key (pqr_live_...) in {credential_file} (owner root, mode 0600) "
            "for the systemd unit's LoadCredential=, or set api.key_file in the config",
        ), None
    try:
        if origin.by_hand:
            # systemd copies it with its own mode: others reading it is a WARN below.
            key = read_key_file(credential_file, "credential file", private=False)
        else:
            key = load_api_key(origin.config, origin.environ)
    except ConfigError as err:
        fix = "the file must hold only the key (pqr_live_...) from your PassQR account"
        with contextlib.suppress(OSError):
            if origin.file is not None and origin.file.stat().st_mode & (
                stat.S_IRGRP | stat.S_IROTH
            ):
                fix = f"others can read the key: chmod 600 {origin.file}"
        return Check(name=name, status=Status.FAIL, detail=err.message, fix=fix), None
    check = Check(name=name, status=Status.OK, detail=f"found in {origin.text}; never shown")
    return _key_file(check, origin, credential_file), key


def _key_file(check: Check, origin: _Origin, credential_file: Path) -> Check:
    """The key's file: readable by others, or by root only (the service is not root)."""
    file = origin.file
    if file is None:
        return check
    try:
        st = file.stat()
    except OSError:
        return check
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return dataclasses.replace(
            check,
            status=Status.WARN,
            detail=check.detail + f"; the file is {stat.filemode(st.st_mode)}",
            fix=f"others can read the key: chmod 600 {file}",
        )
    if file == origin.config.api.key_file and file != credential_file and st.st_uid == 0:
        # Read first, before the credential: a root-only file ends the unit's kiosk (exit 78).
        return dataclasses.replace(
            check,
            status=Status.WARN,
            detail=check.detail + "; only root can read it, and the service runs as passqr",
            fix="under the systemd units remove api.key_file from the config: LoadCredential= "
            f"hands the key over (keep it in {credential_file}, root-only)",
        )
    return check
