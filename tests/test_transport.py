import math
import statistics
import threading
import time

import jack
import numpy as np
import pytest

from osc_harness import Surface, start_server
from stemd.control.commands import Command
from stemd.daemon.mixer import Mixer
from stemd.daemon.transport import BeatClock, JackTransport


class FakeTime:
    """A monotonic clock the test advances by hand (the priority rules are about seconds)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("sr", [44100, 48000, 96000])
@pytest.mark.parametrize("bpm", [90.0, 120.0, 128.0, 174.5])
def test_next_boundary_is_the_first_beat_sample_at_or_after(sr, bpm):
    clock = BeatClock(sr, bpm)
    spb = 60.0 * sr / bpm
    rng = np.random.default_rng(int(bpm))
    for frame in [0, 1, round(spb), round(spb) + 1] + list(rng.integers(0, 100 * sr, 200)):
        frame = int(frame)
        b = clock.next_boundary(frame)
        # a beat starts on the first sample at or after its exact time, so that sample is its boundary
        k = math.ceil((frame - 1 + 1e-6) / spb)
        assert b == max(frame, math.ceil(k * spb - 1e-6))
        assert clock.next_boundary(b) == b  # a boundary is its own next boundary
        assert frame <= b < frame + spb + 1
        bar = clock.next_boundary(frame, 4)
        past_bar_line = (clock.beat_at(bar) - 4 * round(clock.beat_at(bar) / 4)) * spb
        assert bar >= b and 0 <= past_bar_line < 1  # the bar line's first sample


def test_tempo_change_keeps_the_beat_phase():
    now = FakeTime()
    clock = BeatClock(48000, 120.0, clock=now)
    clock.mark(30000, 256)
    now.t += 0.01  # 480 frames later
    before = clock.beat_at(30480)
    assert clock.set_tempo(90.0, "osc")
    assert clock.beat_at(30480) == pytest.approx(before)
    assert clock.bpm == pytest.approx(90.0)
    assert clock.samples_per_beat == pytest.approx(32000.0)


def test_sources_rank_midi_jack_manual_estimate():
    now = FakeTime()
    clock = BeatClock(48000, 120.0, clock=now)
    assert clock.set_tempo(100.0, "estimate")
    assert clock.set_tempo(110.0, "osc")
    assert not clock.set_tempo(100.0, "estimate")  # a hand-set tempo is never overridden by a guess
    assert clock.set_tempo(128.0, "midi") and clock.source == "midi"
    now.t += 1.0
    assert not clock.set_tempo(140.0, "tap")
    assert not clock.follow(140.0, 0.0, 0, 4, "jack") and clock.bpm == pytest.approx(128.0)
    now.t += 1.5  # MIDI clock silent for longer than its hold
    clock.follow(132.0, 0.0, 0, 3, "jack")
    assert clock.source == "jack" and clock.beats_per_bar == 3
    now.t += 0.1
    assert not clock.set_tempo(99.0, "command")  # JACK transport still rolling
    now.t += 1.0
    assert clock.set_tempo(99.0, "command") and clock.bpm == pytest.approx(99.0)
    with pytest.raises(ValueError, match="unknown tempo source"):
        clock.set_tempo(120.0, "clap")
    with pytest.raises(ValueError, match="outside"):
        clock.set_tempo(1000.0, "osc")
    with pytest.raises(ValueError, match="unknown transport event"):
        clock.transport("rewind")


def test_input_clocks_are_moved_by_the_latency_tap_is_not():
    """MIDI clock and JACK transport tick with the input; what the performer hears (and taps to) comes
    out L later, so their beats land L later on the mixer's timeline."""
    now = FakeTime()
    clock = BeatClock(48000, 120.0, clock=now)
    clock.input_latency = 9600  # 200 ms
    clock.follow(120.0, 8.0, 48000, 4, "jack")
    assert clock.beat_at(48000 + 9600) == 8.0
    now.t += 5.0
    clock.mark(0, 256)
    clock.transport("start")
    assert clock.beat_at(9600) == 0.0
    now.t += 5.0
    clock.tap(now.t)
    clock.tap(now.t + 0.5)
    assert clock.beat_at(clock.frame_at(now.t + 0.5)) == pytest.approx(round(clock.beat_at(clock.frame_at(now.t + 0.5))))


def test_midi_start_puts_a_downbeat_now():
    now = FakeTime()
    clock = BeatClock(48000, 120.0, clock=now)
    clock.mark(1000, 256)
    now.t += 0.5
    clock.transport("start")
    assert clock.beat_at(1000 + 24000) == 0.0
    assert clock.next_boundary(25001, 4) == 25000 + 4 * 24000
    clock.transport("stop")
    assert not clock.running and clock.next_boundary(25001) == 49000  # the grid keeps running
    clock.transport("continue")
    assert clock.running


