"""Beat-quantized loops of the stems, inside the RT process callback.

`loop` captures the last N beats of a stem as heard before gain (the live stem; a stem already looping
is re-captured from its live input) and repeats them from the next beat boundary until `unloop`, which
also waits for a beat boundary. Each stem has one loop slot, so several stems loop at once; a drums
loop can instead take one drum part (`engines/drum_parts.py`): the live part is replaced by its loop
and the rest of the drums stays live.

Sample-accurate: a block is split at the boundary frame, so the loop starts on the exact beat sample,
not on the next block edge. A loop of N beats is `round(N * samples_per_beat)` samples long, and its
seam is crossfaded inside the loop buffer at capture time: the buffer holds X extra samples from just
before the loop's first sample, and its last X samples fade from the loop's own tail into them, so the
wrap lands on audio that really follows. Entering and leaving a loop crossfade with the live stem over
the same X (default 10 ms, raised cosine), so nothing clicks.

Everything is allocated in `__init__`: a history ring per track (each stem, plus the drum parts when
there is a drums stem), a loop buffer per stem, and block scratch. The capture is one copy of at most
`max_loop_s` from the ring, done in the cycle the loop starts.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from stemd.daemon.transport import BeatClock
from stemd.engines.drum_parts import PARTS, DrumSplitter

IDLE, PLAYING = 0, 1


class LoopEngine:
    def __init__(self, stems: Sequence[str], sample_rate: int, max_block: int, clock: BeatClock,
                 max_loop_s: float = 16.0, crossfade_ms: float = 10.0, drum_parts: bool = True) -> None:
        self.stems = tuple(stems)
        self.sample_rate = sample_rate
        self.max_block = max_block
        self.clock = clock
        self.xfade = x = max(2, round(crossfade_ms * sample_rate / 1000.0))
        self.max_loop = max(2 * x, round(max_loop_s * sample_rate))
        self.drums = self.stems.index("drums") if drum_parts and "drums" in self.stems else -1
        self.splitter = DrumSplitter(sample_rate, max_block) if self.drums >= 0 else None
        self.tracks = self.stems + (tuple(f"drums.{p}" for p in PARTS) if self.splitter else ())

        n = len(self.stems)
        self.history_len = self.max_loop + x + max_block
        self.history = np.zeros((len(self.tracks), 2, self.history_len), np.float32)
        self.written = 0  # frames written to every history ring so far
        self._clock_at = (0, 0)  # (written, timeline frame) after the last block
        self._buffers = np.zeros((n, 2, self.max_loop + x), np.float32)
        self._heard = np.empty((n, 2, max_block), np.float32)
        self._tail = np.zeros((n, 2, x), np.float32)
        self._tail_left = np.zeros(n, np.int64)  # samples of the old-to-new loop crossfade still to go
        self._tail_part = np.full(n, -1, np.int8)
        self._w = np.empty(max_block, np.float32)
        self._w_live = np.empty(max_block, np.float32)
        self._live = np.empty((2, max_block), np.float32)
        self._seam = np.empty((2, x), np.float32)
        self._parts = np.zeros((len(PARTS), 2, max_block), np.float32)
        self._ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(x + 1) / x)).astype(np.float32)  # 0 .. 1

        self.state = np.zeros(n, np.int8)
        self.beats = np.zeros(n)
        self.part = np.full(n, -1, np.int8)  # drum part index, -1 = the whole stem
        self._next_part = np.full(n, -1, np.int8)  # the part of the loop waiting to start
        self.start = np.full(n, -1, np.int64)  # frame a requested loop starts at, -1 = none
        self.stop = np.full(n, -1, np.int64)  # frame a playing loop releases at, -1 = not asked
        self.length = np.zeros(n, np.int64)
        self._play = np.zeros(n, np.int64)  # read position in the loop
        self._mix = np.zeros(n, np.int64)  # crossfade position 0 (live) .. X (loop)
        self._dir = np.zeros(n, np.int8)  # +1 fading into the loop, -1 back to live

    # ---- commands (applied on the RT thread at a block edge) --------------------------------------

    def arm(self, s: int, beats: float, part: str | None, frame: int) -> None:
        """Loop `beats` beats of stem s (or one of its drum parts) from the next beat at/after frame.
        A stem that already loops keeps its loop until then and crossfades into the new one."""
        self.beats[s] = beats
        self._next_part[s] = PARTS.index(part) if part is not None and self.splitter is not None else -1
        self.start[s] = self.clock.next_boundary(frame)
        self.stop[s] = -1

    def release(self, s: int, frame: int) -> None:
        """Back to live at the next beat; a loop that has not started yet is just dropped."""
        self.start[s] = -1
        if self.state[s] == PLAYING:
            self.stop[s] = self.clock.next_boundary(frame)

    def release_now(self, frame: int) -> None:
        """Every loop fades back to live from this block (reset)."""
        self.start[:] = -1
        for s in range(len(self.stems)):
            if self.state[s] == PLAYING:
                self.stop[s] = frame

    # ---- per block ---------------------------------------------------------------------------------

    def record(self, stems: np.ndarray, frame: int, n: int) -> None:
        """Write this block of every stem (and the drum parts) to the history rings; call first."""
        if self.splitter is not None:
            self.splitter.process(stems[self.drums], self._parts)
        pos = self.written % self.history_len
        first = min(n, self.history_len - pos)
        hist = self.history
        n_stems = len(self.stems)
        hist[:n_stems, :, pos:pos + first] = stems[:, :, :first]
        if self.splitter is not None:
            hist[n_stems:, :, pos:pos + first] = self._parts[:, :, :first]
        if first < n:
            hist[:n_stems, :, :n - first] = stems[:, :, first:n]
            if self.splitter is not None:
                hist[n_stems:, :, :n - first] = self._parts[:, :, first:n]
        self.written += n
        self._clock_at = (self.written, frame + n)

    def render(self, s: int, src: np.ndarray, frame: int) -> np.ndarray:
        """Stem s as heard before gain for the block starting at `frame`: `src` itself when it is not
        looping, else a buffer of this engine's, valid until the next block."""
        n = src.shape[1]
        start = int(self.start[s] - frame) if self.start[s] >= 0 else n
        if self.state[s] == IDLE and start >= n:
            return src
        playing = self.state[s] == PLAYING
        begin = max(start, 0) if start < n else n
        stop = max(int(self.stop[s] - frame), 0) if self.stop[s] >= 0 else n
        heard, w = self._heard[s, :, :n], self._w[:n]
        old_part = int(self.part[s])
        if begin > 0:  # what plays before the new loop (or all block): the old loop or live
            if playing:
                self._read(s, heard[:, :begin])
            else:
                heard[:, :begin] = 0.0
            cut = min(stop, begin)
            self._fill_weights(s, w[:cut])
            if cut < begin:
                self._dir[s] = -1
                self.stop[s] = -1
                self._fill_weights(s, w[cut:begin])
        if begin < n:
            if playing:  # re-loop: keep X samples of the old loop to crossfade into the new one
                self._read(s, self._tail[s])
                self._tail_left[s] = self.xfade
                self._tail_part[s] = old_part
            self._capture(s, frame + begin, frame + n)
            self._read(s, heard[:, begin:])
            self.start[s] = -1
            self.state[s] = PLAYING
            self._dir[s] = 1
            self._fill_weights(s, w[begin:])
        self._blend(heard, src, w, old_part, 0, begin)
        self._blend(heard, src, w, int(self.part[s]), begin, n)
        if self._tail_left[s] > 0:
            self._blend_tail(s, heard, src, begin if begin < n else 0)
        if self._dir[s] < 0 and self._mix[s] == 0:
            self.state[s] = IDLE
        return heard

    def _blend(self, heard: np.ndarray, src: np.ndarray, w: np.ndarray, part: int, lo: int, hi: int) -> None:
        """heard[:, lo:hi] holds loop content; make it what is heard at crossfade weights w."""
        if lo >= hi:
            return
        h, live_src, ww = heard[:, lo:hi], src[:, lo:hi], w[lo:hi]
        if part >= 0:  # live drums with the live part swapped for the looped one, as far as w goes
            h -= self._parts[part, :, lo:hi]
            h *= ww
            h += live_src
        elif ww[0] != 1.0 or ww[-1] != 1.0:  # loop*w + live*(1-w): exact at w = 0 and at w = 1
            live, rest = self._live[:, lo:hi], self._w_live[lo:hi]
            h *= ww
            np.subtract(1.0, ww, out=rest)
            np.multiply(live_src, rest, out=live)
            h += live

    def _blend_tail(self, s: int, heard: np.ndarray, src: np.ndarray, at: int) -> None:
        """Crossfade from what the old loop would have played (whole stem or part swap) into the new."""
        left, x = int(self._tail_left[s]), self.xfade
        k = min(heard.shape[1] - at, left)
        off = x - left
        old = self._live[:, :k]
        np.copyto(old, self._tail[s, :, off:off + k])
        part = int(self._tail_part[s])
        if part >= 0:
            old += src[:, at:at + k]
            old -= self._parts[part, :, at:at + k]
        h = heard[:, at:at + k]
        h -= old
        h *= self._ramp[off + 1:off + 1 + k]
        h += old
        self._tail_left[s] = left - k

    def _fill_weights(self, s: int, w: np.ndarray) -> None:
        """Crossfade weights (0 live .. 1 loop) for the next len(w) samples, advancing the fade."""
        m, pos, ramp, x = w.shape[0], int(self._mix[s]), self._ramp, self.xfade
        if self._dir[s] > 0:
            k = min(m, x - pos)
            w[:k] = ramp[pos + 1:pos + 1 + k]
            w[k:] = 1.0
            self._mix[s] = pos + k
        else:
            k = min(m, pos)
            w[:k] = ramp[pos - k:pos][::-1]
            w[k:] = 0.0
            self._mix[s] = pos - k

    def _capture(self, s: int, boundary: int, block_end: int) -> None:
        """Copy the L + X frames before `boundary` from history and crossfade the seam in place."""
        x = self.xfade
        length = int(min(max(round(self.beats[s] * self.clock.samples_per_beat), 2 * x), self.max_loop))
        self.length[s] = length
        self._play[s] = 0
        self.part[s] = self._next_part[s]
        track = s if self.part[s] < 0 else len(self.stems) + int(self.part[s])
        first = self.written - (block_end - boundary) - length - x  # history index of the first frame
        buf = self._buffers[s]
        got = 0
        while got < length + x:
            pos = (first + got) % self.history_len
            take = min(length + x - got, self.history_len - pos)
            buf[:, got:got + take] = self.history[track, :, pos:pos + take]
            got += take
        seam = self._seam
        np.subtract(buf[:, :x], buf[:, length:length + x], out=seam)
        seam *= self._ramp[1:]
        buf[:, length:length + x] += seam

    def _read(self, s: int, dst: np.ndarray) -> None:
        """Next dst.shape[1] frames of the loop (buffer[X : X + L], wrapping)."""
        length, x, pos = int(self.length[s]), self.xfade, int(self._play[s])
        buf = self._buffers[s]
        got, m = 0, dst.shape[1]
        while got < m:
            take = min(m - got, length - pos)
            dst[:, got:got + take] = buf[:, x + pos:x + pos + take]
            got += take
            pos = (pos + take) % length
        self._play[s] = pos

    # ---- non-real-time readers --------------------------------------------------------------------

    def recent(self, track: str, frames: int) -> tuple[np.ndarray, int]:
        """A copy of the last `frames` frames of a track's history (for the tempo estimate thread), and
        the history position just after it. The RT side may be writing the newest block meanwhile, so
        the copy ends one block short of the write head."""
        frames = min(frames, self.history_len - 2 * self.max_block)
        end = self.written - self.max_block
        index = np.arange(end - frames, end) % self.history_len
        return self.history[self.tracks.index(track)][:, index], end

    def frame_of(self, written: float) -> float:
        """Timeline frame of a history position (counted in frames written)."""
        at, frame = self._clock_at
        return frame - (at - written)

    def snapshot(self) -> dict[str, Any]:
        """Per looping (or armed) stem: beats, part, state (armed / playing / releasing)."""
        out = {}
        for s, name in enumerate(self.stems):
            if self.start[s] >= 0:
                state, part = "armed", self._next_part[s]
            elif self.state[s] == PLAYING:
                state, part = ("releasing" if self.stop[s] >= 0 or self._dir[s] < 0 else "playing"), self.part[s]
            else:
                continue
            out[name] = {"beats": float(self.beats[s]), "part": PARTS[part] if part >= 0 else None,
                         "state": state}
        return out
