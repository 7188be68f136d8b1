"""`stemd run` as systemd runs it (Type=notify, watchdog, SIGTERM) and `stemd status` against it."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from daemon_harness import write_config

from stemd.control.osc.client import status

pytestmark = pytest.mark.jack


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notifications(sock, until, timeout):
    """Datagrams received until one contains `until`."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if until in got[-1]:
            return got
    raise AssertionError(f"no {until} within {timeout} s; got {got}")


def test_run_notifies_systemd_answers_status_and_stops_cleanly_on_sigterm(jackd, tmp_path):
    port = free_udp_port()
    config = write_config(
        tmp_path / "stemd.toml", engine={"model": "dry"},
        jack={"server_name": jackd.name, "connect_inputs": [], "connect_outputs": []},
        osc={"port": port}, voice={"enabled": False}, state={"dir": str(tmp_path / "state")},
    )
    notify_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")
    daemon = subprocess.Popen([sys.executable, "-m", "stemd", "run", "--config", str(config)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready = notifications(sock, "READY=1", 30)
        assert "STATUS=running" in ready[-1]
        assert any("WATCHDOG=1" in m for m in notifications(sock, "WATCHDOG=1", 5))

        state = status("127.0.0.1", port, timeout=5)
        assert state["daemon"]["state"].startswith("running")
        assert state["daemon"]["latency_ms"] == pytest.approx(200.0)
        assert state["daemon"]["xruns"] >= 0 and state["daemon"]["underruns"] == 0
        shown = subprocess.run([sys.executable, "-m", "stemd", "status", "--port", str(port), "--timeout", "5"],
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "latency    200.0 ms" in shown.stdout and "xruns" in shown.stdout and "underruns" in shown.stdout

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
        assert any("STOPPING=1" in m for m in notifications(sock, "STOPPING=1", 2))
    finally:
        if daemon.poll() is None:
            daemon.kill()
        output = daemon.communicate()[0]
        sock.close()
    assert "Traceback" not in output, output
