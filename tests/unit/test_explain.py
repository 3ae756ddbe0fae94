"""One table from errors to words (``scanner.explain``), and the places that read it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from scanner import errors
from scanner.errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadAnswerError,
    ConfigError,
    NetworkError,
    NotFoundError,
    PlanError,
    RateLimitedError,
    RequestRejectedError,
    ScannerError,
    ServerError,
)
from scanner.explain import describe, explain
from scanner.status import ServerState, failure_state, server_status

ROOT = Path(__file__).resolve().parents[2]
KEY = "pqr_live_" + "s3cret" * 6

API_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, APIError) and cls is not APIError
]


def make(cls: type[APIError], message: str) -> APIError:
    if cls is RateLimitedError:
        return RateLimitedError(message, retry_after=41.2)
    return cls(message)


@pytest.mark.parametrize("cls", API_ERRORS, ids=lambda c: c.__name__)
def test_every_api_error_has_words_of_its_own(cls: type[APIError]) -> None:
    error = make(cls, "the server's words")
    summary, fix = explain(error)
    assert summary and summary != error.message
    assert fix or cls is NotFoundError  # nothing to do about a pass that is not there


@pytest.mark.parametrize("cls", API_ERRORS, ids=lambda c: c.__name__)
def test_no_key_in_any_line(cls: type[APIError]) -> None:
    line = describe(make(cls, f"refused {KEY}"), "pass X", fix=True)
    assert "s3cret" not in line


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (AuthenticationError("bad key", status=401), "API key rejected (bad key)"),
        (AuthenticationError("API key rejected"), "API key rejected"),
        (RateLimitedError("Too many", retry_after=41.2), "too many requests: try again in 42 s"),
        (ServerError("boom", status=503), "the server failed with HTTP 503 (boom)"),
        (RequestRejectedError("in use", status=409), "request refused with HTTP 409 (in use)"),
        (NetworkError("cannot reach h"), "server unreachable (cannot reach h)"),
        (APITimeoutError("slow"), "no answer from the server in time (slow)"),
        (BadAnswerError("html"), "answer is not PassQR's (html)"),
        (ConfigError("api.base_url: bad"), "api.base_url: bad"),
        (ScannerError("something else"), "something else"),
    ],
)
def test_describe(error: ScannerError, line: str) -> None:
    assert describe(error).startswith(line)


def test_not_found_names_what_was_asked_for() -> None:
    assert describe(NotFoundError("Not Found"), "template t1") == "template t1 not found"
    assert describe(NotFoundError("no pass has the code X")) == "no pass has the code X"


def test_the_fix_is_appended_on_request() -> None:
    error = PlanError("Forbidden", status=403)
    assert describe(error) == "plan has no API access (Forbidden)"
    assert describe(error, fix=True) == f"{describe(error)}; {explain(error).fix}"


@pytest.mark.parametrize(
    ("error", "state", "detail"),
    [
        (AuthenticationError("bad"), ServerState.REJECTED_KEY, "API key rejected"),
        (PlanError("free"), ServerState.NO_PLAN, "plan has no API access"),
        (NetworkError("cannot reach h"), ServerState.UNREACHABLE, "cannot reach h"),
        (RateLimitedError("x", retry_after=7), ServerState.RATE_LIMITED, "too many requests"),
        (ServerError("boom", status=500), ServerState.FAULT, "the server failed"),
        (BadAnswerError("html"), ServerState.FAULT, "answer is not PassQR's"),
        (NotFoundError("gone"), ServerState.FAULT, "not found"),
    ],
)
def test_the_status_line_after_a_failure(error: APIError, state: ServerState, detail: str) -> None:
    got_state, got_detail = server_status(error)
    assert got_state is state
    assert got_detail.startswith(detail)


def test_a_refused_request_says_nothing_about_the_server() -> None:
    assert failure_state(RequestRejectedError("bad value")) is None
    assert failure_state(NotFoundError("gone")) is None


def _calls(path: Path) -> set[str]:
    """Attribute and function names called in a module (``x.execute(...)`` -> ``execute``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                names.add(func.attr)
            elif isinstance(func, ast.Name):
                names.add(func.id)
    return names


def test_no_sql_on_the_journal_outside_it() -> None:
    """The journal's tables are read and written by the journal's modules only
    (``scanner/journal.py``, its schema and its contact events' queries; the local server
    keeps its own database in ``scanner/server/``, the hub its own in ``scanner/hub/``, and
    the import's duplicate check a private temporary one)."""
    offenders = []
    for path in sorted((ROOT / "scanner").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        journal_modules = (
            "scanner/journal.py",
            "scanner/journal_schema.py",
            "scanner/journal_events.py",
        )
        own_databases = ("scanner/server/", "scanner/hub/", "scanner/manage/duplicates.py")
        if name in journal_modules or name.startswith(own_databases):
            continue
        used = _calls(path) & {"execute", "executemany", "executescript", "connect", "_run"}
        if "connect" in used and "sqlite3.connect" not in path.read_text(encoding="utf-8"):
            used.discard("connect")  # a socket or serial connect, not a database
        if used:
            offenders.append(f"{name}: {sorted(used)}")
    assert not offenders, offenders


def test_a_hubs_refusal_of_a_gate_keys_write_is_not_called_a_plan_problem() -> None:
    from scanner.explain import GATE_KEY_READ_ONLY

    hub = explain(PlanError("A gate key validates and reads only", code=GATE_KEY_READ_ONLY))
    assert "gate key" in hub.summary
    assert "--role staff" in hub.fix
    assert "plan" not in hub.summary
    assert explain(PlanError("free")).summary == "plan has no API access"
