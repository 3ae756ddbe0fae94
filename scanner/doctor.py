"""``passqr-scanner doctor``: is this gate ready? Every check says what to do when it is not.

For the person installing a gate, not its authors: each line is OK, WARN,
FAIL or SKIP, and every failure comes with its fix. The exit status is 0 when
nothing FAILed (the gate can decide scans), 1 otherwise, so scripts and
provisioning tools can use it.

Nothing here changes the gate: devices are opened and closed without a byte
written (the relay is switched only with ``--relay-click``), the journal is
proved writable with a throw-away file beside it (opening the live journal
would settle the running kiosk's scans in flight), and the API is asked one
harmless ``GET /templates?limit=1`` (twice, to tell the connection set-up from
the round trip). The API key is never printed: only where it came from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import enum
import errno
import grp
import importlib.util
import json
import os
import pwd
import shutil
import sqlite3
import ssl
import stat
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import serial

from scanner.config import (
    CameraSourceConfig,
    Config,
    EvdevSourceConfig,
    KeyboardSourceConfig,
    SerialSourceConfig,
    SimulatedSourceConfig,
    load_api_key,
    load_config,
    read_key_file,
)
from scanner.errors import (
    APIError,
    AuthenticationError,
    BadAnswerError,
    ConfigError,
    PlanError,
    RateLimitedError,
    ScannerError,
    ServerError,
    TransportError,
    redact,
)
from scanner.journald import JOURNAL_SOCKET, journald_available

T = TypeVar("T")

DEFAULT_CONFIG = Path("/etc/passqr-scanner/scanner.toml")
#: Where the systemd units' ``LoadCredential=api-key:`` reads the key from.
DEFAULT_CREDENTIAL_FILE = Path("/etc/passqr-scanner/api-key")
UDEV_RULES = (
    Path("/etc/udev/rules.d/99-passqr-scanner.rules"),
    Path("/lib/udev/rules.d/99-passqr-scanner.rules"),
)
#: ``--relay-click``: long enough to hear the relay, short enough not to hold a door open.
CLICK_MS = 200
OPEN_TIMEOUT_S = 10.0
#: How long a camera may take to show its first frame.
CAMERA_FRAME_S = 3.0
DEV = Path("/dev")

__all__ = [
    "Check",
    "Status",
    "add_doctor_parser",
    "cmd_doctor",
    "diagnose",
    "format_json",
    "format_text",
    "main",
]


class Status(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the report.

    Attributes:
        name: what was checked (``config``, ``api key``, ``source 1 (serial)``...).
        status: OK, WARN (works, but look at it), FAIL (the gate is not ready), SKIP.
        detail: what was found.
        fix: what to do about a WARN or a FAIL.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""


# -- small helpers ---------------------------------------------------------------------------


async def _blocking(fn: Callable[[], T], timeout_s: float = OPEN_TIMEOUT_S) -> T:
    """Run blocking device I/O on a daemon thread, bounded in time.

    A driver stuck in ``open()`` (a camera, a half-dead USB device) is left behind
    rather than hanging the report or the interpreter's exit.

    Raises:
        TimeoutError: no result within ``timeout_s``.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, error = fn(), None
        except BaseException as err:  # noqa: BLE001 - handed over to the awaiting task
            result, error = None, err
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is gone: nobody waits for this any more

    threading.Thread(target=work, name="doctor-io", daemon=True).start()
    async with asyncio.timeout(timeout_s):
        return await future


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _group_hint(path: str) -> str:
    """Why a device refused us, and the group that would let us in."""
    try:
        st = os.stat(path)
    except OSError:
        return "check the device's owner and mode (ls -l)"
    group = _group_name(st.st_gid)
    user = _user()
    member = st.st_gid == os.getegid() or st.st_gid in os.getgroups()
    mode = stat.filemode(st.st_mode)
    if member:
        return (
            f"{path} is {mode} {_user_name(st.st_uid)}:{group} and {user} is in group {group}: "
            "check the udev rules' MODE and the unit's DeviceAllow="
        )
    return (
        f"{path} is {mode} {_user_name(st.st_uid)}:{group}; add the user to that group: "
        f"sudo usermod -aG {group} {user}, then log in again (the systemd units grant it "
        "with SupplementaryGroups=)"
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _resolved(path: str) -> str:
    real = os.path.realpath(path)
    return f"{path} -> {real}" if real != path else path


def _errno(err: BaseException) -> int | None:
    code = getattr(err, "errno", None)
    if isinstance(code, int):
        return code
    cause = err.__cause__ or err.__context__
    return _errno(cause) if cause is not None else None


_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY}


