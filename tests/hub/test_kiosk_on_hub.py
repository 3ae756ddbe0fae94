"""A real kiosk at the hub, changed in nothing but its base_url and key:

pty scanner --> `passqr-scanner run --headless` (a process) --> hub --> PassQR (local)
                                                --> LCUS relay board on a pty
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import LocalServer
from tests.functional.test_kiosk_headless import Kiosk, has_ons, start_kiosk
from tests.support.serial_sim import LcusSim, ScannerSim
from tests.support.venue import Venue, venue, wait_until


def write_config(tmp_path: Path, hub_url: str, scanner: ScannerSim, relay: LcusSim) -> Path:
    """The kiosk's usual config; only base_url points at the hub. The offline copy on."""
    path = tmp_path / "gate.toml"
    path.write_text(f"""
[api]
base_url = "{hub_url}"
timeout_s = 5.0

[gate]
name = "North door"
repeat_ignore_s = 0.0
result_hold_s = 0.5

[offline]
policy = "allow-known"
sync_interval_s = 10

[[sources]]
type = "serial"
port = "{scanner.link}"
baudrate = 9600

[relay]
type = "lcus"
port = "{relay.link}"
channel = 1
pulse_ms = 200

[journal]
path = "{tmp_path / "journal.sqlite3"}"
""")
    return path


def test_a_headless_kiosk_works_against_the_hub_with_only_its_url_and_key_changed(
    tmp_path: Path,
) -> None:
    with venue(tmp_path, start_hub=False) as place:
        single = place.seed(1)[0]  # max_uses 1, in PassQR before the hub's first sync
        season = place.seed(1, max_uses=5)[0]
        place.start_hub()
        place.wait_synced()
        scanner = ScannerSim(tmp_path / "scanner")
        relay = LcusSim(tmp_path / "relay")
        config = write_config(tmp_path, place.hub_url, scanner, relay)
        kiosk_started = time.monotonic()
        # The kiosk's key is the hub's gate key north-1 (PASSQR_API_KEY, as usual).
        hub = LocalServer(place.hub_url, place.gates["north-1"], place.config.hub.db)
        kiosk = start_kiosk(config, hub)
        try:
            kiosk.wait_stderr("ready", timeout=30)
            _scans_decided_at_the_hub(place, kiosk, scanner, relay, single)
            # The offline copy synced from the hub: the pass it mirrors, and not one read
            # (the kiosk's probe, its copy's pages) reached PassQR.
            kiosk.wait_stderr("offline copy: ", timeout=30)
            synced = [line for line in kiosk.stderr_lines if "offline copy: " in line]
            assert "offline copy: 2 passes synced" in synced[0], synced
            upstream_reads = [a for a in place.upstream_log.arrivals if a.method == "GET"]
            assert any(a.path == "/api/v1/passes" for a in upstream_reads)  # the hub's sync
            assert [a for a in upstream_reads if a.at > kiosk_started] == []
            # The hub down: the kiosk's offline policy, with the copy it synced from the hub.
            assert relay.wait_for(lambda board: not board.state[1])  # the last pulse is over
            place.stop_hub()
            scanner.scan(str(season["code"]), b"\r")
            line = kiosk.decision()
            assert (line["decision"], line["offline"]) == ("accepted", True), line
            assert relay.wait_for(has_ons(3))
            # The hub back: the kiosk uploads its offline admission, the hub forwards it.
            place.start_hub()
            wait_until(lambda: place.upstream_uses(str(season["id"])) == 1, within_s=60)
        finally:
            kiosk.finish()
            scanner.close()
            relay.close()
        _counted_at_the_hub_and_upstream(place, single)


def _scans_decided_at_the_hub(
    place: Venue, kiosk: Kiosk, scanner: ScannerSim, relay: LcusSim, single: dict[str, object]
) -> None:
    code = str(single["code"])
    scanner.scan(code, b"\r")
    line = kiosk.decision()
    assert (line["decision"], line["reason"], line["code"]) == ("accepted", "valid", code)
    assert relay.wait_for(has_ons(1))
    assert relay.wait_for(lambda board: not board.state[1])
    scanner.scan(code, b"\r")  # the same single-use pass again
    line = kiosk.decision()
    assert (line["decision"], line["reason"]) == ("rejected", "used")
    # A pass made at PassQR after the hub's sync: the hub asks PassQR at once.
    fresh = place.new_pass(str(single["template_id"]), max_uses=1)
    scanner.scan(fresh["code"], b"\r")
    line = kiosk.decision()
    assert (line["decision"], line["reason"], line["code"]) == ("accepted", "valid", fresh["code"])
    assert relay.wait_for(has_ons(2))
    assert place.upstream_uses(fresh["id"]) == 1  # PassQR decided it, counted it then
    assert relay.log.bad_frames == 0
    assert len(relay.on_events()) == 2  # the rejected scan never moved the relay


def _counted_at_the_hub_and_upstream(place: Venue, single: dict[str, object]) -> None:
    status = place.status()
    gates = {gate["name"]: gate for gate in status["gates"]}
    # Counted under its key's name, not the kiosk's own gate name.
    assert gates["north-1"]["accepted"]["hour"] == 3  # the offline admission, uploaded
    assert gates["north-1"]["rejected"]["hour"] == 1
    assert "North door" not in gates
    place.wait_drained()
    assert place.upstream_uses(str(single["id"])) == 1
    results = [result for _, result in place.upstream_scans()]
    assert results == ["valid", "valid", "valid"]  # the re-scan was decided at the hub alone
    upstream = place.status()["upstream"]
    assert (upstream["sent"], upstream["conflicts"]) == (3, 0)
