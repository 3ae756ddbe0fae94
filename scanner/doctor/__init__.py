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
the round trip), then, when that went well, ``GET /hub/status`` once: a venue hub
answers it, PassQR does not. The API key is never printed: only where it came from.

One concept per module:

- :mod:`~scanner.doctor.report`: text and JSON output (:class:`Check` and :class:`Status`
  are :mod:`scanner.checks`', re-exported);
- :mod:`~scanner.doctor.settings`: the config file and the API key;
- :mod:`~scanner.doctor.api`: the server, the key's acceptance, the rate budget;
- :mod:`~scanner.doctor.hub`: a venue hub's status (its upstream, queue, conflicts, mirror,
  gates), read over HTTP;
- :mod:`~scanner.doctor.tls`: what to do about a certificate the kiosk refused (a hub's own);
- :mod:`~scanner.doctor.devices`: ports and cameras found, then each source and the relay,
  checked by its kind's ``probe`` (the registries, never a list of kinds here);
- :mod:`~scanner.doctor.storage`: the journal and the logs;
- :mod:`~scanner.doctor.host`: the user, its groups, ModemManager, and blocking I/O in time;
- :mod:`~scanner.doctor.cli`: :func:`diagnose` (the order) and the command.
"""

from __future__ import annotations

from scanner.doctor.api import rate_budget
from scanner.doctor.cli import add_doctor_parser, cmd_doctor, diagnose, main
from scanner.doctor.report import Check, Status, format_json, format_text, ready, summary

__all__ = [
    "Check",
    "Status",
    "add_doctor_parser",
    "cmd_doctor",
    "diagnose",
    "format_json",
    "format_text",
    "main",
    "rate_budget",
    "ready",
    "summary",
]
