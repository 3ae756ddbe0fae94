"""The one exception tree of the scanner.

Third-party exceptions (httpx, pyserial, sqlite3, tomllib) are translated once, at
the boundary where they happen, with ``raise ... from err``; everything above that
boundary only ever sees these::

    ScannerError
     ├── ConfigError                 the config file or the API key is unusable
     ├── InvalidPayloadError         a scanned payload is not a pass code (never sent)
     ├── APIError                    anything that went wrong talking to PassQR
     │    ├── AuthenticationError    401: the key is missing, wrong or revoked
     │    ├── PlanError              403: the account's plan has no API access
     │    ├── PlanLimitError         402: the plan refuses this one action (a quota spent,
     │    │                          a feature not in it); the key works, scanning goes on
     │    ├── RateLimitedError       429: carries ``retry_after`` seconds
     │    ├── NotFoundError          404 on a resource route
     │    ├── RequestRejectedError   400/422 and other 4xx: the request was refused
     │    ├── ServerError            5xx
     │    ├── BadAnswerError         non-JSON, HTML, or JSON of the wrong shape:
     │    │                          a configuration fault, never "invalid pass"
     │    └── TransportError         the request may not have reached the server
     │         ├── NetworkError      DNS, refused, reset, TLS
     │         └── APITimeoutError   no answer within the timeout
     └── DeviceError                 a serial port, relay or camera failed
          ├── RelayError
          ├── DecoderUnavailable     a decoder backend's library is missing (decode.base)
          └── CaptureError           a camera cannot be opened or read (sources.capture)
               └── CaptureUnavailable  its library (Picamera2) is missing

No exception message ever contains the API key: the client never formats it
into one, and :func:`redact` scrubs anything that looks like a key.
"""

from __future__ import annotations

import re

_KEY_RE = re.compile(r"pqr_(?:live|test)_[A-Za-z0-9_\-]+")


_SECRETS: set[str] = set()


def register_secret(key: str) -> None:
    """Also redact this key, and its secret part without the ``pqr_live_`` prefix (a
    server may echo it in either form)."""
    _SECRETS.add(key)
    prefix, _, secret = key.rpartition("_")
    if prefix and len(secret) >= 12:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """Replace anything shaped like a PassQR API key, or a key in use, with a placeholder."""
    text = _KEY_RE.sub("pqr_***", text)
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class ScannerError(Exception):
    """Base of every error the scanner raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(ScannerError):
    """The configuration cannot be used; the message names the file and key."""


class InvalidPayloadError(ScannerError):
    """A scanned payload is not something that could be a pass code."""


class APIError(ScannerError):
    """PassQR could not give a decision.

    Attributes:
        status: the HTTP status, when an answer came back.
        code: the machine-readable word of the answer, when it had one
            (``plan_limit_reached``, ``plan_not_supported``...).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class PlanError(APIError):
    """403: the account exists but its plan has no API access (scanning must stop)."""


class PlanLimitError(APIError):
    """402: the plan does not allow this action: ``plan_limit_reached`` (a quota is spent)
    or ``plan_not_supported`` (a feature, such as wallet push, is not in the plan).

    Not a :class:`PlanError`: the key still works, so a kiosk keeps scanning.
    """


class RateLimitedError(APIError):
    """429: too many requests from this IP.

    Attributes:
        retry_after: seconds the server asked us to wait (at least 1).
    """

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class NotFoundError(APIError):
    """404 on a resource route (a pass or template id that does not exist)."""


class RequestRejectedError(APIError):
    """The server refused the request as malformed (400, 422, other 4xx)."""


class ServerError(APIError):
    """The server failed (5xx)."""


class BadAnswerError(APIError):
    """The answer was not the JSON the API promises (HTML, text, wrong shape).

    Almost always a wrong ``base_url`` or a captive portal: a configuration
    fault, never a statement about the pass.
    """


class TransportError(APIError):
    """The request may not have reached the server, or its answer was lost.

    Attributes:
        maybe_delivered: the request may have reached the server (its answer was
            lost): a validation may have counted a use. False when the connection
            was never made.
    """

    def __init__(self, message: str, *, maybe_delivered: bool = True) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


class NetworkError(TransportError):
    """DNS, connection refused or reset, TLS failure."""


class APITimeoutError(TransportError):
    """No complete answer within the configured timeout."""


class DeviceError(ScannerError):
    """A device (serial port, relay board, camera) failed."""


class RelayError(DeviceError):
    """The relay board could not be driven."""
