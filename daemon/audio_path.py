"""What the JACK process callback does with the audio, apart from JACK itself.

Per period of n frames starting at absolute frame t:
1. the input block goes into the input ring at index t (the worker separates it) and into the dry
   delay line; the mic, when there is one, into its own ring for the recogniser;
2. the stems of input frames [t - L, t - L + n) are taken from the stem ring — the worker writes stem
   frame p as the separation of input frame p, so this is exact alignment with the dry path;
3. the mixer turns them into the mix (and the per-stem outputs);
4. if the stems are not there, or fewer are queued than a whole crossfade (plus one period) needs
   should the worker stop now, the output fades to the delayed dry signal (at the mixer's dry level:
   master gain, silent when nothing is audible) and the period counts as an underrun. Because the stem ring still holds the stems already computed, a worker that stalls or
   dies leaves `margin` frames to fade out on — the fade never needs audio that does not exist.

Everything is allocated in `__init__`; `process` copies with numpy `out=`/slice assignment. Views for
a period size are made once when the size first appears (JACK changes it rarely, off the beat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stemd.daemon.delay import DelayLine
from stemd.daemon.mixer import Mixer
from stemd.daemon.ring import SpscRing


@dataclass
class PathStats:
    """Counters read by status (written on the RT thread only; plain ints/floats, no locks)."""

    periods: int = 0
    underruns: int = 0  # periods that left the separated path for lack of stems
    hard_switches: int = 0  # switches to dry with no separated audio left to fade on (would click)
    wet: bool = False  # the output is the separated mix right now
    min_margin: int = -1  # fewest frames queued beyond the period since the last `take_min_margin`


class _Views:
    """Slices of the preallocated buffers for one period size."""

    def __init__(self, path: "AudioPath", n: int) -> None:
        self.n = n
        self.inp = path._inp[:, :n]
        self.mic = path._mic[:, :n]
        self.dry = path._dry[:, :n]
        self.mix = path._mix[:, :n]
        self.diff = path._diff[:, :n]
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
        mic_ring: SpscRing | None = None,
        stem_outputs: bool = False,
        max_block: int = 8192,
    ) -> None:
        self.latency = latency
        self.crossfade = max(1, crossfade)
        self.in_ring = in_ring
        self.stem_ring = stem_ring
        self.mixer = mixer
        self.mic_ring = mic_ring
        self.stem_outputs = stem_outputs
        self.max_block = max_block
        self.stats = PathStats()
        self.frame = in_ring.written  # absolute index of the next input frame
        self._gain = 0.0  # separated share of the output, 0 = dry
        n_stems = len(mixer.stems) if mixer is not None else 0
        self._delay = DelayLine(2, latency, max_block)
        self._inp = np.zeros((2, max_block), np.float32)
        self._mic = np.zeros((1, max_block), np.float32)
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

    def process(self, in_l: np.ndarray, in_r: np.ndarray, mic: np.ndarray | None,
                out_l: np.ndarray, out_r: np.ndarray, stem_out: list[np.ndarray]) -> None:
        """One period; `stem_out` holds the <stem>_L, <stem>_R port buffers in stem order (or is empty)."""
        v = self.views(in_l.shape[0])
        n = v.n
        stats = self.stats
        v.inp[0] = in_l
        v.inp[1] = in_r
        self.in_ring.write(v.inp)
        if mic is not None:
            v.mic[0] = mic
            self.mic_ring.write(v.mic)
        self._delay.process(v.inp, v.dry)

        want = self.frame - self.latency
        self.frame += n
        stats.periods += 1
        ring = self.stem_ring
        if ring is None:  # dry mode: no engine configured
            out_l[:] = v.dry[0]
            out_r[:] = v.dry[1]
            return

        have = ring.read_at(want, v.stems_flat)
        margin = ring.written - want - n if have else -1
        if have and (margin < stats.min_margin or stats.min_margin < 0):
            stats.min_margin = margin
        if not have:
            v.stems.fill(0.0)
        self.mixer.process(v.stems, v.mix, v.heard if self.stem_outputs else None)
        self.mixer.scale_dry(v.dry)

        # Stay separated only while a whole fade-out fits in what is queued: the margin shrinks by at
        # most n per period, so a fade that starts below `crossfade + n` still has its audio.
        target = 1.0 if have and margin >= self.crossfade + n else 0.0
        if target == 0.0:
            stats.underruns += 1
            if not have and self._gain > 0.0:
                stats.hard_switches += 1
                self._gain = 0.0
        self._render(v, target, out_l, out_r, stem_out)

    def _render(self, v: _Views, target: float, out_l: np.ndarray, out_r: np.ndarray,
                stem_out: list[np.ndarray]) -> None:
        """out = dry + g·(mix − dry), g ramping from the current gain toward `target`."""
        g = self._gain
        self.stats.wet = target == 1.0
        if g == target:
            src = v.mix if g == 1.0 else v.dry
            out_l[:] = src[0]
            out_r[:] = src[1]
            for i, buf in enumerate(stem_out):
                if g == 1.0:
                    buf[:] = v.heard[i >> 1, i & 1]
                else:
                    buf.fill(0.0)
            return
        curve = v.curve
        np.multiply(v.steps, 1.0 if target > g else -1.0, out=curve)  # steps are k / crossfade
        curve += g
        np.clip(curve, 0.0, 1.0, out=curve)
        self._gain = float(curve[-1])
        np.subtract(v.mix, v.dry, out=v.diff)
        v.diff *= curve
        v.diff += v.dry
        out_l[:] = v.diff[0]
        out_r[:] = v.diff[1]
        for i, buf in enumerate(stem_out):
            np.multiply(v.heard[i >> 1, i & 1], curve, out=buf)

    def take_min_margin(self) -> int:
        """Smallest queued-ahead margin (frames) since the last call; -1 when no stems arrived."""
        margin, self.stats.min_margin = self.stats.min_margin, -1
        return margin
