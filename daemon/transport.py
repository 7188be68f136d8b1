"""The beat clock: one tempo and one sample-accurate beat grid for loops and fades.

Several sources may claim the tempo. They rank, highest first:

1. ``midi``     MIDI clock from a controller or sequencer (the MIDI helper calls `set_tempo` and
                `transport`); it holds the clock while it keeps talking (`HOLD_S`).
2. ``jack``     JACK transport BBT, when some client is timebase master and the transport rolls
                (`JackTransport`, a hook pumped every cycle, follows it, phase included).
3. ``osc``/``tap``/``command``  a tempo the performer set by hand (`/stemd/tempo`, `/stemd/tap`, the
                `tempo` command). A hand-set tempo is deliberate, so it never expires: the automatic
                estimate stops steering once the performer has spoken, only the sources above override it.
4. ``estimate`` the onset-based estimate from the drums stem (`daemon/tempo_estimate.py`).

A source is refused while a higher one is live; its value is simply ignored (no error: the clock
that wins is the one the performer's rig is following).

Timeline: every sample time here is in the mixer's frame timeline: its block counter, or the audio
path's frame count when it passes `frame_time`. The mixer marks the block being *heard* once per
cycle (`mark(frame, n, at)`: the render thread renders ahead, so it passes the played cycle), so
control threads (tap, MIDI start) place wall-clock events on the heard timeline.

Lock-free by construction: the whole grid is one tuple replaced by a single assignment (atomic in
CPython), so the render thread reads a consistent grid without a lock while control threads write.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any, Callable, NamedTuple

import jack

from stemd.control.commands import MAX_BPM, MIN_BPM
from stemd.control.timing import Timing

PRIORITY = {"midi": 0, "jack": 1, "osc": 2, "tap": 2, "command": 2, "estimate": 3}
HOLD_S = {0: 2.0, 1: 0.5, 2: math.inf, 3: math.inf}  # how long a source stays live after it spoke
TAP_RESET_S = 2.0  # a pause longer than this starts a new tap sequence
TAP_HISTORY = 8  # taps used for the tempo fit


class Grid(NamedTuple):
    """Beat position `beat + (frame - anchor) / spb` at any frame; integer beats are beat onsets."""

    anchor: float  # a frame
    beat: float  # the beat position at `anchor` (beat 0 is a downbeat)
    spb: float  # samples per beat
    beats_per_bar: int


class BeatClock:
    """Tempo truth of the daemon: sources in priority order, tap tempo, and the beat grid."""

    def __init__(self, sample_rate: int, bpm: float = 120.0, beats_per_bar: int = 4,
                 clock: Callable[[], float] = time.monotonic, phrase_bars: int = 4) -> None:
        self.sample_rate = sample_rate
        self.phrase_bars = phrase_bars
        self._now = clock
        self.grid = Grid(0.0, 0.0, 60.0 * sample_rate / bpm, beats_per_bar)
        self.source = "default"
        self._spoke = [-math.inf] * 4  # monotonic time each priority level last spoke
        self._mark = (clock(), 0, 0)
        self._taps: deque[float] = deque(maxlen=TAP_HISTORY)
        self.running = True  # MIDI start/stop state, for status only: the grid keeps running
        # MIDI clock and JACK transport keep time with the music at the input; the performer hears it
        # through the mixer the daemon's latency L later, so their beats are moved by L (in frames,
        # set by whoever knows L). Tap and the estimate already follow what is heard.
        self.input_latency = 0

    # ---- readers (any thread, including RT) ------------------------------------------------------

    @property
    def bpm(self) -> float:
        return 60.0 * self.sample_rate / self.grid.spb

    @property
    def beats_per_bar(self) -> int:
        return self.grid.beats_per_bar

    @property
    def samples_per_beat(self) -> float:
        return self.grid.spb

    def beat_at(self, frame: float) -> float:
        g = self.grid
        return g.beat + (frame - g.anchor) / g.spb

    def next_boundary(self, sample_time: int, beats: float = 1.0, count: int = 1) -> int:
        """The first frame at or after `sample_time` that starts a beat (or a group of `beats` beats,
        counted from a downbeat: `beats=beats_per_bar` gives the next bar line); `count` > 1 gives
        the count-th such boundary from there."""
        g = self.grid
        position = g.beat + (sample_time - g.anchor) / g.spb
        # The frame of a boundary is the first sample at or after its exact time, so a position less
        # than one sample past a boundary is that boundary (a timed command's frame is one).
        k = (math.ceil((position - (1.0 - 1e-6) / g.spb) / beats) + count - 1) * beats
        return max(sample_time, math.ceil(g.anchor + (k - g.beat) * g.spb - 1e-6))

    def boundary(self, sample_time: int, timing: Timing) -> int:
        """The frame a command timed `timing` ("bar", "4 beats", "phrase") lands on: as the grid is
        the heard one, that is the sample the performer hears the boundary at."""
        unit = timing.beats(self.beats_per_bar, self.phrase_bars)
        return self.next_boundary(sample_time, unit, timing.count)

    @property
    def has_tempo(self) -> bool:
        """False until some source (MIDI, JACK, hand-set, the estimate) set the tempo: the configured
        default is a guess, and a timed command must not land on a guessed bar line."""
        return self.source != "default"

    def beats_to_samples(self, beats: float) -> int:
        return round(beats * self.grid.spb)

    # ---- RT side ----------------------------------------------------------------------------------

    def mark(self, frame: int, frames: int, at: float | None = None) -> None:
        """Called by the mixer once per cycle with the heard block's first frame and length, and when
        it started (monotonic; now when None): ties wall-clock time to the timeline."""
        self._mark = (self._now() if at is None else at, frame, frames)

    def frame_at(self, t: float | None = None) -> float:
        """The timeline frame of monotonic time `t` (now when None), from the last `mark`."""
        at, frame, _ = self._mark
        return frame + ((self._now() if t is None else t) - at) * self.sample_rate

    def cycle_frame(self) -> int:
        """The first frame of the block after the last marked one: the mixer's block in this cycle when
        asked from an RT hook that runs before the mixer (as jack_io runs them)."""
        _, frame, frames = self._mark
        return frame + frames

    # ---- sources ----------------------------------------------------------------------------------

    def set_tempo(self, bpm: float, source: str, beat_frame: float | None = None) -> bool:
        """Set the tempo from `source`; keeps the current beat phase unless `beat_frame` (a frame
        known to be a beat onset) is given. False when a higher-priority source holds the clock."""
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise ValueError(f"tempo {bpm:g} BPM is outside {MIN_BPM:g}..{MAX_BPM:g}")
        if not self._claim(source):
            return False
        g = self.grid
        spb = 60.0 * self.sample_rate / bpm
        if beat_frame is None:
            anchor = self.frame_at()
            self.grid = Grid(anchor, g.beat + (anchor - g.anchor) / g.spb, spb, g.beats_per_bar)
        else:
            self.grid = Grid(beat_frame, float(round(self.beat_at(beat_frame))), spb, g.beats_per_bar)
        return True

    def tap(self, t: float | None = None) -> float | None:
        """One tap (monotonic seconds, now when None). Each tap is a beat onset; two or more taps set
        the tempo from a least-squares fit over the last taps, which averages out human jitter far
        better than the last interval alone. Returns the tempo once known."""
        t = self._now() if t is None else t
        if self._taps and (t - self._taps[-1] > TAP_RESET_S or t <= self._taps[-1]):
            self._taps.clear()
        self._taps.append(t)
        n = len(self._taps)
        if n < 2:
            if self._claim("tap"):
                g = self.grid
                frame = self.frame_at(t)
                self.grid = Grid(frame, float(round(self.beat_at(frame))), g.spb, g.beats_per_bar)
            return None
        mean_i = (n - 1) / 2.0
        mean_t = sum(self._taps) / n
        slope = sum((i - mean_i) * (x - mean_t) for i, x in enumerate(self._taps)) / sum(
            (i - mean_i) ** 2 for i in range(n))
        bpm = min(max(60.0 / slope, MIN_BPM), MAX_BPM)
        fitted_last = mean_t + (n - 1 - mean_i) * slope
        self.set_tempo(bpm, "tap", beat_frame=self.frame_at(fitted_last))
        return bpm

    def transport(self, event: str) -> None:
        """MIDI Start (beat 0, a downbeat, is now), Stop, Continue. Stop leaves the grid running so
        loops keep playing; it only ends MIDI's claim once its hold time passes."""
        if event == "start":
            if self._claim("midi"):
                g = self.grid
                self.grid = Grid(self.frame_at() + self.input_latency, 0.0, g.spb, g.beats_per_bar)
            self.running = True
        elif event == "continue":
            self._claim("midi")
            self.running = True
        elif event == "stop":
            self.running = False
        else:
            raise ValueError(f"unknown transport event {event!r}; known: start, stop, continue")

    def set_beats_per_bar(self, beats_per_bar: int) -> None:
        g = self.grid
        self.grid = Grid(g.anchor, g.beat, g.spb, int(beats_per_bar))

    def follow(self, bpm: float, beat: float, frame: float, beats_per_bar: int, source: str) -> bool:
        """Take tempo and phase from a source that knows the beat position `beat` at input `frame`
        (JACK BBT); replaces the grid outright, so the phase follows the master exactly, heard
        `input_latency` later."""
        if not self._claim(source):
            return False
        self.grid = Grid(frame + self.input_latency, beat, 60.0 * self.sample_rate / bpm, beats_per_bar)
        return True

    def _claim(self, source: str) -> bool:
        try:
            level = PRIORITY[source]
        except KeyError:
            raise ValueError(f"unknown tempo source {source!r}; known: {', '.join(PRIORITY)}") from None
        now = self._now()
        for higher in range(level):
            if now - self._spoke[higher] < HOLD_S[higher]:
                return False
        self._spoke[level] = now
        self.source = source
        return True

    def snapshot(self) -> dict[str, Any]:
        return {"bpm": round(self.bpm, 3), "source": self.source, "beats_per_bar": self.beats_per_bar,
                "running": self.running}