def _device_failure(name: str, path: str, err: BaseException, what: str) -> Check:
    """A device open that failed, explained."""
    code = _errno(err)
    text = redact(str(err)) or type(err).__name__
    if code == errno.ENOENT:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{path}: not found",
            fix=f"plug the {what} in and check the path (the ports found are listed above); "
            "a /dev/passqr-* name needs 99-passqr-scanner.rules in /etc/udev/rules.d",
        )
    if code in (errno.EACCES, errno.EPERM):
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{path}: permission denied",
            fix=_group_hint(path),
        )
    if code in _BUSY:
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{path}: in use by another process ({text})",
            fix="if the kiosk is running, that is it: stop it to check the device alone "
            "(systemctl stop passqr-scanner); otherwise find the holder with fuser -v " + path,
        )
    return Check(
        name=name,
        status=Status.FAIL,
        detail=f"{path}: cannot open: {text}",
        fix=f"unplug and replug the {what}; check `dmesg | tail` for USB errors",
    )


def _open_serial(port: str, baudrate: int) -> None:
    """Open exclusively and close, writing nothing (as the kiosk would open it)."""
    handle = serial.Serial(port, baudrate, timeout=0, exclusive=True)
    handle.close()


# -- the checks ------------------------------------------------------------------------------


def _check_config(path: Path) -> tuple[Check, Config | None]:
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


def _check_key(
    config: Config, environ: Mapping[str, str], credential_file: Path
) -> tuple[Check, str | None]:
    name = "api key"
    origin: str
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    file: Path | None = None
    by_hand = False
    if environ.get("PASSQR_API_KEY"):
        origin = "the environment variable PASSQR_API_KEY"
    elif config.api.key_file is not None:
        file = config.api.key_file
        origin = f"api.key_file {file}"
    elif cred_dir and (Path(cred_dir) / "api-key").exists():
        file = Path(cred_dir) / "api-key"
        origin = f"the systemd credential {file}"
    elif credential_file.exists():
        # Run by hand, outside the unit: read what LoadCredential= would hand over.
        file = credential_file
        origin = f"{file} (what the units' LoadCredential= hands to the service)"
        by_hand = True
    else:
        return (
            Check(
                name=name,
                status=Status.FAIL,
                detail="no API key: not in PASSQR_API_KEY, api.key_file or a systemd credential",
                fix=f"put the key (pqr_live_...) in {credential_file} (owner root, mode 0600) "
                "for the systemd unit's LoadCredential=, or set api.key_file in the config",
            ),
            None,
        )
    try:
        if by_hand:
            # systemd copies it with its own mode: others reading it is a WARN below.
            key = read_key_file(credential_file, "credential file", private=False)
        else:
            key = load_api_key(config, environ)
    except ConfigError as err:
        fix = "the file must hold only the key (pqr_live_...) from your PassQR account"
        with contextlib.suppress(OSError):
            if file is not None and file.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
                fix = f"others can read the key: chmod 600 {file}"
        return Check(name=name, status=Status.FAIL, detail=err.message, fix=fix), None
    check = Check(name=name, status=Status.OK, detail=f"found in {origin}; never shown")
    if file is None:
        return check, key
    try:
        st = file.stat()
    except OSError:
        return check, key
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return dataclasses.replace(
            check,
            status=Status.WARN,
            detail=check.detail + f"; the file is {stat.filemode(st.st_mode)}",
            fix=f"others can read the key: chmod 600 {file}",
        ), key
    if file == config.api.key_file and file != credential_file and st.st_uid == 0:
        # Read first, before the credential: a root-only file ends the unit's kiosk (exit 78).
        return dataclasses.replace(
            check,
            status=Status.WARN,
            detail=check.detail + "; only root can read it, and the service runs as passqr",
            fix="under the systemd units remove api.key_file from the config: LoadCredential= "
            f"hands the key over (keep it in {credential_file}, root-only)",
        ), key
    return check, key


