"""The daemon as a JACK client on a real jackd2 (dummy backend): latency, alignment, fallback."""

import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player, Recorder
from oracle_separator import WEIGHTS

from stemd.control.commands import Action, Command
from stemd.daemon.jack_latency import CAPTURE, PLAYBACK, get_latency

pytestmark = pytest.mark.jack


def wait_until(condition, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def undisturbed(disturbances, measure, attempts=4, retake_passes=True):
    """`measure()` repeated while a run sees new `disturbances()` (a count or a tuple of counts:
    xruns, periods played dry). A run the machine disturbed may have failed its assertion for that
    reason, so it is repeated; one that failed undisturbed is a real failure. `retake_passes`: a
    disturbed run that passed is repeated too, because its figure (a delay) is off. On a machine too
    loaded for even one undisturbed run, the last run stands."""
    for attempt in range(1, attempts + 1):
        before = disturbances()
        try:
            result = measure()
        except AssertionError:
            if disturbances() == before or attempt == attempts:
                raise
        else:
            if disturbances() == before or not retake_passes or attempt == attempts:
                return result
        print(f"run {attempt} was disturbed ({before} -> {disturbances()}); repeating")


def xrun_free(daemon, measure, attempts=4):
    """`measure()` repeated until one run sees no xrun: a period the server ran without a client
    shifts that client's own frame count, so the figure of an xrun-free run is the one that states
    the daemon's latency. A run with an xrun may also have lost the probe signal itself (the test
    player, a Python client, finished a cycle late and the server played silence for it)."""
    return undisturbed(lambda: daemon.jack.xruns.count, measure, attempts)


def through_stemd(jackd, signal, seconds):
    """Play `signal` into stemd:in_L/R while recording stemd:out_L/R for `seconds`; returns the
    recording and how many frames after the recording's start the signal started."""
    player, recorder = Player(jackd, signal), Recorder(jackd, 2, seconds)
    try:
        player.connect("stemd:in_L", "stemd:in_R")
        recorder.connect("stemd:out_L", "stemd:out_R")
        recorder.start()
        time.sleep(0.1)
        player.play()
        recorder.wait_full(seconds * 4 + 10)
    finally:
        player.close()
        recorder.close()
    return recorder.data, player.start_frame - recorder.start_frame


def impulse_delay(jackd, daemon, seconds=1.0):
    """Frames between an impulse leaving the player and arriving at the recorder via stemd."""
    signal = np.zeros((2, round(0.3 * jackd.rate)), np.float32)
    signal[:, 100] = 1.0
    data, start = through_stemd(jackd, signal, seconds)
    peak = int(np.argmax(np.abs(data[0])))
    assert abs(data[0, peak]) > 0.5, \
        f"the impulse never came out (peak {abs(data[0, peak]):.3g}; {daemon.jack.xruns.count} xruns so far)"
    return peak - (start + 100)


def reported_latency(jackd):
    probe = jackd.client("latency-probe")
    try:
        out_l = probe.get_port_by_name("stemd:out_L")
        in_l = probe.get_port_by_name("stemd:in_L")
        return get_latency(out_l, CAPTURE), get_latency(in_l, PLAYBACK)
    finally:
        probe.close()


def test_dry_mode_impulse_arrives_after_exactly_the_reported_latency(jackd, tmp_path):
    with running_daemon(jackd, tmp_path, model="dry") as daemon:
        (cap_lo, cap_hi), (play_lo, play_hi) = reported_latency(jackd)
        latency = daemon.jack.path.latency
        assert latency == round(0.2 * jackd.rate)
        assert cap_lo == cap_hi == latency  # nothing upstream of the probe: exactly L
        assert play_lo == play_hi == latency
        delay = xrun_free(daemon, lambda: impulse_delay(jackd, daemon))
    assert abs(delay - cap_lo) <= jackd.period, (delay, cap_lo)


def test_separated_mode_impulse_and_stem_sum_match_the_delayed_input(jackd, tmp_path):
    """With the oracle separator the summed stems must equal the input delayed by L: any alignment,
    overlap-add or resampling error shows up as a residual."""
    with running_daemon(jackd, tmp_path) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 10), daemon.stats()
        (cap, _), _ = reported_latency(jackd)
        delay = xrun_free(daemon, lambda: impulse_delay(jackd, daemon))
        assert abs(delay - cap) <= jackd.period, (delay, cap)
        rel_db = xrun_free(daemon, lambda: stem_sum_residual_db(jackd, cap))
        stats = daemon.stats()
    print(f"stem sum vs delayed input: residual {rel_db:.1f} dB re signal; stats {stats}")
    assert rel_db < -60.0  # tolerance: soxr HQ 48k→44.1k→48k round trip is about -100 dB


