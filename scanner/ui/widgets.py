"""The pieces of the gate screen: the result panel, the status line, the key hints.

Everything a pass, a server or a device says is shown as literal
:class:`~textual.content.Content` built from :func:`scanner.payload.printable`
text: a holder called ``[bold]Eve[/]`` is shown with its brackets, and no
control character reaches the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from scanner.models import Decision
from scanner.payload import printable
from scanner.relay import Relay, RelayState
from scanner.sources import Source, SourceState
from scanner.status import GateStatus, ServerState
from scanner.ui import bigtext

_log = logging.getLogger(__name__)

#: Longest free text (holder, template, detail) kept before the width cuts it.
TEXT_LIMIT = 120


def literal(text: object, limit: int = TEXT_LIMIT) -> str:
    """Any value as one printable line: never markup, never a control character."""
    return printable(" ".join(str(text).split()), limit)


def _block(lines: list[str], *, half: bool) -> list[Content]:
    out: list[Content] = []
    for i, line in enumerate(lines):
        if i:
            out.append(Content(""))
        out.extend(Content(row) for row in bigtext.render(line, half=half))
    return out


class ResultPanel(Widget):
    """The big middle of the screen: "Scan your pass", or the last decision.

    The CSS classes ``-idle``, ``-accepted`` and ``-rejected`` give the panel its
    colour; :attr:`headline` is the big word in plain text (for tests and logs).
    """

    DEFAULT_CSS = """
    ResultPanel {
        height: 1fr;
        padding: 0 2;
        content-align: center middle;
        text-align: center;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    IDLE_HEADLINE = "Scan your pass"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-idle")
        self.decision: Decision | None = None
        self._checking = False

    @property
    def checking(self) -> bool:
        """A scan is being validated: the idle screen says so instead of inviting another."""
        return self._checking

    @checking.setter
    def checking(self, value: bool) -> None:
        if value != self._checking:
            self._checking = value
            if self.decision is None:
                self.refresh()

    @property
    def headline(self) -> str:
        if self.decision is None:
            return self.IDLE_HEADLINE
        return "ACCEPTED" if self.decision.accepted else "REJECTED"

    def show_idle(self) -> None:
        self.decision = None
        self.set_classes("-idle")
        self.refresh()

    def show_decision(self, decision: Decision) -> None:
        self.decision = decision
        self.set_classes("-accepted" if decision.accepted else "-rejected")
        self.refresh()

    # -- rendering -------------------------------------------------------------------------

    def _big(self, text: str, *, half: bool, style: str = "bold") -> list[Content]:
        """``text`` in block letters if it fits the panel, else one plain bold line."""
        lines = bigtext.wrap(text, self.content_size.width, max_lines=2)
        if lines is None:
            return [Content.styled(literal(text), style)]
        return _block(lines, half=half)

    def render(self) -> Content:
        try:
            lines = self._idle() if self.decision is None else self._result(self.decision)
        except Exception:  # noqa: BLE001 - a bad value must never take the gate screen down
            _log.exception("cannot draw the result panel")
            return Content.styled(self.headline, "bold")
        return Content("\n").join(lines)

    def _idle(self) -> list[Content]:
        return [
            *self._big(self.IDLE_HEADLINE, half=False),
            Content(""),
            Content.styled(
                "Checking your pass..." if self._checking else "Hold your pass code to the scanner",
                "bold",
            ),
        ]

    def _result(self, decision: Decision) -> list[Content]:
        lines = self._big(self.headline, half=False)
        lines.append(Content(""))
        if decision.accepted and decision.relay_fault:
            lines.append(Content.styled(f" {decision.message.upper()} ", "reverse " + BAD))
            lines.append(Content(""))
        if decision.accepted:
            lines.append(Content.styled(literal(decision.holder or decision.message), "bold"))
            lines.append(Content(""))
            if decision.template:
                lines.append(Content.assemble("Pass: ", (literal(decision.template), "bold")))
            uses = "Unlimited" if decision.uses_left is None else str(decision.uses_left)
            lines.append(Content.assemble("Uses left: ", (uses, "bold")))
        else:
            lines.extend(self._big(decision.message, half=True))
            who = " - ".join(literal(x) for x in (decision.holder, decision.template) if x)
            if who:
                lines.append(Content(""))
                lines.append(Content(who))
        if decision.detail:
            lines.append(Content(""))
            lines.append(Content.styled(literal(decision.detail), "dim"))
        return lines


# Bright foregrounds on the dark bars: exactly the 16-colour palette's bright
# green, red and yellow, so ``TERM=linux`` shows the same thing.
GOOD = "bold #55ff55"
BAD = "bold #ff5555"
WARN = "bold #ffff55"

_SERVER_STYLE: Mapping[ServerState, str] = {
    ServerState.OK: GOOD,
    ServerState.UNKNOWN: WARN,
}
_SOURCE_STYLE: Mapping[SourceState, str] = {
    SourceState.READY: GOOD,
    SourceState.STARTING: WARN,
    SourceState.STOPPED: "dim",
}
_RELAY_STYLE: Mapping[RelayState, str] = {
    RelayState.OFF: "bold",
    RelayState.ON: GOOD,
}

_SEP = ("  |  ", "dim")


@dataclass(frozen=True, kw_only=True)
class LinkStatus:
    """What the offline machinery is doing, for the third status line."""

    policy: str = "deny"
    pending: int = 0
    conflicts: int = 0
    last_sync: datetime | None = None
    throttled: bool = False


def link_content(status: GateStatus, link: LinkStatus) -> Content:
    """``OFFLINE  |  Policy allow-known  |  Uploads 2 pending  |  Synced 10:42``."""
    parts: list[str | tuple[str, str]] = []
    if status.halted:
        parts += [(" SCANNING STOPPED ", "reverse " + BAD), " ", literal(status.halted, 60)]
        return Content.assemble(*parts)
    if status.journal_fault:
        parts += [(" JOURNAL ", "reverse " + BAD), " ", literal(status.journal_fault, 60)]
        return Content.assemble(*parts)
    if status.server is ServerState.UNREACHABLE:
        parts += [(" OFFLINE ", "reverse " + BAD), _SEP]
    elif link.throttled or status.server is ServerState.RATE_LIMITED:
        parts += [(" THROTTLED ", "reverse " + WARN), _SEP]
    parts += ["Offline policy ", (link.policy, WARN if link.policy == "allow-all" else "bold")]
    parts += [_SEP, "Uploads ", (str(link.pending), WARN if link.pending else "bold"), " pending"]
    if link.conflicts:
        parts += [", ", (f"{link.conflicts} disputed", BAD)]
    if link.policy == "allow-known":
        when = link.last_sync.astimezone().strftime("%H:%M") if link.last_sync else "never"
        parts += [_SEP, "Synced ", (when, "bold" if link.last_sync else WARN)]
    return Content.assemble(*parts)


def status_content(
    status: GateStatus,
    sources: list[Source],
    relay: Relay,
    width: int = 78,
    link: LinkStatus | None = None,
) -> Content:
    """Three lines for staff: the server and today's counts; the devices; offline work.

    The server's detail is cut so that the counts always fit.
    """
    counts = Content.assemble(
        _SEP,
        "Today ",
        (str(status.accepted_today), GOOD),
        " accepted, ",
        (str(status.rejected_today), BAD),
        " rejected",
    )
    server: list[str | tuple[str, str]] = [
        "Server ",
        (status.server.value, _SERVER_STYLE.get(status.server, BAD)),
    ]
    room = width - counts.cell_length - len("Server ") - len(status.server.value) - 3
    if status.server_detail and status.server is not ServerState.OK and room >= 8:
        server.append(f" ({literal(status.server_detail, room - 1)})")
    first = Content.assemble(*server, counts)

    devices: list[str | tuple[str, str]] = ["Relay "]
    if relay.kind == "none":
        devices.append(("none", "dim"))
    else:
        devices.append((relay.state.value.upper(), _RELAY_STYLE.get(relay.state, BAD)))
        if relay.state is RelayState.FAULT and relay.fault:
            devices.append(f" ({literal(relay.fault, 30)})")
    devices += [_SEP, "Scanners: "]
    if not sources:
        devices.append(("none", BAD))
    # A scanner in trouble first: if the line is cut, it is the healthy ones that go.
    ordered = sorted(sources, key=lambda source: source.state is SourceState.READY)
    for i, source in enumerate(ordered):
        if i:
            devices.append(", ")
        devices.append(literal(source.name, 30) + " ")
        devices.append((source.state.value, _SOURCE_STYLE.get(source.state, BAD)))
        if source.detail and source.state is not SourceState.READY:
            devices.append(f" ({literal(source.detail, 60)})")
    lines = [first, Content.assemble(*devices)]
    if link is not None:
        lines.append(link_content(status, link))
    return Content("\n").join(lines)


class StatusLine(Static):
    """Server, relay, counts and scanners; redrawn only when something changed."""

    DEFAULT_CSS = """
    StatusLine {
        height: 3;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self._shown: Content | None = None

    def show(self, content: Content) -> None:
        if self._shown is None or not content.is_same(self._shown):
            self._shown = content
            self.update(content)


def key_hints(keys: list[tuple[str, str]]) -> Content:
    """``F2 Enter code  F3 Recent scans ...``: keys in reverse video, which every console has."""
    parts: list[str | tuple[str, str]] = []
    for i, (key, label) in enumerate(keys):
        if i:
            parts.append("  ")
        parts.append((f" {key} ", "reverse bold"))
        parts.append(f" {label}")
    return Content.assemble(*parts)


def demo_hint(codes: Mapping[str, str], width: int = 78) -> Content:
    """One line telling a demo user which codes to type, as many as fit ``width``."""
    # One pass that is always accepted, then ones that show a rejection.
    order = ["season", "expired", "revoked", "used", "valid"]
    labels = [label for label in order if label in codes] + sorted(set(codes) - set(order))
    head = "Demo: type a code + Enter  "
    text = head
    for label in labels:
        item = f"{literal(codes[label], 40)} ({literal(label, 20)})"
        candidate = item if text == head else f"  {item}"
        if len(text) + len(candidate) > width and text != head:
            break
        text += candidate
    return Content.assemble((head, "bold"), text[len(head) :])
