"""The render thread: the mixer's output for each block, a few periods before JACK plays it.

The compiled callback (rt_callback.c) plays block t from the output ring when it is there, and the
delayed dry signal otherwise. This thread keeps the ring `lead` frames ahead of the cycle being
played: output t depends only on input ≤ t - L, so with `lead` ≤ L rendering early adds no latency;
what it costs is that a command the mixer applies now is heard `lead` frames later than before
(about 20 ms; docs/decisions/daemon.md). If this thread stalls (a GC pass, the GIL), the callback
crossfades to dry over the blocks still queued, and back once the ring is ahead again — a stall is
heard as a short dry patch, never as an xrun, a click or silence.

Once per JACK cycle it also runs the hooks' non-real-time halves (`pump`): JACK transport is queried
here (libjack allows that from any thread) and JACK MIDI events are moved between the callback's
slot rings and the MIDI controller's.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol, Sequence

from stemd.daemon import latency_budget
from stemd.daemon.audio_path import AudioPath
from stemd.daemon.ring import SpscRing
from stemd.daemon.rt_callback import RtCallback

log = logging.getLogger(__name__)

POLL_S = 0.0005  # after a cycle's expected start, how long it waits before looking again
IDLE_S = 0.01  # how often it looks while JACK runs no cycles


class Pump(Protocol):
    def pump(self, frame: int, frames: int) -> None:
        """Non-RT work once per JACK cycle; `frame` is the cycle's first frame on the audio path's
        timeline (the one the mixer's beat clock uses)."""


class RenderAhead:
    """Renders `path` into `out_ring` ahead of `rt`'s cycles on a normal-priority thread; without an
    output ring (dry mode: no mixer) it only pumps the hooks."""

    def __init__(self, rt: RtCallback, path: AudioPath, out_ring: SpscRing | None, rate: int,
                 pumps: Sequence[Pump] = ()) -> None:
        self.rt = rt
        self.path = path
        self.out_ring = out_ring
        self.rate = rate
        self.pumps = pumps  # the caller's list: hooks added later are pumped too
        self.skips = 0  # times it fell behind the callback and jumped to the present
        self.errors = 0  # steps that raised (logged; the callback played dry meanwhile)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stemd-render", daemon=True)
        self._wet = False  # the last rendered block was separated

    def start(self) -> "RenderAhead":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    @property
    def wet(self) -> bool:
        """The performer hears separated audio: the renderer's blocks are, and the callback plays them."""
        return self._wet and self.rt.on_rendered

    def _run(self) -> None:
        seen = -1
        while not self._stop.is_set():
            try:
                seen = self._step(seen)
            except Exception:  # the callback plays dry meanwhile; a bug here must not end rendering
                self.errors += 1
                log.exception("render thread step failed")
                self._stop.wait(0.1)
            time.sleep(self._until_next_cycle())

    def _until_next_cycle(self) -> float:
        """Sleep until just after the next cycle should have started: one wake-up per period, not a
        busy poll that would take CPU from the worker. A cycle overdue by more than a period means
        JACK is not running cycles (no server yet, an outage): then look only every `IDLE_S`."""
        _, n, at = self.rt.cycle()
        if n == 0:
            return IDLE_S
        due = at + n / self.rate + POLL_S - time.monotonic()
        return max(POLL_S, due) if due > -n / self.rate else IDLE_S

    def _step(self, seen: int) -> int:
        frame, n, at = self.rt.cycle()
        if n == 0 or frame == seen:
            return seen
        for pump in self.pumps:
            pump.pump(frame, n)
        ring = self.out_ring
        if ring is None:
            return frame
        start = frame + n  # the first frame the callback has not played yet
        if ring.written < start:  # behind (a stall, or the first cycle): go on from the present
            if ring.written:
                self.skips += 1
            ring.seek(start)
        last = frame + latency_budget.render_lead(self.rate, n, self.path.latency)
        played = (at, frame, n)
        while ring.written <= last:
            self.path.render(ring.written, n, ring, played)
            self._wet = self.path.stats.wet
            self.rt.set_dry_gain(self.path.mixer.dry_level)
        return frame