def stem_sum_residual_db(jackd, latency):
    """Play two tones through stemd; the output minus the input delayed by `latency`, in dB."""
    rate = jackd.rate
    t = np.arange(round(1.5 * rate)) / rate
    music = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 3300 * t + 1)).astype(np.float32)
    signal = np.stack([music, np.roll(music, 500)])
    data, start = through_stemd(jackd, signal, 1.5 + 0.7)
    got = data[:, start + latency:start + latency + signal.shape[1]]
    body = slice(round(0.1 * rate), round(1.4 * rate))  # away from the signal's own edges
    residual = got[:, body] - signal[:, body]
    return 20 * np.log10(np.sqrt(np.mean(residual ** 2)) / np.sqrt(np.mean(signal[:, body] ** 2)))


def test_mixer_commands_act_on_the_separated_output(jackd, tmp_path):
    with running_daemon(jackd, tmp_path) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 10)
        daemon.session.submit([Command(Action.MUTE, stem="vocals")], "test")
        rate = jackd.rate
        tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
        player = Player(jackd, np.stack([tone, tone]), loop=True)
        player.connect("stemd:in_L", "stemd:in_R")
        player.play()
        time.sleep(0.6)  # past L and the ramp

        def separated_level():
            recorder = Recorder(jackd, 1, 0.5)
            recorder.connect("stemd:out_L")
            recorder.start()
            recorder.wait_full(10)
            recorder.close()
            level = np.max(np.abs(recorder.data[0]))
            assert level == pytest.approx(0.5 * (1 - WEIGHTS["vocals"]), rel=0.02)
            return level

        # A period played dry (the engine starved of CPU on a loaded machine) is the fallback at
        # work, not the mixer; this test judges a recording that was separated throughout.
        def played_dry():
            return daemon.jack.xruns.count, daemon.jack.path.stats.underruns, daemon.jack.rt.late

        undisturbed(played_dry, separated_level, retake_passes=False)
        player.close()


def test_a_model_that_cannot_load_leaves_the_daemon_running_dry_and_saying_why(jackd, tmp_path):
    with running_daemon(jackd, tmp_path, model="nosuchmodel") as daemon:
        stats = daemon.stats()
        assert stats["state"] == "running dry (engine failed)"
        assert (stats["output"], stats["why"]) == ("dry", "engine failed")
        assert "nosuchmodel" in stats["engine"]["error"]
        assert daemon.engine is None  # no restart loop for a model that cannot load
        delay = xrun_free(daemon, lambda: impulse_delay(jackd, daemon))
    assert abs(delay - stats["latency_frames"]) <= jackd.period  # the music goes on, dry, on time


def test_a_connection_that_already_exists_is_not_a_warning(jackd, tmp_path, caplog):
    """After a reconnect the peer (or a session manager) may have made a connection already."""
    jack_cfg = {"connect_inputs": ["system:capture_1", "nosuch:port"], "connect_outputs": []}
    with running_daemon(jackd, tmp_path, model="dry", jack=jack_cfg) as daemon:
        caplog.clear()
        daemon.jack._restore({"in_L": ["system:capture_1"], "in_R": ["nosuch:port"]})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "nosuch:port" in warnings[0], warnings  # a missing port still is
