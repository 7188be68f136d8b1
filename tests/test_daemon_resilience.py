"""Failures the daemon must survive on a real jackd2: the engine worker killed mid-stream, and the
JACK server killed and started again."""

import os
import signal
import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player, Recorder
from oracle_separator import WEIGHTS
from test_daemon_jack import wait_until

from stemd.control.commands import Action, Command

pytestmark = pytest.mark.jack

AMP = 0.5
WET = AMP * (1 - WEIGHTS["vocals"])  # output level with vocals muted, when separated


def tone(rate, seconds=1.0):
    t = np.arange(round(seconds * rate)) / rate
    x = (AMP * np.sin(2 * np.pi * 375 * t)).astype(np.float32)  # 375 Hz: whole cycles per second
    return np.stack([x, x])


def envelope(x, rate, window_s=0.01):
    n = round(window_s * rate)
    frames = x[: len(x) // n * n].reshape(-1, n)
    return np.abs(frames).max(axis=1)


def tone_through(jackd, seconds):
    """A looping tone into stemd's inputs and a recorder on out_L, started 0.5 s into the tone."""
    player, recorder = Player(jackd, tone(jackd.rate), loop=True), Recorder(jackd, 1, seconds)
    player.connect("stemd:in_L", "stemd:in_R")
    recorder.connect("stemd:out_L")
    player.play()
    time.sleep(0.5)
    recorder.start()
    return player, recorder


def test_killing_the_worker_mid_stream_keeps_the_audio_going_and_separation_resumes(jackd, tmp_path):
    rate = jackd.rate
    with running_daemon(jackd, tmp_path) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15), daemon.stats()
        daemon.session.submit([Command(Action.MUTE, stem="vocals")], "test")
        player, recorder = tone_through(jackd, 8.0)
        time.sleep(1.0)
        before = daemon.stats()
        os.kill(before["engine"]["pid"], signal.SIGKILL)
        killed_at = recorder.pos
        assert wait_until(lambda: daemon.stats()["engine"]["starts"] == 2 and daemon.jack.path.stats.wet, 15)
        recorder.wait_full(20)
        after = daemon.stats()
        player.close()
        recorder.close()

    env = envelope(recorder.data[0], rate)
    print(f"worker kill: underruns {before['underruns']} -> {after['underruns']}, "
          f"hard switches {after['hard_switches']}, restarts {after['engine']['restarts']}")
    assert env.min() > 0.9 * WET, "the output dipped below the separated level: it went (partly) silent"
    dry = env > 0.9 * AMP
    assert dry[killed_at // round(0.01 * rate):].any(), "never fell back to the dry signal after the kill"
    wet = np.isclose(env, WET, rtol=0.02)
    back = np.flatnonzero(dry)[-1] + 1  # after the last dry window
    assert wet[back:].sum() >= 50, "separation did not resume (under 0.5 s separated after the restart)"
    assert after["underruns"] > before["underruns"]
    assert after["hard_switches"] == 0  # every switch was a crossfade on audio that existed
    step = np.abs(np.diff(recorder.data[0])).max()
    assert step < 1.5 * AMP * 2 * np.pi * 375 / rate, f"a click: sample step {step:.3f}"


def test_jack_server_restart_reconnects_ports_connections_and_mixer_state(jackd, tmp_path):
    rate = jackd.rate
    jack_cfg = {"connect_inputs": ["system:capture_1", "system:capture_2"],
                "connect_outputs": ["system:playback_1", "system:playback_2"]}
    with running_daemon(jackd, tmp_path, jack=jack_cfg) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15)
        daemon.session.submit([Command(Action.MUTE, stem="vocals")], "test")
        connections = dict(daemon.jack.connections)
        assert connections["in_L"] == ["system:capture_1"] and connections["out_R"] == ["system:playback_2"]
        pid = daemon.stats()["engine"]["pid"]

        jackd.process.kill()
        jackd.process.wait()
        try:
            assert wait_until(lambda: daemon.state == "waiting for JACK", 10), daemon.state
        finally:
            # Same name again: this also frees the registry slot a SIGKILLed jackd leaves behind
            # (libjack reclaims dead entries by name only; 8 leaked slots block every JACK server).
            jackd.start()
        assert wait_until(lambda: daemon.state.startswith("running") and daemon.jack.client is not None, 15)

        probe = jackd.client("check")
        names = {p.name for p in probe.get_ports("stemd:")}
        assert {"stemd:in_L", "stemd:in_R", "stemd:out_L", "stemd:out_R"} <= names
        assert [p.name for p in probe.get_all_connections("stemd:in_L")] == ["system:capture_1"]
        assert [p.name for p in probe.get_all_connections("stemd:out_R")] == ["system:playback_2"]
        probe.close()

        player, recorder = Player(jackd, tone(rate), loop=True), Recorder(jackd, 1, 0.5)
        player.connect("stemd:in_L", "stemd:in_R")
        recorder.connect("stemd:out_L")
        player.play()
        assert wait_until(lambda: daemon.jack.path.stats.wet, 10)
        time.sleep(0.3)
        recorder.start()
        recorder.wait_full(10)
        player.close()
        recorder.close()
        assert daemon.session.snapshot()["stems"]["vocals"]["muted"]
        assert daemon.stats()["engine"]["pid"] == pid  # the engine never noticed
    assert np.max(np.abs(recorder.data[0])) == pytest.approx(WET, rel=0.02)
