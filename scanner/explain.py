"""What each error of :mod:`scanner.errors` means to a person, and what to do about it.

The one table from errors to words, beside the tree it reads. Everything that
tells a person about a failure takes its words from here: the doctor's checks
(summary and fix), the ``passes``/``templates`` commands' one-line errors, the
staff screen, and the details the gate writes into a rejection for staff. The
guest-facing headline of a decision is not here: that is
:data:`scanner.models.REASON_TEXT`, which never says why in technical terms.

``summary`` is a few words with the figure that matters (a retry time, an HTTP
status); ``fix`` is what the installer or the operator does next, empty when
there is nothing to do. Neither contains the error's own message: callers add
it where there is room (:func:`describe`). Messages are redacted when an error is
made, so nothing here can print an API key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from scanner.errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadAnswerError,
    NotFoundError,
    PlanError,
    RateLimitedError,
    RequestRejectedError,
    ScannerError,
    ServerError,
    TransportError,
)

__all__ = ["GATE_KEY_READ_ONLY", "Explanation", "describe", "explain"]


class Explanation(NamedTuple):
    """An error in words.

    Attributes:
        summary: what happened, in a few words (``API key rejected``).
        fix: what to do about it; empty when nothing is to be done.
    """

    summary: str
    fix: str


def _status(err: ScannerError) -> str:
    status = err.status if isinstance(err, APIError) else None
    return f" with HTTP {status}" if status is not None else ""


def _retry(err: ScannerError) -> str:
    wait = err.retry_after if isinstance(err, RateLimitedError) else 0.0
    return f"too many requests: try again in {math.ceil(wait)} s"


#: Most specific first: the first class the error is an instance of answers.
_TABLE: tuple[tuple[type[ScannerError], Callable[[ScannerError], str], str], ...] = (
    (
        AuthenticationError,
        lambda err: "API key rejected",
        "create a new key (PassQR dashboard > API keys; a venue's own server: passqr-scanner "
        "server create-key --db ...) and put it where the key was found (PASSQR_API_KEY, "
        "api.key_file or the api-key credential)",
    ),
    (
        PlanError,
        lambda err: "plan has no API access",
        "upgrade the PassQR plan (the free plan has no API access), or use a key from an "
        "account that has it",
    ),
    (
        RateLimitedError,
        _retry,
        "too many requests from this address: wait, and check nothing else shares the gate's "
        "key or public IP",
    ),
    (NotFoundError, lambda err: "not found", ""),
    (
        RequestRejectedError,
        lambda err: "request refused" + _status(err),
        "check api.base_url and the values sent",
    ),
    (
        ServerError,
        lambda err: "the server failed" + _status(err),
        "the server's side: try again later; a venue's own server: journalctl -u passqr-server "
        "(a venue hub: -u passqr-hub)",
    ),
    (
        BadAnswerError,
        lambda err: "answer is not PassQR's",
        "api.base_url must be PassQR's API root (https://passqr.com/api/v1); a captive portal "
        "or a proxy may be answering instead",
    ),
    (
        APITimeoutError,
        lambda err: "no answer from the server in time",
        "check api.base_url and the network's quality (cable, Wi-Fi signal); a venue's own "
        "server: is it overloaded? (systemctl status passqr-server, or passqr-hub)",
    ),
    (
        TransportError,
        lambda err: "server unreachable",
        "check api.base_url, the network (cable, Wi-Fi), DNS and the firewall; a venue's own "
        "server: systemctl status passqr-server (a venue hub: passqr-hub) on that machine",
    ),
    (APIError, lambda err: "request refused" + _status(err), "check api.base_url"),
)


#: A venue hub's 403 to a gate key that tried to write (its answer's ``error`` word).
GATE_KEY_READ_ONLY = "gate_key_read_only"


def explain(error: ScannerError) -> Explanation:
    """The error's summary and fix; an error not in the table is its own message, no fix."""
    if isinstance(error, PlanError) and error.code == GATE_KEY_READ_ONLY:
        return Explanation(
            "a venue hub's gate key may validate and read, not write",
            "use a staff key of the hub (on the hub: passqr-scanner hub gate-key --role staff)",
        )
    for kind, summary, fix in _TABLE:
        if isinstance(error, kind):
            return Explanation(summary(error), fix)
    return Explanation(error.message, "")


def describe(error: ScannerError, what: str = "", *, fix: bool = False) -> str:
    """One line a person understands: the summary, then the error's own words.

    Args:
        error: what went wrong.
        what: the object asked for (``pass 1234...``), for "not found".
        fix: append what to do about it.
    """
    summary, remedy = explain(error)
    message = error.message
    if isinstance(error, NotFoundError):
        line = f"{what} not found" if what else message or summary
    elif not message or message.lower() in summary.lower():
        line = summary  # the message says nothing more (or the table has no words for it)
    else:
        line = f"{summary} ({message})"
    return f"{line}; {remedy}" if fix and remedy else line
