"""What the gate knows about PassQR and itself: the status line's model.

:class:`GateStatus` is updated in place by :class:`scanner.pipeline.Gate` and
read by the UI, the metrics and the headless output. Which server state an API
failure means is decided here, once, for a validation and a probe alike; the
words for it come from :mod:`scanner.explain`.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from scanner.errors import (
    APIError,
    AuthenticationError,
    BadAnswerError,
    PlanError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from scanner.explain import explain
from scanner.models import Decision

__all__ = ["HALTING", "GateStatus", "ServerState", "failure_state", "server_status"]

_log = logging.getLogger("scanner.pipeline")  # the gate's own log, as before


class ServerState(enum.StrEnum):
    UNKNOWN = "unknown"
    OK = "ok"
    UNREACHABLE = "unreachable"
    REJECTED_KEY = "key rejected"
    NO_PLAN = "plan has no API access"
    RATE_LIMITED = "rate limited"
    FAULT = "fault"


@dataclass
class GateStatus:
    """What the status line shows; updated in place by the gate."""

    server: ServerState = ServerState.UNKNOWN
    server_detail: str = ""
    accepted_today: int = 0
    rejected_today: int = 0
    ignored_repeats: int = 0
    in_flight: int = 0
    last: Decision | None = None
    day_start: float = 0.0
    policy: str = "deny"
    halted: str = ""
    """Why scanning stopped (a rejected key or plan); empty while scanning."""
    journal_fault: str = ""
    """Why the journal cannot take admissions (disk below its reserve, a write failed)."""
    relay_faults: int = 0
    """Admissions whose door did not open (since start)."""

    def set_server(self, state: ServerState, detail: str) -> None:
        """A new server state; a change to a fault is logged as a warning (an operator's
        ``journalctl -p warning`` shows it), a recovery as info."""
        if state is not self.server:
            level = (
                logging.INFO if state in (ServerState.OK, ServerState.UNKNOWN) else logging.WARNING
            )
            _log.log(level, "server: %s %s", state.value, detail)
        self.server, self.server_detail = state, detail

    def count(self, decision: Decision, today: float) -> None:
        """One decision in today's counts; ``today`` is local midnight (a new day resets)."""
        if today != self.day_start:
            if self.day_start:
                self.accepted_today = self.rejected_today = 0
            self.day_start = today
        if decision.accepted:
            self.accepted_today += 1
        else:
            self.rejected_today += 1
        self.last = decision


_FAILURE_STATES: tuple[tuple[type[APIError], ServerState], ...] = (
    (AuthenticationError, ServerState.REJECTED_KEY),
    (PlanError, ServerState.NO_PLAN),
    (TransportError, ServerState.UNREACHABLE),
    (RateLimitedError, ServerState.RATE_LIMITED),
    (BadAnswerError, ServerState.FAULT),
    (ServerError, ServerState.FAULT),
)

#: The failures that stop scanning until the key or the plan is fixed.
HALTING = (ServerState.REJECTED_KEY, ServerState.NO_PLAN)


def failure_state(err: APIError) -> ServerState | None:
    """The server's state after ``err``; None when it says nothing about the server
    (a request refused or a resource not found: the server answered as it should)."""
    for kind, state in _FAILURE_STATES:
        if isinstance(err, kind):
            return state
    return None


def server_status(err: APIError) -> tuple[ServerState, str]:
    """The status line after ``err``: the state, and its detail in :mod:`scanner.explain`'s
    words (for an unreachable server the message: the state already says the summary)."""
    state = failure_state(err) or ServerState.FAULT
    return state, err.message if state is ServerState.UNREACHABLE else explain(err).summary
