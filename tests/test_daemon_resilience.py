"""Failures the daemon must survive on a real jackd2: the engine worker killed mid-stream, and the
JACK server killed and started again."""

import logging
import os
import signal
import socket
import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player, Recorder, XrunWatch
from oracle_separator import WEIGHTS
from osc_harness import Surface
from test_daemon_jack import undisturbed, wait_until

from stemd.cli.status import render
from stemd.control.commands import Action, Command
from stemd.daemon.worker import STANDBY_AFTER_TAKEOVER_S
from stemd.daemon.worker_priority import worker_cpus

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


KILL_AT_S = 1.0  # how far into the recording kill_the_worker_mid_tone kills the worker


def kill_the_worker_mid_tone(jackd, daemon, seconds):
    """Vocals muted, a looped tone played and recorded for `seconds`, the worker SIGKILLed KILL_AT_S
    into the recording. Returns the stats just before the kill, the player and the (filling) recorder."""
    daemon.session.submit([Command(Action.MUTE, stem="vocals")], "test")
    player, recorder = tone_through(jackd, seconds)
    time.sleep(KILL_AT_S)
    before = daemon.stats()
    os.kill(before["engine"]["pid"], signal.SIGKILL)
    return before, player, recorder


def dry_periods(daemon):
    """(periods played dry for lack of stems, for a late render thread) so far: what to blame."""
    return daemon.jack.path.stats.underruns, daemon.jack.rt.late


def dry_since(daemon, before):
    return tuple(now - then for now, then in zip(dry_periods(daemon), before))


def assert_no_silence_and_no_click(recorder, rate):
    """The recording is the tone throughout, at the separated level or above, and unbroken — except
    across the recorder's own splices (cycles the server ran that the Python recorder missed: the
    tone has whole cycles per period, so a splice shows only where a gain ramp was under way)."""
    recording = recorder.data[0]
    env = envelope(recording, rate)
    assert env.min() > 0.9 * WET, "the output dipped below the separated level: it went (partly) silent"
    step = np.abs(np.diff(recording))
    # A pure tone obeys x[n-1] + x[n+1] = 2 cos(w) x[n]; the 4 ms gain ramps leave under 1e-3 of
    # residue, a splice or a cold resampler's ringing 0.02-0.04 (too small for the step bound).
    x, w = recording.astype(np.float64), 2 * np.pi * 375 / rate
    residue = np.abs(x[:-2] + x[2:] - 2 * np.cos(w) * x[1:-1])
    for p in recorder.splices:  # the differences that straddle the recorder's splice at p
        step[p - 1] = 0.0
        residue[max(0, p - 2):p] = 0.0
    at = int(residue.argmax())
    assert step.max() < 1.5 * AMP * 2 * np.pi * 375 / rate, f"a click: sample step {step.max():.3f}"
    assert residue[at] < 5e-3, (f"a click: the tone is broken by {residue[at]:.4f} at frame {at + 1} "
                                f"(recorder splices at {recorder.splices})")


def taken_without_xruns(jackd, take, attempts=3):
    """`take()` (a daemon, a recording, its assertions) repeated while a failed take saw a server
    xrun: one breaks the recording wherever it falls (CI's loaded host has had 60 in 8 s, in
    Python clients as much as in stemd). A take without xruns must pass."""
    watch = XrunWatch(jackd)
    try:
        undisturbed(lambda: watch.count, take, attempts, retake_passes=False)
    finally:
        watch.close()


