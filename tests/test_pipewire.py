"""stemd under PipeWire's JACK (`pw-jack`), next to the jackd2 tests: its ports and their connections,
the latency it reports, and a reconnect with ports and connections restored after PipeWire restarts.

stemd runs as `pw-jack python -m stemd run` against a private PipeWire + WirePlumber with a null
sink (tests/pipewire_server.py); the dry model keeps the test about the JACK side.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_harness import write_config
from pipewire_server import QUANTUM, RATE, SINK, JackPort, PipeWireServer
from test_daemon_cli import free_udp_port
from test_daemon_jack import wait_until

from stemd.control.osc.client import status

pytestmark = pytest.mark.jack

LATENCY_MS = 200.0
L = round(LATENCY_MS * RATE / 1000)
LATENCY_SETTLE_S = 10.0
OUTS = [f"{SINK}:playback_FL", f"{SINK}:playback_FR"]
INS = [f"{SINK}:monitor_FL", f"{SINK}:monitor_FR"]


@pytest.fixture
def pipewire(tmp_path):
    server = PipeWireServer(tmp_path / "pipewire").start()
    yield server
    server.stop()


@pytest.fixture
def stemd(pipewire, tmp_path):
    """`pw-jack stemd run` (dry) wired to the null sink: in from its monitor, out to its playback."""
    port = free_udp_port()
    config = write_config(
        tmp_path / "stemd.toml", audio={"latency_ms": LATENCY_MS}, engine={"model": "dry"},
        jack={"connect_inputs": INS, "connect_outputs": OUTS, "reconnect_interval_s": 0.2},
        osc={"port": port}, voice={"enabled": False}, midi={"jack_ports": False},
        state={"dir": str(tmp_path / "state")},
    )
    log = (tmp_path / "stemd.log").open("w")
    process = pipewire.command([sys.executable, "-m", "stemd", "run", "--config", str(config)],
                               stdout=log, stderr=subprocess.STDOUT)
    ask = lambda: status("127.0.0.1", port, timeout=2)["daemon"]  # noqa: E731
    try:
        assert wait_until(lambda: process.poll() is None and _answers(ask), 60), (tmp_path / "stemd.log").read_text()
        yield ask
    finally:
        process.terminate()
        assert process.wait(15) == 0
        log.close()
        output = (tmp_path / "stemd.log").read_text()
        assert "Traceback" not in output, output


def _answers(ask) -> bool:
    try:
        return ask()["state"].startswith("running")
    except (TimeoutError, OSError):
        return False


def _periods_advance(ask) -> bool:
    before = ask()["periods"]
    time.sleep(0.3)
    return ask()["periods"] > before


def _latencies(ports: dict[str, JackPort]) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """What stemd's ports report against what they should: L on top of the sink's ports they are
    linked to. Capture side: the sink's monitor feeds stemd, whose output adds exactly L on top of it.
    Playback side: stemd's input is L further from the speaker than the sink's own input."""
    capture, playback = ports[INS[0]].capture, ports[OUTS[0]].playback
    return {"stemd:out_L capture": (ports["stemd:out_L"].capture, (capture[0] + L, capture[1] + L)),
            "stemd:in_L playback": (ports["stemd:in_L"].playback, (playback[0] + L, playback[1] + L))}


def test_under_pw_jack_stemd_has_its_ports_connections_and_reports_its_latency(pipewire, stemd):
    assert _periods_advance(stemd), "the process callback does not run under PipeWire"
    state = stemd()
    assert state["period"] == QUANTUM and state["latency_frames"] == L
    ports = pipewire.ports()
    assert {"stemd:in_L", "stemd:in_R", "stemd:out_L", "stemd:out_R"} <= set(ports)
    assert ports["stemd:in_L"].connections == [INS[0]] and ports["stemd:out_R"].connections == [OUTS[1]]
    # PipeWire's JACK carries latency through the graph asynchronously, after the connections: CI
    # once read stemd's output capture latency as (0, 0) right after the links appeared. Every
    # JACK client sees the same settling, so the test waits for it (and says how long it took).
    started = time.monotonic()
    settled = lambda: all(got == want for got, want in _latencies(pipewire.ports()).values())  # noqa: E731
    wait_until(settled, LATENCY_SETTLE_S, step=0.1)
    for port, (got, want) in _latencies(pipewire.ports()).items():
        assert got == want, f"{port} latency {got}, not {want}, {LATENCY_SETTLE_S} s after the links appeared"
    print(f"under PipeWire: stemd's port latencies settled {time.monotonic() - started:.2f} s after its links")
    # And the audio itself comes out L later, as reported.
    probe = pipewire.command([sys.executable, str(Path(__file__).parent / "pw_impulse.py")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = probe.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        probe.kill()
        raise AssertionError(f"the impulse probe hung under pw-jack: {probe.communicate()[1]}") from None
    assert probe.returncode == 0, err
    delay = int(out.strip().splitlines()[-1])
    print(f"under PipeWire: impulse through stemd after {delay} frames; stemd reports L = {L}")
    assert abs(delay - L) <= QUANTUM


def test_stemd_waits_while_pipewire_is_gone_and_reconnects_its_ports_when_it_is_back(pipewire, stemd):
    assert _periods_advance(stemd)
    started = time.monotonic()
    pipewire.kill()
    assert wait_until(lambda: (stemd()["state"], stemd()["output"]) == ("JACK server gone", "off"), 10), stemd()
    noticed = time.monotonic() - started
    pipewire.start_pipewire()
    started = time.monotonic()
    assert wait_until(lambda: stemd()["state"].startswith("running"), 15), stemd()
    back = time.monotonic() - started
    # As after a real restart, the sink's ports appear only once WirePlumber has set it up, after
    # stemd is back: stemd connects them as they appear.
    assert "stemd:out_L" in pipewire.ports() and f"{SINK}:playback_FL" not in pipewire.ports()
    pipewire.start_session_manager()
    started = time.monotonic()
    assert wait_until(lambda: pipewire.ports().get("stemd:out_L", JackPort()).connections == [OUTS[0]], 10), \
        pipewire.ports()
    connected = time.monotonic() - started
    print(f"PipeWire killed: stemd waiting after {noticed:.2f} s; running {back:.2f} s after PipeWire "
          f"was up; connected {connected:.2f} s after the sink's ports appeared")
    ports = pipewire.ports()
    assert ports["stemd:in_R"].connections == [INS[1]] and ports["stemd:out_R"].connections == [OUTS[1]]
    assert ports["stemd:out_L"].capture == tuple(c + L for c in ports[INS[0]].capture)
    assert _periods_advance(stemd), "stemd reconnected but its process callback does not run"