class JackTransport:
    """Hook that makes JACK transport a tempo source when a timebase master publishes BBT.

    The BBT position JACK reports is the position of the current cycle's first frame, so the grid is
    anchored at that cycle's frame on the audio path's timeline, which `pump` is given. It runs on the
    render thread once per cycle (jack_transport_query may be called from any thread); the lock keeps
    `detach` (the client is about to be closed) from pulling the client from under a query.
    """

    def __init__(self, clock: BeatClock) -> None:
        self.clock = clock
        self._client: jack.Client | None = None
        self._lock = threading.Lock()

    def register(self, client: jack.Client, rt: object = None) -> None:
        with self._lock:
            self._client = client

    def detach(self) -> None:
        with self._lock:
            self._client = None

    def pump(self, frame: int, frames: int) -> None:
        with self._lock:
            client = self._client
            if client is None:
                return
            state, pos = client.transport_query_struct()
        if state != jack.ROLLING or not pos.valid & jack.POSITION_BBT or pos.beats_per_minute <= 0:
            return
        bpm = min(max(pos.beats_per_minute, MIN_BPM), MAX_BPM)
        per_bar = pos.beats_per_bar
        beat = (pos.bar - 1) * per_bar + (pos.beat - 1) + pos.tick / pos.ticks_per_beat
        self.clock.follow(bpm, beat, frame, max(1, round(per_bar)), "jack")