def test_tap_tempo_accuracy_with_human_jitter():
    """Taps at 128 BPM with 10 ms (sd) timing jitter, 8 taps: the least-squares fit lands within 1 %
    (3 sd of its expected error, 0.33 %), and the grid's beats fall on the taps."""
    errors = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        now = FakeTime()
        clock = BeatClock(48000, 100.0, clock=now)
        clock.mark(0, 256)
        start = now.t
        taps = start + np.arange(8) * 60.0 / 128.0 + rng.normal(0, 0.010, 8)
        for t in taps:
            bpm = clock.tap(float(t))
        errors.append(abs(bpm - 128.0) / 128.0)
        last_tap_frame = (taps[-1] - start) * 48000
        beat = clock.beat_at(last_tap_frame)
        assert abs(beat - round(beat)) * clock.samples_per_beat < 0.015 * 48000
    print(f"\ntap tempo, 8 taps at 128 BPM, 10 ms jitter: median error {100 * statistics.median(errors):.2f} %, "
          f"worst {100 * max(errors):.2f} %")
    assert max(errors) < 0.01


def test_a_pause_starts_a_new_tap_sequence():
    now = FakeTime()
    clock = BeatClock(48000, 120.0, clock=now)
    for t in (0.0, 0.5, 1.0):
        clock.tap(now.t + t)
    assert clock.bpm == pytest.approx(120.0)
    assert clock.tap(now.t + 5.0) is None  # first tap of a new sequence only sets the phase
    assert clock.tap(now.t + 5.4) == pytest.approx(150.0)


def test_osc_tap_reaches_the_beat_clock(tmp_path):
    server = start_server(tmp_path)
    server.session.beat_clock = BeatClock(48000, 100.0)
    tablet = Surface(server)
    try:
        for i in range(4):
            if i:
                time.sleep(0.4)
            address, args = tablet.ask("/stemd/tap", 1)
            assert address == "/stemd/ok"
        assert server.session.beat_clock.source == "tap"
        assert server.session.beat_clock.bpm == pytest.approx(150.0, rel=0.05)  # UDP + sleep jitter
    finally:
        tablet.close()
        server.stop()


def test_tempo_command_sets_the_clock_the_mixer_reads():
    mixer = Mixer(("vocals", "drums"), 48000, bpm=120.0)
    mixer.apply(Command("tempo", bpm=96.0))
    assert mixer.clock.bpm == pytest.approx(96.0) and mixer.bpm == pytest.approx(96.0)
    assert mixer.snapshot()["transport"]["source"] == "command"


def test_jack_transport_bbt_drives_the_clock(jackd):
    """A real timebase master (its own JACK client) publishes 132.5 BPM in 3/4; the hook, run before
    the mixer in our process callback like jack_io does, hands tempo, bar length and phase to the clock.
    Every cycle's BBT must agree with the grid set in the cycle before to within one sample."""
    bpm, per_bar, tpb = 132.5, 3.0, 1920.0
    master = jackd.client("master")

    def timebase(state, blocksize, pos, new_pos):
        beats = pos.frame / pos.frame_rate * bpm / 60.0
        pos.valid = jack.POSITION_BBT
        pos.beats_per_minute, pos.beats_per_bar, pos.beat_type, pos.ticks_per_beat = bpm, per_bar, 4.0, tpb
        pos.bar = int(beats // per_bar) + 1
        pos.beat = int(beats % per_bar) + 1
        pos.tick = int((beats % 1.0) * tpb)
        pos.bar_start_tick = 0.0

    master.set_timebase_callback(timebase)
    master.activate()

    ours = jackd.client("stemd-transport")
    mixer = Mixer(("vocals", "drums"), ours.samplerate, max_block=ours.blocksize, bpm=100.0)
    hook = JackTransport(mixer.clock)
    hook.register(ours)
    stems = np.zeros((2, 2, ours.blocksize), np.float32)
    out = np.zeros((2, ours.blocksize), np.float32)
    seen = []
    done = threading.Event()

    @ours.set_process_callback
    def process(frames):
        frame = mixer.frame  # the mixer's block counter: this cycle's frame on its timeline
        hook.pump(frame, frames)
        state, pos = ours.transport_query_struct()
        if state == jack.ROLLING and pos.valid & jack.POSITION_BBT and len(seen) < 400:
            truth = (pos.bar - 1) * per_bar + pos.beat - 1 + pos.tick / tpb
            seen.append((frame, truth, mixer.clock.grid))
        elif len(seen) >= 400:
            done.set()
        mixer.process(stems, out)

    ours.activate()
    ours.transport_start()
    try:
        assert done.wait(10), f"transport rolled for only {len(seen)} cycles"
    finally:
        ours.transport_stop()
        ours.deactivate()
        master.deactivate()
        ours.close()
        master.close()
    clock = mixer.clock
    assert clock.source == "jack" and clock.bpm == pytest.approx(bpm) and clock.beats_per_bar == 3
    spb = 60.0 * 48000 / bpm
    # Each cycle's BBT against the grid the previous cycle left: within one sample (plus the master's
    # tick rounding). A cycle the loaded dummy backend skips moves JACK's transport but not our block
    # counter by one period; the hook re-anchors on the next cycle. So: most cycles exact, the rest
    # off by whole periods, never anything in between (a drift or a wrong anchor).
    tolerance = 1.0 + spb / tpb
    errors = [abs(grid.beat + (frame - grid.anchor) / grid.spb - truth) * spb
              for (_, _, grid), (frame, truth, _) in zip(seen[10:], seen[11:])]
    period = jackd.period
    assert sum(e <= tolerance for e in errors) >= 0.5 * len(errors), sorted(errors)[-10:]
    assert all(min(e % period, period - e % period) <= tolerance for e in errors), sorted(errors)[-10:]
