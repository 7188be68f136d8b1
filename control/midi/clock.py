"""MIDI clock in: 24 ticks per quarter note → tempo; start / stop / continue → transport events.

Tick times jitter by up to a JACK period (5 ms at 256 frames, a quarter of a tick at 120 BPM), so
the tempo is the slope of a least-squares line through the last `window` tick times rather than any
single interval; over four beats that puts the estimate within a few hundredths of a BPM of the
sender's. When the mean tick period of the window's newer half leaves the older half's by more than
`change` (2 %, several times what jitter does to means over a beat or more) the sender changed tempo,
and the older half is dropped instead of blending the old tempo in for four beats. A new tempo is reported at most once per
beat and only when it moved by `resolution`, so a steady clock costs the session nothing. A pause
longer than `gap_s` (a stopped sender) also starts the estimate afresh.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from stemd.control.commands import MAX_BPM, MIN_BPM

PPQN = 24


class MidiClock:
    def __init__(
        self,
        on_tempo: Callable[[float], None],
        on_transport: Callable[[str], None],
        window: int = 4 * PPQN,
        resolution: float = 0.05,
        gap_s: float = 0.5,
        change: float = 0.02,
    ) -> None:
        self._on_tempo = on_tempo
        self._on_transport = on_transport
        self._times: deque[float] = deque(maxlen=window)
        self._resolution = resolution
        self._gap_s = gap_s
        self._change = change
        self._since_report = 0
        self.bpm: float | None = None  # last reported tempo
        self.running = False

    def tick(self, time: float) -> None:
        times = self._times
        if times and not 0.0 < time - times[-1] <= self._gap_s:
            times.clear()
        times.append(time)
        self._since_report += 1
        if len(times) <= PPQN or self._since_report < PPQN:
            return
        self._since_report = 0
        self._restart_on_tempo_change()
        bpm = self.estimate()
        if bpm is not None and (self.bpm is None or abs(bpm - self.bpm) >= self._resolution):
            self.bpm = bpm
            self._on_tempo(bpm)

    def _restart_on_tempo_change(self) -> None:
        """Keep only the newer half of the window when its mean tick period differs from the older
        half's by more than `change`: the sender changed tempo somewhere in the older half."""
        times = self._times
        n = len(times)
        if n < 2 * PPQN + 1:
            return
        mid = n // 2
        older = (times[mid] - times[0]) / mid
        newer = (times[-1] - times[mid]) / (n - 1 - mid)
        if abs(newer / older - 1.0) > self._change:
            for _ in range(mid):
                times.popleft()

    def _period(self) -> float:
        """Least-squares slope of tick time over tick index."""
        times = self._times
        n = len(times)
        mean_i = (n - 1) / 2.0
        mean_t = sum(times) / n
        num = sum((i - mean_i) * (t - mean_t) for i, t in enumerate(times))
        return num / (n * (n * n - 1) / 12.0)  # denominator: sum of (i - mean_i)^2

    def estimate(self) -> float | None:
        """Tempo from the least-squares tick period, rounded to 0.01 BPM; None outside 20-400 BPM."""
        if len(self._times) < 2:
            return None
        period = self._period()
        if period <= 0:
            return None
        bpm = round(60.0 / (PPQN * period), 2)
        return bpm if MIN_BPM <= bpm <= MAX_BPM else None

    def transport(self, event: str) -> None:
        """'start' (from the top), 'continue' (from where it stopped) or 'stop'."""
        self.running = event != "stop"
        self._on_transport(event)
