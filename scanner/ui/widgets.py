"""The pieces of the gate screen: the result panel, the status line, the key hints.

Everything a pass, a server or a device says is shown as literal
:class:`~textual.content.Content` built from :func:`scanner.payload.printable`
text: a holder called ``[bold]Eve[/]`` is shown with its brackets, and no
control character reaches the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from scanner.gpio_input import GpioInput
from scanner.models import REASON_TEXT, Decision, Reason
from scanner.payload import printable
from scanner.relay import Relay, RelayState
from scanner.sources import Source, SourceState
from scanner.status import GateStatus, ServerState
from scanner.turnstile import Turnstile, TurnstileStatus
from scanner.ui import bigtext

_log = logging.getLogger(__name__)

#: Longest free text (holder, template, detail) kept before the width cuts it.
TEXT_LIMIT = 120


def literal(text: object, limit: int = TEXT_LIMIT) -> str:
    """Any value as one printable line: never markup, never a control character."""
    return printable(" ".join(str(text).split()), limit)


BLANK = Content("")


def _block(lines: list[str]) -> list[Content]:
    out: list[Content] = []
    for i, line in enumerate(lines):
        if i:
            out.append(BLANK)
        out.extend(Content(row) for row in bigtext.render(line))
    return out


def _stack(*groups: list[Content] | None) -> list[Content]:
    """The groups that have lines, one blank line between two."""
    out: list[Content] = []
    for group in groups:
        if group:
            if out:
                out.append(BLANK)
            out.extend(group)
    return out


def data_label(key: str) -> str:
    """``seat_row`` -> ``Seat row``: a pass data key as a label."""
    words = literal(key, 30).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


class ResultPanel(Widget):
    """The big middle of the screen: "Scan your pass", "Out of service", or the last decision.

    The CSS classes ``-idle``, ``-out``, ``-accepted`` and ``-rejected`` give the panel
    its colour; :attr:`headline` is the big word in plain text (for tests and logs).

    What a guest must read comes first and always fits: the verdict, the reason in
    plain words, the holder's name (and, when admitted, the pass data the venue chose).
    The rest (pass type, uses left) is drawn only where there is room, and block
    letters give way to one bold line when the panel is too small for them: on a
    64x18 console the verdict keeps its block letters and the reason gets a bar.

    Args:
        show_data: keys of a pass's ``data`` to show under ACCEPTED (``[gate] show_data``).
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
    IDLE_HINT = "Hold your pass code to the scanner"
    CHECKING_HINT = "Checking your pass..."
    OUT_HEADLINE = "Out of service"
    OUT_HINT = "This gate cannot check passes now. Please see a steward."

    def __init__(self, *, id: str | None = None, show_data: Sequence[str] = ()) -> None:
        super().__init__(id=id, classes="-idle")
        self.show_data = tuple(show_data)
        self.decision: Decision | None = None
        self.note = ""
        """A line about the decision that came later (when the pass was last used here)."""
        self._checking = False
        self._out_of_service = False

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
    def out_of_service(self) -> bool:
        """The gate cannot admit anyone: the idle screen says so instead of inviting guests."""
        return self._out_of_service

    @out_of_service.setter
    def out_of_service(self, value: bool) -> None:
        if value != self._out_of_service:
            self._out_of_service = value
            if self.decision is None:
                self.set_classes("-out" if value else "-idle")
                self.refresh()

    @property
    def headline(self) -> str:
        if self.decision is None:
            return self.OUT_HEADLINE if self._out_of_service else self.IDLE_HEADLINE
        return "ACCEPTED" if self.decision.accepted else "REJECTED"

    def show_idle(self) -> None:
        self.decision = None
        self.note = ""
        self.set_classes("-out" if self._out_of_service else "-idle")
        self.refresh()

    def show_decision(self, decision: Decision) -> None:
        self.decision = decision
        self.note = ""
        self.set_classes("-accepted" if decision.accepted else "-rejected")
        self.refresh()

    def show_note(self, decision: Decision, note: str) -> None:
        """Add ``note`` under ``decision``, if that decision is still the one shown."""
        if self.decision is decision:
            self.note = note
            self.refresh()

    # -- rendering -------------------------------------------------------------------------

    def _big(self, text: str) -> list[Content] | None:
        """``text`` in block letters in at most two lines, or None if it does not fit."""
        lines = bigtext.wrap(text, self.content_size.width, max_lines=2)
        return None if lines is None else _block(lines)

    def _fit(self, *variants: list[Content] | None) -> list[Content]:
        """The first variant that fits the panel's height (the last one, cut, if none does)."""
        candidates = [lines for lines in variants if lines]
        height = max(self.content_size.height, 1)
        for lines in candidates:
            if len(lines) <= height:
                return lines
        return candidates[-1][:height]

    def render(self) -> Content:
        try:
            lines = self._idle() if self.decision is None else self._result(self.decision)
        except Exception:  # noqa: BLE001 - a bad value must never take the gate screen down
            _log.exception("cannot draw the result panel")
            return Content.styled(self.headline, "bold")
        return Content("\n").join(lines)

    def _idle(self) -> list[Content]:
        if self._out_of_service:
            hint = self.OUT_HINT
        else:
            hint = self.CHECKING_HINT if self._checking else self.IDLE_HINT
        hints = [Content.styled(hint, "bold")]
        big = self._big(self.headline)
        return self._fit(
            _stack(big, hints) if big else None,
            [Content.styled(self.headline.upper(), "bold"), *hints],
        )

    def _result(self, decision: Decision) -> list[Content]:
        big = self._big(self.headline)
        plain = [Content.styled(self.headline, "bold")]
        return (self._admitted if decision.accepted else self._refused)(decision, big, plain)

    def _admitted(
        self, decision: Decision, big: list[Content] | None, plain: list[Content]
    ) -> list[Content]:
        first: list[Content] = []
        if decision.relay_fault:
            first.append(Content.styled(f" {literal(decision.message).upper()} ", "reverse " + BAD))
        first.append(Content.styled(literal(decision.holder or decision.message), "bold"))
        data = self._data(decision)
        if data is not None:
            first.append(data)
        extras: list[Content] = []
        if decision.holder and decision.message != REASON_TEXT[Reason.VALID]:
            if not decision.relay_fault:
                extras.append(Content.styled(literal(decision.message), "bold"))
        if decision.template:
            extras.append(Content.assemble("Pass: ", (literal(decision.template), "bold")))
        uses = "unlimited" if decision.uses_left is None else str(decision.uses_left)
        extras.append(Content.assemble("Uses left: ", (uses, "bold")))
        return self._fit(
            _stack(big, first, extras) if big else None,
            _stack(big, first) if big else None,
            [*plain, *first],
        )

    def _refused(
        self, decision: Decision, big: list[Content] | None, plain: list[Content]
    ) -> list[Content]:
        reason = literal(decision.message) or "Not admitted"
        bar = Content.styled(f"  {reason}  ", "reverse bold")
        # Where block letters do not fit, the reason gets a bar three rows high.
        edge = Content.styled(" " * bar.cell_length, "reverse")
        who = " - ".join(literal(x) for x in (decision.holder, decision.template) if x)
        after = [Content.styled(literal(self.note), "bold")] if self.note else []
        if who:
            after.append(Content(who))
        big_reason = self._big(reason)
        return self._fit(
            _stack(big, big_reason, after) if big and big_reason else None,
            _stack(big, [edge, bar, edge], after) if big else None,
            _stack(big, [bar, *after]) if big else None,
            [*plain, bar, *after],
        )

    def _data(self, decision: Decision) -> Content | None:
        """``Seat 12A   Table 4``: the pass data the venue shows at the door, on one line."""
        parts: list[str | tuple[str, str]] = []
        for key in self.show_data:
            value = decision.data.get(key)
            if value is None or value == "" or isinstance(value, dict | list):
                continue
            if parts:
                parts.append("   ")
            parts += [f"{data_label(key)} ", (literal(value, 40), "bold")]
        return Content.assemble(*parts) if parts else None


