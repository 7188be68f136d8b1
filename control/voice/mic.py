"""Mic audio for the recogniser: taken from the daemon's mic ring (its first channel) and resampled
to 16 kHz here, on the listener thread, so the JACK process callback only ever copies the port
buffer into the ring.

The reader is the ring's single consumer. It starts at the present (audio from before the listener
started is nobody's command) and, if it ever falls a whole ring behind, skips to the oldest frames
still there and counts what it lost rather than reading torn audio.
"""

from __future__ import annotations

import numpy as np
import soxr

from stemd.control.voice.recognizer import RATE
from stemd.daemon.ring import SpscRing

CHUNK = 4096  # frames per read; bounds the copy, not the latency (everything available is read)


class MicReader:
    def __init__(self, ring: SpscRing, rate: int) -> None:
        self.ring = ring
        self.rate = rate
        self.dropped = 0  # frames lost because the reader fell a whole ring behind
        self._position = ring.written
        self._buf = np.empty((1, CHUNK), dtype=np.float32)
        self._resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality="HQ")

    def read(self) -> list[np.ndarray]:
        """Everything the mic produced since the last call, as 16 kHz mono blocks (maybe none)."""
        ring, blocks = self.ring, []
        written = ring.written
        oldest = max(ring.valid_from, written - ring.capacity)
        if self._position < oldest:
            self._skip(oldest)
        while self._position < written:
            frames = self._buf[:, : min(CHUNK, written - self._position)]
            if not ring.read_at(self._position, frames):  # the producer lapped us while we copied
                self._skip(ring.written - ring.capacity // 2)
                break
            self._position += frames.shape[1]
            out = self._resampler.resample_chunk(frames[0])
            if out.size:
                blocks.append(out)
        return blocks

    def flush(self) -> np.ndarray:
        """The resampler's tail, for the end of an utterance; the next read starts a fresh stream."""
        tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._resampler.clear()
        return tail

    def discard(self) -> None:
        """Drop what is waiting (nobody is listening) without resampling it."""
        self._position = self.ring.written
        self._resampler.clear()

    def _skip(self, to: int) -> None:
        self.dropped += max(0, to - self._position)
        self._position = to
        self._resampler.clear()
