"""Voice control wired into the rest of the daemon: `stemd status` over real OSC says what voice
control is doing (or why it is off) next to the intent parser's layers, on a real jackd."""

from __future__ import annotations

import socket

import pytest
from daemon_harness import running_daemon

from stemd.cli import main as stemd
from stemd.control.osc.client import status
from stemd.control.voice.bench import korean_model

pytestmark = pytest.mark.jack

KOREAN = {"enabled": True, "model_path": str(korean_model()), "phrase_table": "ko"}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stemd_status(port: int, capsys) -> str:
    assert stemd(["status", "--port", str(port), "--timeout", "5"]) == 0
    return capsys.readouterr().out


def test_status_shows_voice_listening_and_the_parser_layers(jackd, tmp_path, capsys):
    port = free_udp_port()
    with running_daemon(jackd, tmp_path, osc={"enabled": True, "port": port}, voice=KOREAN) as daemon:
        assert daemon.voice.wait_ready(60), daemon.voice.status()
        state = status("127.0.0.1", port, timeout=5)
        shown = stemd_status(port, capsys)
    voice = state["daemon"]["voice"]
    assert voice["state"] == "listening" and voice["phrase_table"] == "ko" and voice["applied"] == 0
    assert "voice      listening (push-to-talk, ko phrases); 0 applied, 0 rejected\n" in shown, shown
    assert "intent     semantic " in shown, shown


def test_status_says_why_voice_is_off(jackd, tmp_path, capsys):
    port = free_udp_port()
    missing = tmp_path / "no-such-model"
    with running_daemon(jackd, tmp_path, model="dry", osc={"enabled": True, "port": port},
                        voice={"enabled": True, "model_path": str(missing)}) as daemon:
        daemon.voice.wait_ready(10)
        state = status("127.0.0.1", port, timeout=5)
        shown = stemd_status(port, capsys)
    assert state["daemon"]["voice"]["state"] == "off"
    line = next(row for row in shown.splitlines() if row.startswith("voice "))
    assert line.startswith("voice      off: ") and str(missing) in line, shown
