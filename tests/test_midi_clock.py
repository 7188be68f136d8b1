"""MIDI clock in through a real jackd: 24 ppqn ticks with jitter → tempo; start / stop / continue."""

import random

from midi_rig import FrameSender, StemdMidi, wait_for
from stemd.control.midi.clock import MidiClock
from stemd.daemon.transport import BeatClock

CLOCK, START, CONTINUE, STOP = b"\xf8", b"\xfa", b"\xfb", b"\xfc"


def ticks(sender: FrameSender, rate: int, bpm: float, seconds: float, jitter_ms: float, start: int | None = None):
    """Clock ticks from `start` (default: a few periods ahead), each moved by up to ±jitter_ms, as a
    sequencer syncing over a jittery link sends them. Returns the frame after the last tick."""
    rng = random.Random(int(bpm * 100))
    period = 60.0 * rate / (bpm * 24)
    first = sender.frame + 4 * 256 if start is None else start
    count = int(seconds * bpm * 24 / 60)
    frames = [first + round(i * period + rng.uniform(-jitter_ms, jitter_ms) * rate / 1000) for i in range(count)]
    frames = sorted(frames)  # JACK takes events in order only
    sender.schedule([(f, CLOCK) for f in frames])
    return first + round(count * period)


def test_clock_sets_the_tempo_within_half_a_bpm_and_follows_changes(jackd):
    with StemdMidi(jackd) as rig:  # no beat clock in this daemon: tempo goes to the mixer as a command
        seq = rig.sender("sequencer")
        end = ticks(seq, jackd.rate, 127.3, 2.0, jitter_ms=2.0)
        assert wait_for(seq.drained, timeout=10)
        assert wait_for(lambda: abs(rig.mixer.bpm - 127.3) <= 0.5, timeout=5), (rig.mixer.bpm, rig.xruns)
        first_estimate = rig.mixer.bpm
        ticks(seq, jackd.rate, 93.0, 2.0, jitter_ms=2.0, start=end)
        assert wait_for(seq.drained, timeout=10)
        assert wait_for(lambda: abs(rig.mixer.bpm - 93.0) <= 0.5, timeout=5), (rig.mixer.bpm, rig.xruns)
        print(f"\nMIDI clock 127.3 BPM -> {first_estimate:.2f}; 93.0 BPM -> {rig.mixer.bpm:.2f} (±2 ms jitter)")


def test_clock_drives_the_beat_clock_with_transport(jackd):
    beat_clock = BeatClock(jackd.rate, bpm=120.0)
    with StemdMidi(jackd, beat_clock=beat_clock) as rig:
        seq = rig.sender("sequencer")
        seq.send(START)
        ticks(seq, jackd.rate, 140.0, 2.0, jitter_ms=1.0)
        assert wait_for(seq.drained, timeout=10)
        assert wait_for(lambda: abs(beat_clock.bpm - 140.0) <= 0.5, timeout=5), (beat_clock.bpm, rig.xruns)
        assert beat_clock.source == "midi" and beat_clock.running
        assert rig.mixer.bpm == 120.0  # the beat clock owns tempo here, not a tempo command
        seq.send(STOP)
        assert wait_for(lambda: not beat_clock.running)
        seq.send(CONTINUE)
        assert wait_for(lambda: beat_clock.running)


def clocked(bpm_and_ticks, lose=(), jitter_s=0.002, seed=1):
    """A MidiClock fed `count` ticks at each (bpm, count) in turn with ±jitter_s, minus the ticks
    whose indices are in `lose`; returns the clock and the tempi it reported."""
    rng, reported, t, i = random.Random(seed), [], 0.0, 0
    clock = MidiClock(reported.append, lambda event: None)
    for bpm, count in bpm_and_ticks:
        for _ in range(count):
            t += 60.0 / (bpm * 24)
            if i not in lose:
                clock.tick(t + rng.uniform(-jitter_s, jitter_s))
            i += 1
    return clock, reported


def test_lost_ticks_do_not_bend_the_tempo():
    _, steady = clocked([(127.3, 101)])
    lose = {3, 10, 40, 41, 70}  # before the first fit, a run of two, and late in the window
    clock, lossy = clocked([(127.3, 101)], lose=lose)
    assert abs(lossy[-1] - 127.3) <= 0.1 and abs(lossy[-1] - steady[-1]) <= 0.1, (lossy, steady)
    assert clock.lost == len(lose)


def test_a_halved_tempo_is_a_new_tempo_not_lost_ticks():
    clock, reported = clocked([(140.0, 100), (70.0, 100)])
    assert abs(reported[-1] - 70.0) <= 0.1, reported
    assert clock.lost <= 2  # the intervals before it tells a slower sender from lost ticks