class _Recorder(httpx.AsyncBaseTransport):
    """Keeps the last response, so the report can read its rate-limit headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.last: httpx.Response | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.last = response
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


_REMAINING = ("x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining")
_LIMIT = ("x-ratelimit-limit", "ratelimit-limit", "x-rate-limit-limit")


def rate_budget(headers: Mapping[str, str]) -> tuple[int, int | None] | None:
    """(remaining, limit) from ``X-RateLimit-*``, ``RateLimit-*`` or ``RateLimit:`` headers."""
    lower = {k.lower(): v for k, v in headers.items()}

    def first_int(names: Sequence[str]) -> int | None:
        for name in names:
            value = lower.get(name, "").split(",")[0].split(";")[0].strip()
            if value.isdigit():
                return int(value)
        return None

    remaining = first_int(_REMAINING)
    limit = first_int(_LIMIT)
    structured = lower.get("ratelimit", "")
    if remaining is None and structured:
        # draft-ietf-httpapi-ratelimit-headers: "limit=100, remaining=50, reset=5"
        # (or a named policy: '"default";r=50;t=30').
        params: dict[str, str] = {}
        for part in structured.replace(";", ",").split(","):
            key, _, value = part.strip().partition("=")
            params[key.strip().lower()] = value.strip()
        for key in ("remaining", "r"):
            if params.get(key, "").isdigit():
                remaining = int(params[key])
                break
        if limit is None and params.get("limit", "").isdigit():
            limit = int(params["limit"])
    if remaining is None:
        return None
    return remaining, limit


async def _check_api(config: Config, key: str) -> list[Check]:
    from scanner.api import PassQRClient

    base = config.api.base_url
    verify: ssl.SSLContext | bool = True
    if config.api.ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(config.api.ca_file))
        except (OSError, ssl.SSLError) as err:
            return [
                Check(
                    name="api server",
                    status=Status.FAIL,
                    detail=f"api.ca_file {config.api.ca_file}: unusable ({err})",
                    fix="point api.ca_file at a PEM bundle with the server's CA certificate",
                )
            ]
    recorder = _Recorder(httpx.AsyncHTTPTransport(verify=verify))
    client = PassQRClient.from_config(config.api, key, transport=recorder)
    timings: list[float] = []
    error: APIError | None = None
    try:
        for _ in range(2):
            started = time.perf_counter()
            try:
                await client.list_templates(limit=1)
            except APIError as err:
                if recorder.last is not None:
                    timings.append((time.perf_counter() - started) * 1000)
                error = err
                break
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        await client.aclose()

    checks: list[Check] = []
    if isinstance(error, TransportError):
        return [
            Check(
                name="api server",
                status=Status.FAIL,
                detail=f"{error.message}",
                fix="check api.base_url, the network (cable, Wi-Fi), DNS and the firewall; "
                "a venue's own server: systemctl status passqr-server on that machine",
            ),
            Check(name="api key accepted", status=Status.SKIP, detail="the server was not reached"),
        ]
    if timings:
        if len(timings) == 1:
            rtt = f"answered in {timings[0]:.0f} ms"
        else:
            rtt = f"round trip {timings[1]:.0f} ms ({timings[0]:.0f} ms with connection set-up)"
        checks.append(Check(name="api server", status=Status.OK, detail=f"{base}: {rtt}"))
    if isinstance(error, AuthenticationError):
        checks.append(
            Check(
                name="api key accepted",
                status=Status.FAIL,
                detail=f"API key rejected (401): {error.message}",
                fix="create a new key (PassQR dashboard > API keys; a venue's own server: "
                "passqr-scanner server create-key --db ...) and put it where the key was found",
            )
        )
    elif isinstance(error, PlanError):
        checks.append(
            Check(
                name="api key accepted",
                status=Status.FAIL,
                detail=f"the account's plan has no API access ({error.status}): {error.message}",
                fix="upgrade the PassQR plan (the free plan has no API access), or use a key "
                "from an account that has it",
            )
        )
    elif isinstance(error, RateLimitedError):
        checks.append(
            Check(
                name="api key accepted",
                status=Status.WARN,
                detail=f"rate limited (429): retry in {error.retry_after:.0f} s",
                fix="too many requests from this address: wait, and check nothing else "
                "shares the gate's key or public IP",
            )
        )
    elif isinstance(error, BadAnswerError):
        checks.append(
            Check(
                name="api key accepted",
                status=Status.FAIL,
                detail=error.message,
                fix="api.base_url must be PassQR's API root (https://passqr.com/api/v1); "
                "a captive portal or a proxy may be answering instead",
            )
        )
    elif isinstance(error, ServerError):
        checks.append(
            Check(
                name="api key accepted",
                status=Status.FAIL,
                detail=f"server error ({error.status}): {error.message}",
                fix="the server's side: try again later; a venue's own server: "
                "journalctl -u passqr-server",
            )
        )
    elif error is not None:
        checks.append(
            Check(
                name="api key accepted",
                status=Status.FAIL,
                detail=f"request refused: {error.message}",
                fix="check api.base_url",
            )
        )
    else:
        checks.append(Check(name="api key accepted", status=Status.OK, detail="yes (200)"))

    if recorder.last is not None and not isinstance(error, TransportError):
        budget = rate_budget(recorder.last.headers)
        if budget is None:
            checks.append(
                Check(name="api rate budget", status=Status.OK, detail="not reported by the server")
            )
        else:
            remaining, limit = budget
            of = f" of {limit}" if limit is not None else ""
            low = limit is not None and remaining < max(limit // 10, 1)
            checks.append(
                Check(
                    name="api rate budget",
                    status=Status.WARN if low else Status.OK,
                    detail=f"{remaining}{of} requests left in this window",
                    fix="the budget is nearly spent: something else may share this key or IP"
                    if low
                    else "",
                )
            )
    return checks


def _v4l_name(dev: Path) -> str:
    try:
        return (Path("/sys/class/video4linux") / dev.name / "name").read_text().strip()
    except OSError:
        return ""


def _check_inventory(config: Config | None, dev: Path = DEV) -> list[Check]:
    cameras = sorted(dev.glob("video*"), key=lambda p: (len(p.name), p.name))
    camera_text = [f"{p} ({n})" if (n := _v4l_name(p)) else str(p) for p in cameras]
    by_id = sorted((dev / "serial" / "by-id").glob("*"))
    serials = [_resolved(str(p)) for p in by_id]
    for pattern in ("ttyUSB*", "ttyACM*", "passqr-*"):
        serials += [_resolved(str(p)) for p in sorted(dev.glob(pattern))]

    needs_serial = config is not None and (
        config.relay.type != "none"
        or any(isinstance(s, SerialSourceConfig) for s in config.sources)
    )
    needs_camera = config is not None and any(
        isinstance(s, CameraSourceConfig) for s in config.sources
    )
    return [
        Check(
            name="cameras found",
            status=Status.WARN if needs_camera and not cameras else Status.OK,
            detail="; ".join(camera_text) or "none (/dev/video*)",
            fix="plug the camera in; a CSI camera is used through Picamera2 (device = "
            '"picamera2"), not /dev/video*'
            if needs_camera and not cameras
            else "",
        ),
        Check(
            name="serial ports found",
            status=Status.WARN if needs_serial and not serials else Status.OK,
            detail="; ".join(serials) or "none (/dev/serial/by-id, /dev/ttyUSB*, /dev/ttyACM*)",
            fix="plug the scanner and relay in; `dmesg | tail` shows what the kernel saw"
            if needs_serial and not serials
            else "",
        ),
    ]


async def _check_serial(name: str, port: str, baudrate: int, what: str) -> Check:
    try:
        await _blocking(lambda: _open_serial(port, baudrate))
    except TimeoutError:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{port}: opening hangs",
            fix=f"unplug and replug the {what}",
        )
    except (serial.SerialException, OSError, ValueError) as err:
        return _device_failure(name, port, err, what)
    return Check(name=name, status=Status.OK, detail=f"{_resolved(port)}: opens (exclusive)")


def _camera_precheck(name: str, device: int | str) -> Check | None:
    """A ``/dev`` path that is missing or closed to us: no need to start OpenCV."""
    if not (isinstance(device, str) and device.startswith("/dev/")):
        return None
    if not os.path.exists(device):
        return _device_failure(name, device, FileNotFoundError(errno.ENOENT, "not found"), "camera")
    if not os.access(device, os.R_OK | os.W_OK):
        return _device_failure(name, device, PermissionError(errno.EACCES, "denied"), "camera")
    return None


async def _check_camera(name: str, source: CameraSourceConfig) -> Check:
    device = source.device
    if isinstance(device, str) and (device == "synthetic" or device.startswith("synthetic?")):
        return Check(name=name, status=Status.OK, detail="synthetic frames: no device")
    early = _camera_precheck(name, device)
    if early is not None:
        return early
    if importlib.util.find_spec("scanner.sources.camera") is None:
        return Check(
            name=name,
            status=Status.SKIP,
            detail="camera support (scanner.sources.camera) is not in this version: not opened",
        )
    from scanner.sources.camera import backend_for

    def probe() -> str:
        backend = backend_for(source)()
        backend.open()
        try:
            deadline = time.monotonic() + CAMERA_FRAME_S
            while time.monotonic() < deadline:
                gray = backend.read()
                if gray is not None:
                    return f"opens, a {gray.shape[1]}x{gray.shape[0]} frame"
            return ""
        finally:
            backend.close()

    try:
        text = await _blocking(probe)
    except TimeoutError:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{device}: opening hangs",
            fix="unplug and replug the camera; `dmesg | tail` shows USB errors",
        )
    except ScannerError as err:  # CaptureError, CaptureUnavailable: they say why and how
        return Check(
            name=name,
            status=Status.FAIL,
            detail=err.message,
            fix="v4l2-ctl --list-devices lists the cameras; a CSI camera is device = "
            '"picamera2" (python3-picamera2, a venv with --system-site-packages)',
        )
    except Exception as err:  # noqa: BLE001 - OpenCV and libcamera raise anything
        return Check(name=name, status=Status.FAIL, detail=f"{device}: {redact(str(err))}")
    if not text:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{device}: opens, but no frame in {CAMERA_FRAME_S:.0f} s",
            fix="something else may be using the camera, or it needs more USB power",
        )
    return Check(name=name, status=Status.OK, detail=f"{device}: {text}")


async def _check_evdev(name: str, source: EvdevSourceConfig) -> Check:
    wanted = source.device
    if wanted.startswith("/"):

        def probe() -> str:
            fd = os.open(wanted, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
            if importlib.util.find_spec("evdev") is None:
                return ""
            import evdev

            device = evdev.InputDevice(wanted)
            try:
                return f" ({device.name})"
            finally:
                device.close()

        try:
            label = await _blocking(probe)
        except (OSError, TimeoutError) as err:
            return _device_failure(name, wanted, err, "scanner")
        return Check(name=name, status=Status.OK, detail=f"{_resolved(wanted)}: found{label}")
    if importlib.util.find_spec("evdev") is None:
        return Check(
            name=name,
            status=Status.FAIL,
            detail="python-evdev is not installed",
            fix="pip install 'passqr-scanner[evdev]' into the kiosk's virtual environment",
        )
    import evdev

    def find() -> tuple[str | None, list[str]]:
        names: list[str] = []
        for path in evdev.list_devices():
            try:
                device = evdev.InputDevice(path)
            except OSError:
                continue
            names.append(str(device.name))
            if wanted.lower() in str(device.name).lower():
                device.close()
                return path, names
            device.close()
        return None, names

    found, names = await _blocking(find)
    if found is not None:
        return Check(name=name, status=Status.OK, detail=f"{wanted!r}: found at {found}")
    seen = ", ".join(names) or "no readable input devices (is the user in group input?)"
    return Check(
        name=name,
        status=Status.FAIL,
        detail=f"no input device named like {wanted!r}; found: {seen}",
        fix="plug the scanner in, or set device to a /dev/input/by-id/...-event-kbd path",
    )


async def _check_sources(config: Config) -> list[Check]:
    checks: list[Check] = []
    for i, source in enumerate(config.sources, 1):
        name = f"source {i} ({source.type})"
        if isinstance(source, SerialSourceConfig):
            checks.append(await _check_serial(name, source.port, source.baudrate, "scanner"))
        elif isinstance(source, KeyboardSourceConfig):
            checks.append(
                Check(
                    name=name,
                    status=Status.SKIP,
                    detail="n/a: a keyboard-wedge scanner types into the kiosk's terminal",
                )
            )
        elif isinstance(source, SimulatedSourceConfig):
            checks.append(Check(name=name, status=Status.OK, detail="n/a: scripted codes"))
        elif isinstance(source, CameraSourceConfig):
            checks.append(await _check_camera(name, source))
        else:
            checks.append(await _check_evdev(name, source))
    return checks


async def _check_relay(config: Config, *, click: bool) -> Check:
    relay = config.relay
    name = "relay"
    if relay.type == "none":
        return Check(name=name, status=Status.OK, detail="relay.type = none: no door relay")
    assert relay.port is not None  # checked by load_config
    if click:
        from scanner.relay.check import relay_test

        lines: list[str] = []
        status = await relay_test(relay, lines.append, CLICK_MS)
        transcript = "; ".join(" ".join(line.split()) for line in lines)
        if status == 0:
            return Check(name=name, status=Status.OK, detail=f"clicked: {transcript}")
        check = await _check_serial(name, relay.port, relay.baudrate, "relay board")
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"click failed: {transcript}",
            fix=check.fix or "check relay.type and relay.channel against the board",
        )
    check = await _check_serial(name, relay.port, relay.baudrate, "relay board")
    if check.status is Status.OK:
        reset = " (this board resets when opened)" if relay.open_delay_ms else ""
        return dataclasses.replace(
            check,
            detail=f"{relay.type} ch{relay.channel}, {relay.lock}: {check.detail}{reset}; "
            "nothing switched (--relay-click pulses it once)",
        )
    return check


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _journal_probe(path: Path) -> Check:
    """Prove the directory can hold a journal, with a throw-away one beside the real one.

    Nothing of the kiosk's is written: the live journal is only read (opening it
    read-write settles the running kiosk's undecided scans), and a missing
    directory or journal is left for the kiosk to create, so that the service
    user owns it rather than whoever ran the doctor.

    Raises:
        ConfigError, OSError, sqlite3.Error: the directory or the journal is unusable.
    """
    from scanner.journal import Journal

    name = "journal"
    directory = path.parent
    if not directory.is_dir():
        if str(directory) == "/var/lib/passqr-scanner":
            return Check(
                name=name,
                status=Status.WARN,
                detail=f"{directory} does not exist yet",
                fix="the units create it (StateDirectory=passqr-scanner) when the service starts",
            )
        ancestor = next(p for p in directory.parents if p.exists())
        if directory.exists() or not ancestor.is_dir():
            blocker = directory if directory.exists() else ancestor
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(blocker))
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise PermissionError(
                errno.EACCES, f"Permission denied: {_user()} cannot create {directory}"
            )
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{directory} does not exist yet; the kiosk creates it on first run",
            fix=f"create it for the service user: install -d -o passqr -g passqr {directory}",
        )
    try:
        handle, scratch = tempfile.mkstemp(prefix=".doctor-", dir=directory)
    except PermissionError as err:
        raise PermissionError(
            errno.EACCES, f"Permission denied: {_user()} cannot write in {directory}"
        ) from err
    os.close(handle)
    os.unlink(scratch)
    probe = directory / f".doctor-{os.getpid()}-{threading.get_ident()}.sqlite3"
    journal = Journal(probe)
    try:
        journal.open_sync()
    finally:
        journal.close_sync()
        _remove_quietly(*(Path(str(probe) + suffix) for suffix in ("", "-wal", "-shm", "-journal")))
    if not path.exists():
        return Check(
            name=name,
            status=Status.OK,
            detail=f"{directory} is writable; the journal will be created there on first run",
        )
    if not os.access(path, os.R_OK | os.W_OK):
        raise PermissionError(errno.EACCES, f"Permission denied: {_user()} cannot write {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows, last = conn.execute("SELECT count(*), max(ts) FROM scans").fetchone()
    finally:
        conn.close()
    detail = f"{path}: {rows} scans" + (f", last at {last}" if last else "")
    file_uid, dir_uid = path.stat().st_uid, directory.stat().st_uid
    if file_uid != dir_uid:
        owner, dir_owner = _user_name(file_uid), _user_name(dir_uid)
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{detail}; the file belongs to {owner}, its directory to {dir_owner}",
            fix=f"the service may not write it: chown {dir_owner}: {path}*",
        )
    return Check(name=name, status=Status.OK, detail=detail)


async def _check_journal(config: Config) -> Check:
    path = config.journal.path
    try:
        return await _blocking(lambda: _journal_probe(path))
    except (ConfigError, OSError, sqlite3.Error, TimeoutError) as err:
        if isinstance(err, ScannerError):
            text = err.message
        elif isinstance(err, OSError) and err.strerror:
            text = err.strerror + (f": {err.filename}" if err.filename else "")
        else:
            text = str(err) or type(err).__name__
        return Check(
            name="journal",
            status=Status.FAIL,
            detail=text,
            fix=f"make {path.parent} a directory the service user can write "
            f"(chown passqr: {path.parent}); under systemd keep journal.path in "
            "/var/lib/passqr-scanner, which StateDirectory= gives to the service",
        )


def _check_logs(config: Config) -> Check:
    if journald_available():
        return Check(
            name="logs",
            status=Status.OK,
            detail="to journald: journalctl -u passqr-scanner (by hand: journalctl -t "
            "passqr-scanner)",
        )
    file = config.journal.path.parent / "passqr-scanner.log"
    return Check(
        name="logs",
        status=Status.WARN,
        detail=f"journald is not running here ({JOURNAL_SOCKET} missing): the kiosk logs to "
        f"{file}, headless mode to standard error",
        fix="run the kiosk under systemd (docs/deploy.md) so its logs are kept and rotated",
    )


def _check_user(config: Config) -> Check:
    user = _user()
    groups = sorted({_group_name(g) for g in os.getgroups()} | {_group_name(os.getegid())})
    if os.geteuid() == 0:
        return Check(
            name="user",
            status=Status.OK,
            detail="root: device and journal checks show what root can do; the service runs "
            "as passqr with the groups its unit grants (SupplementaryGroups=)",
        )
    needed: set[str] = set()
    if config.relay.type != "none" or any(
        isinstance(s, SerialSourceConfig) for s in config.sources
    ):
        needed.add("dialout")
    if any(isinstance(s, EvdevSourceConfig) for s in config.sources):
        needed.add("input")
    if any(isinstance(s, CameraSourceConfig) for s in config.sources):
        needed.add("video")
    missing = sorted(g for g in needed if g not in groups)
    detail = f"{user}, groups: {', '.join(groups)}"
    if not missing:
        return Check(name="user", status=Status.OK, detail=detail)
    return Check(
        name="user",
        status=Status.WARN,
        detail=f"{detail}; not in {', '.join(missing)}",
        fix="fine under the systemd units (SupplementaryGroups=); to run by hand: "
        f"sudo usermod -aG {','.join(missing)} {user}, then log in again",
    )


def _check_modemmanager(config: Config) -> Check | None:
    serial_in_use = config.relay.type != "none" or any(
        isinstance(s, SerialSourceConfig) for s in config.sources
    )
    if not serial_in_use or shutil.which("ModemManager", path="/usr/sbin:/usr/bin:/sbin") is None:
        return None
    if any(p.exists() for p in UDEV_RULES):
        return Check(
            name="ModemManager",
            status=Status.OK,
            detail="installed, kept off the gate's ports by 99-passqr-scanner.rules",
        )
    return Check(
        name="ModemManager",
        status=Status.WARN,
        detail="installed, and may probe the scanner and relay ports with AT commands",
        fix="install systemd/99-passqr-scanner.rules (ID_MM_DEVICE_IGNORE) or "
        "apt purge modemmanager",
    )


async def diagnose(
    config_path: Path,
    *,
    relay_click: bool = False,
    environ: Mapping[str, str] | None = None,
    credential_file: Path = DEFAULT_CREDENTIAL_FILE,
) -> list[Check]:
    """Run every check, in the order a person would fix things.

    Args:
        config_path: the kiosk's TOML file.
        relay_click: pulse the relay once (``CLICK_MS``), which may open the door.
        environ: where ``PASSQR_API_KEY`` and ``CREDENTIALS_DIRECTORY`` are read.
        credential_file: the key file the units load, tried when nothing else has a key.
    """
    env = os.environ if environ is None else environ
    config_check, config = _check_config(config_path)
    checks = [config_check]
    checks += _check_inventory(config)
    if config is None:
        return checks
    key_check, key = _check_key(config, env, credential_file)
    checks.append(key_check)
    if key is None:
        checks.append(Check(name="api server", status=Status.SKIP, detail="no usable API key"))
    else:
        checks += await _check_api(config, key)
    checks += await _check_sources(config)
    checks.append(await _check_relay(config, click=relay_click))
    checks.append(await _check_journal(config))
    checks.append(_check_logs(config))
    checks.append(_check_user(config))
    modem = _check_modemmanager(config)
    if modem is not None:
        checks.append(modem)
    return checks


def ready(checks: Sequence[Check]) -> bool:
    """The gate can decide scans: nothing FAILed."""
    return not any(c.status is Status.FAIL for c in checks)


def summary(checks: Sequence[Check]) -> str:
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    head = "READY" if not failed else "NOT READY"
    plural = "" if warned == 1 else "s"
    return f"{head}: {failed} failed, {warned} warning{plural}, {len(checks)} checks"


def _wrap(text: str, width: int) -> list[str]:
    # Paths and commands stay whole: a console user copies them.
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def format_text(checks: Sequence[Check], config_path: Path, width: int = 100) -> str:
    """The report as plain text for a Linux console: no colours, ASCII, wrapped to ``width``."""
    name_w = max([len(c.name) for c in checks] + [5]) + 2
    indent = " " * (6 + name_w)
    text_w = max(width - len(indent), 30)
    lines = [f"passqr-scanner doctor: {config_path}", ""]
    for check in checks:
        wrapped = _wrap(redact(check.detail), text_w) or [""]
        lines.append(f"{check.status.value:<6}{check.name:<{name_w}}{wrapped[0]}")
        lines += [indent + rest for rest in wrapped[1:]]
        if check.fix and check.status in (Status.FAIL, Status.WARN):
            fix = _wrap("fix: " + redact(check.fix), text_w)
            lines += [indent + part for part in fix]
    lines += ["", summary(checks)]
    return "\n".join(lines) + "\n"


def format_json(checks: Sequence[Check], config_path: Path) -> str:
    """The report for machines: ``{"ready", "config", "summary", "checks": [...]}``."""
    doc = {
        "ready": ready(checks),
        "config": str(config_path),
        "summary": summary(checks),
        "checks": [
            {
                "name": c.name,
                "status": c.status.value,
                "detail": redact(c.detail),
                "fix": redact(c.fix),
            }
            for c in checks
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def cmd_doctor(args: argparse.Namespace) -> int:
    """``doctor``: 0 when the gate is ready (no FAIL), 1 otherwise."""
    config_path = Path(args.config)
    checks = asyncio.run(diagnose(config_path, relay_click=args.relay_click))
    if args.json:
        report = format_json(checks, config_path)
    else:
        width = min(shutil.get_terminal_size((100, 24)).columns, 120)
        report = format_text(checks, config_path, width=max(width, 60))
    sys.stdout.write(report)
    sys.stdout.flush()
    return 0 if ready(checks) else 1


def add_doctor_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``doctor [--config FILE] [--relay-click] [--json]`` with ``func=cmd_doctor``."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check that this gate is ready: config, key, server, devices, journal",
        description="Check the gate and say how to fix what is wrong. "
        "Exit status 0 when nothing failed, 1 otherwise.",
    )
    doctor.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        metavar="FILE",
        help="the TOML config file (default %(default)s)",
    )
    doctor.add_argument(
        "--relay-click",
        action="store_true",
        help=f"pulse the relay once ({CLICK_MS} ms): the door may open",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scanner.doctor``: the same command on its own."""
    parser = argparse.ArgumentParser(prog="passqr-scanner")
    add_doctor_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
