"""The output of the mixer for one block, rendered ahead of the JACK callback that plays it.

The compiled process callback (rt_callback.c) writes every input period into the input ring; the
render thread (render_ahead.py) calls `render(t, n)` for output frames [t, t + n) a few periods before
the callback plays them, which needs no extra latency because output t depends only on input ≤ t - L:
1. the dry signal is input frames [t - L, t - L + n), read from the input ring;
2. the stems of the same input frames are taken from the stem ring — the worker writes stem frame p
   as the separation of input frame p, so this is exact alignment with the dry path;
3. the mixer turns them into the mix (and the per-stem outputs);
4. if the stems are not there, or fewer are queued than a whole crossfade (plus one period) needs
   should the worker stop now, the output fades to the dry signal (at the mixer's dry level: master
   gain, silent when nothing is audible) and the block counts as an underrun. Because the stem ring
   still holds the stems already computed, a worker that stalls or dies leaves `margin` frames to
   fade out on — the fade never needs audio that does not exist.
The block (out_L, out_R, then <stem>_L, <stem>_R for the stem ports) goes into the output ring at t.

Everything is allocated in `__init__`; `render` copies with numpy `out=`/slice assignment. Views for
a period size are made once when the size first appears (JACK changes it rarely, off the beat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stemd.daemon.mixer import Mixer
from stemd.daemon.ring import SpscRing


@dataclass
class PathStats:
    """Counters read by status (written on the RT thread only; plain ints/floats, no locks)."""

    periods: int = 0  # blocks rendered
    underruns: int = 0  # blocks that left the separated path for lack of stems
    hard_switches: int = 0  # switches to dry with no separated audio left to fade on (would click)
    wet: bool = False  # the output is the separated mix right now
    min_margin: int = -1  # fewest frames queued beyond the period since the last `take_min_margin`


class _Views:
    """Slices of the preallocated buffers for one period size."""

    def __init__(self, path: "AudioPath", n: int) -> None:
        self.n = n
        self.dry = path._dry[:, :n]
        self.mix = path._mix[:, :n]
        self.diff = path._diff[:, :n]
        self.out = path._out[:, :n]
        self.stems = path._stems[:, :, :n]
        self.stems_flat = path._stems.reshape(-1, path.max_block)[:, :n]
        self.heard = path._heard[:, :, :n]
        self.curve = path._curve[:n]
        self.steps = path._steps[:n]


class AudioPath:
    def __init__(
        self,
        latency: int,
        crossfade: int,
        in_ring: SpscRing,
        stem_ring: SpscRing | None,
        mixer: Mixer | None,
        stem_outputs: bool = False,
        max_block: int = 8192,
    ) -> None:
        self.latency = latency
        self.crossfade = max(1, crossfade)
        self.in_ring = in_ring
        self.stem_ring = stem_ring
        self.mixer = mixer
        self.stem_outputs = stem_outputs
        self.max_block = max_block
        self.stats = PathStats()
        self._gain = 0.0  # separated share of the output, 0 = dry
        n_stems = len(mixer.stems) if mixer is not None else 0
        self.channels = 2 + (2 * n_stems if stem_outputs else 0)  # of the output ring
        self._out = np.zeros((self.channels, max_block), np.float32)
        self._dry = np.zeros((2, max_block), np.float32)
        self._mix = np.zeros((2, max_block), np.float32)
        self._diff = np.zeros((2, max_block), np.float32)
        self._stems = np.zeros((n_stems, 2, max_block), np.float32)
        self._heard = np.zeros((n_stems, 2, max_block), np.float32)
        self._curve = np.zeros(max_block, np.float32)
        self._steps = np.arange(1, max_block + 1, dtype=np.float32) / self.crossfade
        self._views = _Views(self, 0)

    def views(self, n: int) -> _Views:
        """The buffers sliced to `n` frames (made on the first period of a new size)."""
        if self._views.n != n:
            if n > self.max_block:
                raise ValueError(f"JACK period {n} exceeds the {self.max_block}-frame buffers")
            self._views = _Views(self, n)
        return self._views

    def render(self, t: int, n: int, out_ring: SpscRing, played: tuple[float, int, int]) -> None:
        """Output frames [t, t + n) into `out_ring` (which must be at t). `played` is the cycle the
        callback is playing now (monotonic start, first frame, frames): the beat clock's tie between
        wall-clock time and the timeline is the heard one, not this block's, which plays later."""
        v = self.views(n)
        stats = self.stats
        want = t - self.latency
        if not self.in_ring.copy_at(want, v.dry):
            v.dry.fill(0.0)  # before the first input (start-up): what the delay line held
        stats.periods += 1
        ring = self.stem_ring
        have = ring.read_at(want, v.stems_flat)
        margin = ring.written - want - n if have else -1
        if have and (margin < stats.min_margin or stats.min_margin < 0):
            stats.min_margin = margin
        if not have:
            v.stems.fill(0.0)
        self.mixer.process(v.stems, v.mix, v.heard if self.stem_outputs else None, frame_time=t, played=played)
        self.mixer.scale_dry(v.dry)

        # Stay separated only while a whole fade-out fits in what is queued: the margin shrinks by at
        # most n per period, so a fade that starts below `crossfade + n` still has its audio.
        target = 1.0 if have and margin >= self.crossfade + n else 0.0
        if target == 0.0:
            stats.underruns += 1
            if not have and self._gain > 0.0:
                stats.hard_switches += 1
                self._gain = 0.0
        self._render(v, target)
        out_ring.write(v.out)

    def _render(self, v: _Views, target: float) -> None:
        """out = dry + g·(mix − dry), g ramping from the current gain toward `target`."""
        g = self._gain
        self.stats.wet = target == 1.0
        stem_out = v.out[2:]
        if g == target:
            v.out[:2] = v.mix if g == 1.0 else v.dry
            for i in range(stem_out.shape[0]):
                if g == 1.0:
                    stem_out[i] = v.heard[i >> 1, i & 1]
                else:
                    stem_out[i].fill(0.0)
            return
        curve = v.curve
        np.multiply(v.steps, 1.0 if target > g else -1.0, out=curve)  # steps are k / crossfade
        curve += g
        np.clip(curve, 0.0, 1.0, out=curve)
        self._gain = float(curve[-1])
        np.subtract(v.mix, v.dry, out=v.diff)
        v.diff *= curve
        v.diff += v.dry
        v.out[:2] = v.diff
        for i in range(stem_out.shape[0]):
            np.multiply(v.heard[i >> 1, i & 1], curve, out=stem_out[i])

    def take_min_margin(self) -> int:
        """Smallest queued-ahead margin (frames) since the last call; -1 when no stems arrived."""
        margin, self.stats.min_margin = self.stats.min_margin, -1
        return margin