class DecisionBar(ResultPanel):
    """A decision shown over a staff screen (F2 to F5): the gate stays visible.

    Mounted on the open modal when a scan is decided there; it hides itself after
    ``hold_s``, like the gate screen's own result.
    """

    DEFAULT_CSS = """
    DecisionBar {
        dock: top;
        height: 9;
        padding: 0 1;
    }
    """

    def __init__(self, *, hold_s: float, show_data: Sequence[str] = ()) -> None:
        super().__init__(show_data=show_data)
        self.hold_s = hold_s
        self.display = False
        self._hold: Timer | None = None

    def show_decision(self, decision: Decision) -> None:
        super().show_decision(decision)
        self.display = True
        if self._hold is not None:
            self._hold.stop()
        self._hold = self.set_timer(self.hold_s, self.show_idle, name="bar-hold")

    def show_idle(self) -> None:
        super().show_idle()
        self._hold = None
        self.display = False


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


#: What the status line says when scanning stopped: plain words, the detail is on F4.
_HALT_TEXT: Mapping[ServerState, str] = {
    ServerState.REJECTED_KEY: "API key rejected",
    ServerState.NO_PLAN: "plan has no API access",
}


def link_content(status: GateStatus, link: LinkStatus) -> Content:
    """``OFFLINE  |  Policy allow-known  |  Uploads 2 pending  |  Synced 10:42``."""
    parts: list[str | tuple[str, str]] = []
    if status.halted:
        why = _HALT_TEXT.get(status.server, "the server refused this kiosk")
        parts += [(" SCANNING STOPPED ", "reverse " + BAD), f" {why}: see F4"]
        return Content.assemble(*parts)
    if status.journal_fault:
        parts += [(" JOURNAL ", "reverse " + BAD), " cannot record scans: see F4"]
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