def test_killing_the_worker_mid_stream_keeps_the_audio_going_and_separation_resumes(jackd, tmp_path):
    """Without a standby: dry while a fresh worker loads, then separated again."""
    rate = jackd.rate

    def kill_and_record():
        with running_daemon(jackd, tmp_path, engine={"standby": False}) as daemon:
            assert wait_until(lambda: daemon.jack.path.stats.wet, 15), daemon.stats()
            before, player, recorder = kill_the_worker_mid_tone(jackd, daemon, 8.0)
            killed_at = recorder.pos
            assert wait_until(lambda: daemon.stats()["engine"]["starts"] == 2 and daemon.jack.path.stats.wet, 15)
            recorder.wait_full(20)
            after = daemon.stats()
            player.close()
            recorder.close()

        env = envelope(recorder.data[0], rate)
        print(f"worker kill: underruns {before['underruns']} -> {after['underruns']}, "
              f"hard switches {after['hard_switches']}, restarts {after['engine']['restarts']}, "
              f"recorder splices {recorder.splices}")
        assert_no_silence_and_no_click(recorder, rate)
        dry = env > 0.9 * AMP
        assert dry[killed_at // round(0.01 * rate):].any(), "never fell back to the dry signal after the kill"
        wet = np.isclose(env, WET, rtol=0.02)
        back = np.flatnonzero(dry)[-1] + 1  # after the last dry window
        assert wet[back:].sum() >= 50, "separation did not resume (under 0.5 s separated after the restart)"
        assert after["underruns"] > before["underruns"]
        assert after["hard_switches"] == 0  # every switch was a crossfade on audio that existed

    taken_without_xruns(jackd, kill_and_record)


def test_a_killed_worker_is_replaced_at_once_by_the_loaded_standby(jackd, tmp_path):
    """A model that takes 3 s to load: the standby took that time before the crash, not after."""
    rate = jackd.rate

    def take_over_and_record():
        with running_daemon(jackd, tmp_path, load_s=3.0,
                            engine={"nice": 10, "policy": "batch", "cpus": "auto"}) as daemon:
            assert wait_until(lambda: daemon.jack.path.stats.wet, 30), daemon.stats()
            assert wait_until(lambda: daemon.stats()["engine"]["standby"]["loaded"], 30), daemon.stats()
            before = daemon.stats()
            standby = before["engine"]["standby"]
            assert standby["memory"]["private_mb"] > 0 and before["engine"]["memory"]["rss_mb"] > 0
            # cpus = "auto": the workers keep off the lowest CPU, so the audio threads always find one free.
            cpus = worker_cpus("auto", os.sched_getaffinity(0))
            assert len(cpus) == max(1, len(os.sched_getaffinity(0)) - 1)
            assert os.sched_getaffinity(before["engine"]["pid"]) == cpus == os.sched_getaffinity(standby["pid"])
            pinned = "" if len(cpus) >= os.cpu_count() else f", CPUs {','.join(map(str, sorted(cpus)))}"
            assert before["engine"]["priority"] == f"SCHED_BATCH, nice 10{pinned}"
            assert "standby    loaded, " in render(daemon.session.snapshot())
            before_kill = dry_periods(daemon)
            # The recording ends half a second before the next standby starts loading on the workers'
            # one CPU, so it judges the takeover, not that load. A standby's load has dry periods of its own:
            # issue 22's open start-up gap, docs/decisions/daemon.md. In CI a 3 s take went dry ~0.1 s before
            # its end, which is as close to the next standby's start as the test can time it.
            _, player, recorder = kill_the_worker_mid_tone(jackd, daemon, KILL_AT_S + STANDBY_AFTER_TAKEOVER_S - 0.5)
            recorder.wait_full(20)
            dry = dry_since(daemon, before_kill)
            after = daemon.stats()
            player.close()
            recorder.close()
            # The next standby loads behind the new active worker.
            assert wait_until(lambda: daemon.stats()["engine"]["standby"]["loaded"], 30), daemon.stats()

        assert after["engine"]["pid"] == standby["pid"] and after["engine"]["standby"]["takeovers"] == 1
        assert after["engine"]["starts"] == 2 and after["output"] == "separated", after
        env = envelope(recorder.data[0], rate)
        print(f"standby takeover: underruns {before['underruns']} -> {after['underruns']}, "
              f"dry windows {(env > 0.9 * AMP).sum()} of 10 ms, recorder splices {recorder.splices}")
        assert_no_silence_and_no_click(recorder, rate)
        # Well under the 3 s a fresh worker would need to load: the standby did not load after the crash.
        assert (env > 0.9 * AMP).sum() < 100, "dry for over a second after the kill"
        assert np.isclose(env[-50:], WET, rtol=0.02).all(), \
            f"not separated at the end; dry periods (no stems, late) {dry}"
        assert after["hard_switches"] == 0

    taken_without_xruns(jackd, take_over_and_record)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jack_server_restart_reconnects_ports_connections_and_mixer_state(jackd, tmp_path, capfd, caplog):
    """Also: the status is true while JACK is gone and pushed to OSC subscribers, libjack stays quiet
    over many reconnect attempts, and the outage is one log line, the return another."""
    rate = jackd.rate
    jack_cfg = {"connect_inputs": ["system:capture_1", "system:capture_2"],
                "connect_outputs": ["system:playback_1", "system:playback_2"]}
    osc_cfg = {"enabled": True, "port": free_udp_port()}
    caplog.set_level(logging.INFO, logger="stemd.daemon.app")
    with running_daemon(jackd, tmp_path, jack=jack_cfg, osc=osc_cfg) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15)
        tablet = Surface(daemon.osc)
        assert tablet.ask("/stemd/subscribe")[0] == "/stemd/ok"
        tablet.wait_for("/stemd/state", ("running", "separated", ""))
        daemon.session.submit([Command(Action.MUTE, stem="vocals")], "test")
        connections = dict(daemon.jack.connections)
        assert connections["in_L"] == ["system:capture_1"] and connections["out_R"] == ["system:playback_2"]
        pid = daemon.stats()["engine"]["pid"]
        capfd.readouterr()

        jackd.process.kill()
        jackd.process.wait()
        try:
            assert wait_until(lambda: daemon.state == "JACK server gone", 10), daemon.state
            time.sleep(1.0)  # five reconnect attempts at 0.2 s
            gone = daemon.stats()
        finally:
            # Same name again: this also frees the registry slot a SIGKILLed jackd leaves behind
            # (libjack reclaims dead entries by name only; 8 leaked slots block every JACK server).
            jackd.start()
        assert wait_until(lambda: daemon.state.startswith("running") and daemon.jack.client is not None, 15)
        assert (gone["output"], gone["why"], gone["period"]) == ("off", "JACK server gone", None), gone
        tablet.wait_for("/stemd/state", ("JACK server gone", "off", "JACK server gone"))
        tablet.pushed.clear()
        tablet.wait_for("/stemd/state", ("running", "separated", ""))
        tablet.close()
        libjack = capfd.readouterr().err
        assert "Cannot connect to server" not in libjack and "JackShmReadWritePtr" not in libjack, libjack
        app_log = [r for r in caplog.records if r.name == "stemd.daemon.app" and "JACK" in r.getMessage()]
        assert [r.levelname for r in app_log] == ["WARNING", "INFO"], [r.getMessage() for r in app_log]

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
        before = dry_periods(daemon)
        recorder.start()
        recorder.wait_full(10)
        dry = dry_since(daemon, before)
        player.close()
        recorder.close()
        assert daemon.session.snapshot()["stems"]["vocals"]["muted"]
        assert daemon.stats()["engine"]["pid"] == pid  # the engine never noticed
    assert np.max(np.abs(recorder.data[0])) == pytest.approx(WET, rel=0.02), f"dry periods (no stems, render late): {dry}"
