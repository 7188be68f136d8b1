"""MIDI clock in: 24 ticks per quarter note → tempo; start / stop / continue → transport events.

Tick times jitter by up to a JACK period (5 ms at 256 frames, a quarter of a tick at 120 BPM), so
the tempo is the slope of a least-squares line through the last `window` tick times rather than any
single interval; over four beats that puts the estimate within a few hundredths of a BPM of the
sender's. When the mean tick period of the window's newer half leaves the older half's by more than
`change` (2 %, several times what jitter does to means over a beat or more) the sender changed tempo,
and the older half is dropped instead of blending the old tempo in for four beats. A new tempo is reported at most once per
beat and only when it moved by `resolution`, so a steady clock costs the session nothing. A pause
longer than `gap_s` (a stopped sender) also starts the estimate afresh.

A lost tick (a late client on a loaded JACK graph, a dropped byte on a USB or network link) must not
bend the tempo: fitted by arrival count, one lost tick in four beats read 127.3 BPM as 123.6, two
as 120.0. So each tick carries the index of the pulse it is, not of the tick it arrived as: an
interval within `skip_tolerance` of k whole periods (k = 2 … MAX_SKIP) of the current estimate
advances the index by k; before the first fit, the median interval is the period. A sender that
really halved its tempo sends nothing but such intervals, so NEW_TEMPO_SKIPS of them in a row are
taken as a new tempo and the estimate starts afresh from the newest interval.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Callable

from stemd.control.commands import MAX_BPM, MIN_BPM

PPQN = 24
MAX_SKIP = 4  # the most pulses one interval may stand for; longer is a new tempo (or a gap)
NEW_TEMPO_SKIPS = 3  # skipping intervals in a row that mean the sender slowed down, not lost ticks


class MidiClock:
    def __init__(
        self,
        on_tempo: Callable[[float], None],
        on_transport: Callable[[str], None],
        window: int = 4 * PPQN,
        resolution: float = 0.05,
        gap_s: float = 0.5,
        change: float = 0.02,
        skip_tolerance: float = 0.3,
    ) -> None:
        self._on_tempo = on_tempo
        self._on_transport = on_transport
        self._pulses: deque[tuple[int, float]] = deque(maxlen=window)  # (pulse index, arrival time)
        self._resolution = resolution
        self._gap_s = gap_s
        self._change = change
        self._skip_tolerance = skip_tolerance
        self._tick_s: float | None = None  # the latest fitted tick period: what a skip is judged by
        self._skips = 0  # intervals in a row that stood for several pulses
        self._since_report = 0
        self.bpm: float | None = None  # last reported tempo
        self.running = False
        self.lost = 0  # pulses counted in for ticks that never arrived

    def tick(self, time: float) -> None:
        pulses = self._pulses
        if pulses and not 0.0 < time - pulses[-1][1] <= self._gap_s:
            self._restart()
        step = self._pulses_since_last(time) if pulses else 1
        self._skips = self._skips + 1 if step > 1 else 0
        if self._skips >= NEW_TEMPO_SKIPS:
            last = pulses[-1][1]
            self._restart()
            pulses.append((0, last))
            step = 1
        self.lost += step - 1
        pulses.append((pulses[-1][0] + step if pulses else 0, time))
        self._since_report += 1
        if len(pulses) <= PPQN or self._since_report < PPQN:
            return
        self._since_report = 0
        self._restart_on_tempo_change()
        period = self._period()
        bpm = _tempo(period)
        if bpm is None:
            return
        self._tick_s = period
        if self.bpm is None or abs(bpm - self.bpm) >= self._resolution:
            self.bpm = bpm
            self._on_tempo(bpm)

    def _pulses_since_last(self, time: float) -> int:
        """How many pulses the interval since the last tick stands for: k when it lies within the
        tolerance of k fitted periods (k ≤ MAX_SKIP), else 1 (jitter, or a tempo change that the
        half-window test below catches)."""
        reference = self._tick_s if self._tick_s is not None else self._median_tick_s()
        if reference is None:
            return 1
        ratio = (time - self._pulses[-1][1]) / reference
        k = round(ratio)
        return k if 2 <= k <= MAX_SKIP and abs(ratio - k) <= self._skip_tolerance else 1

    def _median_tick_s(self) -> float | None:
        """The median period per pulse of the intervals so far (at least two of them): what a
        skip is judged by until the first fit."""
        pulses = list(self._pulses)
        if len(pulses) < 3:
            return None
        return statistics.median((t1 - t0) / (i1 - i0) for (i0, t0), (i1, t1) in zip(pulses, pulses[1:]))

    def _restart(self) -> None:
        self._pulses.clear()
        self._tick_s = None
        self._skips = 0

    def _restart_on_tempo_change(self) -> None:
        """Keep only the newer half of the window when its mean tick period differs from the older
        half's by more than `change`: the sender changed tempo somewhere in the older half."""
        pulses = self._pulses
        n = len(pulses)
        if n < 2 * PPQN + 1:
            return
        (i0, t0), (im, tm), (i1, t1) = pulses[0], pulses[n // 2], pulses[-1]
        older, newer = (tm - t0) / (im - i0), (t1 - tm) / (i1 - im)
        if abs(newer / older - 1.0) > self._change:
            for _ in range(n // 2):
                pulses.popleft()
            self._tick_s = None

    def _period(self) -> float:
        """Least-squares slope of tick time over pulse index."""
        pulses = self._pulses
        n = len(pulses)
        mean_i = sum(i for i, _ in pulses) / n
        mean_t = sum(t for _, t in pulses) / n
        num = sum((i - mean_i) * (t - mean_t) for i, t in pulses)
        den = sum((i - mean_i) ** 2 for i, _ in pulses)
        return num / den

    def transport(self, event: str) -> None:
        """'start' (from the top), 'continue' (from where it stopped) or 'stop'."""
        self.running = event != "stop"
        self._on_transport(event)


def _tempo(period: float) -> float | None:
    """BPM for a tick period, rounded to 0.01; None for a period no sender's tempo has."""
    if period <= 0:
        return None
    bpm = round(60.0 / (PPQN * period), 2)
    return bpm if MIN_BPM <= bpm <= MAX_BPM else None