def turnstile_content(status: TurnstileStatus, inputs: list[GpioInput]) -> Content:
    """``Turnstile 2 passed of 3 admitted, 1 not passed, 1 FORCED``: issue 16's counts for
    staff; a forced passage, tamper or alarm in reverse video, a contact that is not read."""
    return Content.assemble(*_turnstile_parts(status, inputs))


def _turnstile_parts(
    status: TurnstileStatus, inputs: list[GpioInput]
) -> list[str | tuple[str, str]]:
    parts: list[str | tuple[str, str]] = [
        f"Turnstile {status.passed} passed of {status.admissions} admitted"
    ]
    if status.not_passed:
        parts.append(f", {status.not_passed} not passed")
    for count, label in ((status.forced, "{} FORCED"), (status.tamper, "TAMPER {}")):
        if count:
            parts += [", ", (f" {label.format(count)} ", "reverse " + BAD)]
    if status.alarms:
        parts += [", ", (f" ALARM {status.alarms} ", "reverse " + BAD)]
    for contact in inputs:
        if contact.state is SourceState.DEGRADED:
            parts += [", ", (f"{literal(contact.name, 20)} {contact.state.value}", BAD)]
    return parts


def status_content(
    status: GateStatus,
    sources: list[Source],
    relay: Relay,
    link: LinkStatus | None = None,
    turnstile: Turnstile | None = None,
) -> Content:
    """Three lines for staff: the server and today's counts; the devices; offline work.

    The server's state in plain words only: what it said (an address, an exception)
    is for staff on F4 and in the log, not on the screen guests read.
    """
    first = Content.assemble(
        "Server ",
        (status.server.value, _SERVER_STYLE.get(status.server, BAD)),
        _SEP,
        "Today ",
        (str(status.accepted_today), GOOD),
        " accepted, ",
        (str(status.rejected_today), BAD),
        " rejected",
    )

    devices: list[str | tuple[str, str]] = ["Relay "]
    if relay.kind == "none":
        devices.append(("none", "dim"))
    else:
        devices.append((relay.state.value.upper(), _RELAY_STYLE.get(relay.state, BAD)))
        if relay.state is RelayState.FAULT and relay.fault:
            devices.append(f" ({literal(relay.fault, 30)})")
    if turnstile is not None and turnstile.active:  # issue 16: the Pi's own contacts
        devices += [_SEP, *_turnstile_parts(turnstile.status, turnstile.inputs)]
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


def out_of_service(status: GateStatus, sources: Sequence[Source]) -> str:
    """Why the gate cannot admit anyone now (empty when it can), for staff and logs.

    Scanning stopped (a rejected key or plan), the journal refusing scans, or no
    scanner that can read: a guest must not be invited to scan.
    """
    if status.halted:
        return f"scanning stopped: {status.halted}"
    if status.journal_fault:
        return f"journal: {status.journal_fault}"
    if not any(s.state in (SourceState.READY, SourceState.STARTING) for s in sources):
        return "no scanner can read" if sources else "no scanner configured"
    return ""


def gate_detail(status: GateStatus, sources: Sequence[Source], relay: Relay) -> Content:
    """For staff (F4): what the status line says in plain words, with what was said.

    The server's own message, the journal's error, a device's fault: the text a
    steward reads out to whoever fixes it. Empty-handed states say so in one line.
    """
    lines: list[Content] = []
    server = Content.assemble(
        "Server ", (status.server.value, _SERVER_STYLE.get(status.server, BAD))
    )
    if status.server_detail and status.server is not ServerState.OK:
        server += Content(f": {literal(status.server_detail, 300)}")
    lines.append(server)
    if status.halted:
        lines.append(Content.assemble(("Scanning stopped: ", BAD), literal(status.halted, 300)))
    if status.journal_fault:
        lines.append(Content.assemble(("Journal: ", BAD), literal(status.journal_fault, 300)))
    if relay.state is RelayState.FAULT and relay.fault:
        lines.append(Content.assemble(("Relay fault: ", BAD), literal(relay.fault, 300)))
    for source in sources:
        if source.state is not SourceState.READY:
            detail = f": {literal(source.detail, 300)}" if source.detail else ""
            lines.append(
                Content.assemble(
                    f"Scanner {literal(source.name, 60)} ",
                    (source.state.value, _SOURCE_STYLE.get(source.state, BAD)),
                    detail,
                )
            )
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
