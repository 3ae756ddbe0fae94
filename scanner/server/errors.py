"""The server's exception tree.

Everything the HTTP layer turns into an error answer derives from `ApiError`;
the store raises its own `StoreError` family, translated once in `app`.

    Exception
    +-- ApiError            an answer {"error", "message"} with a status (and perhaps its own error)
    +-- ListenError         the server cannot listen on its address (a clear one-liner)
    +-- StoreError          the database layer
        +-- StoreOpenError  the database cannot be opened or written (a clear one-liner)
        +-- NotFoundError   the addressed row does not exist
        +-- ConflictError   the change contradicts the stored state
        +-- UnknownTemplateError  a pass names a template that does not exist
        +-- QuotaError            the business has as many passes as its plan allows
        +-- DatabaseBusyError     another connection held the write lock past the wait
"""

from __future__ import annotations

from collections.abc import Mapping

#: The `error` field for each status the server answers with.
ERROR_TYPES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

#: Longest piece of a client's input that an error message quotes.
MAX_ECHO = 80


class ApiError(Exception):
    """An error answer: `{"error": <type for status>, "message": message}`.

    `error` replaces the status phrase where PassQR answers a machine-readable
    word instead (`plan_not_supported`, `plan_limit_reached` on a 402).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        self._error = error

    @property
    def error(self) -> str:
        return self._error or ERROR_TYPES.get(self.status, "Error")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def shown(value: str, limit: int = MAX_ECHO) -> str:
    """`value` as an error message may quote it: at most `limit` characters, then `…`.

    A message never grows with the input: a 200 KB path or field name is
    not sent back whole (nor logged whole by a client that logs errors).
    """
    return value if len(value) <= limit else value[: limit - 1] + "…"


def envelope(status: int, message: str) -> dict[str, str]:
    """The error body every refusal carries, from the app or the protocol layer."""
    return {"error": ERROR_TYPES.get(status, "Error"), "message": message}


class ListenError(Exception):
    """The address cannot be listened on (in use, not local); the message is one line."""


class StoreError(Exception):
    """Base of the database layer's errors."""


class StoreOpenError(StoreError):
    """The database file cannot be created, opened or written; the message is one line."""


class NotFoundError(StoreError):
    """The addressed pass or template does not exist."""


class ConflictError(StoreError):
    """The requested change contradicts the stored state (e.g. a template still in use)."""


class UnknownTemplateError(StoreError):
    """A pass was created for a template id that does not exist."""


class QuotaError(StoreError):
    """The business holds as many passes as its plan allows (a 402 `plan_limit_reached`)."""


class DatabaseBusyError(StoreError):
    """Another connection (a CLI command, a second server) held the write lock too long."""


class DatabaseFullError(StoreError):
    """The disk (or the file system's quota) is full: nothing could be written."""
