"""Single-producer/single-consumer ring of float32 frames in shared memory, indexed by absolute frame.

The JACK process callback and the engine worker live in different processes, so they share audio
through `multiprocessing.shared_memory` and never take a lock. Positions are absolute frame indices
(the JACK callback's running frame count), not offsets modulo the capacity: the consumer asks for
"frames [p, p+n)" and gets them only if they are really there. That makes alignment exact by
construction — the stem ring's frame p is the separation of the input ring's frame p — and it lets a
restarted worker start writing at the present without anyone flushing anything.

The producer never waits: it overwrites the oldest frames. The consumer checks after copying that
the producer did not lap it during the copy (the seqlock idea: validate after read), so a slow
consumer gets a clean "gone" instead of torn audio. Each side writes only its own counter; the
producer stores samples before it publishes the counter that covers them. On x86-64 (TSO) plain
8-byte aligned stores and loads give exactly that ordering; weakly ordered CPUs would need fences
that Python cannot express, so the daemon is x86-64 only (see docs/decisions/).
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

_WRITTEN, _VALID_FROM, _READ = 0, 1, 2  # uint64 header slots
_HEADER_BYTES = 64  # one cache line, keeps the sample area 64-byte aligned


@dataclass(frozen=True)
class RingSpec:
    """What another process needs to attach to a ring (picklable)."""

    name: str
    channels: int
    capacity: int


def put_wrapped(buf: np.ndarray, at: int, block: np.ndarray) -> None:
    """Copy `block[c, n]` into the first c channels of circular `buf[C, size]` from slot `at`."""
    (c, n), size = block.shape, buf.shape[1]
    first = min(n, size - at)
    buf[:c, at:at + first] = block[:, :first]
    if first < n:
        buf[:c, :n - first] = block[:, first:]


def get_wrapped(buf: np.ndarray, at: int, out: np.ndarray) -> None:
    """Copy the first c channels of circular `buf` from slot `at` into `out[c, n]`."""
    (c, n), size = out.shape, buf.shape[1]
    first = min(n, size - at)
    out[:, :first] = buf[:c, at:at + first]
    if first < n:
        out[:, first:] = buf[:c, :n - first]


class SpscRing:
    """`channels` float32 channels of `capacity` frames; see the module docstring for the protocol.

    Producer side: `write`, `seek`. Consumer side: `read_at` (`copy_at` for a second reader). Any side: `written`,
    `valid_from`, `read`. `write`, `read_at` and the counters allocate no sample buffers, so the
    JACK thread can use them.
    """

    def __init__(self, spec: RingSpec, create: bool = False) -> None:
        size = _HEADER_BYTES + spec.channels * spec.capacity * 4
        self.spec = spec
        self.channels = spec.channels
        self.capacity = spec.capacity
        self._shm = shared_memory.SharedMemory(spec.name if not create else None, create=create, size=size)
        if create:
            self.spec = RingSpec(self._shm.name, spec.channels, spec.capacity)
        self._owner = create
        self._counters = self._shm.buf[:24].cast("Q")  # memoryview: reads give plain ints
        self.data = np.ndarray((spec.channels, spec.capacity), np.float32, self._shm.buf, _HEADER_BYTES)
        if create:
            self._counters[_WRITTEN] = self._counters[_VALID_FROM] = self._counters[_READ] = 0
            self.data.fill(0.0)

    @classmethod
    def create(cls, channels: int, capacity: int) -> "SpscRing":
        return cls(RingSpec("", channels, capacity), create=True)

    @classmethod
    def attach(cls, spec: RingSpec) -> "SpscRing":
        return cls(spec)

    # ---- counters ----------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Absolute index one past the newest frame."""
        return self._counters[_WRITTEN]

    @property
    def valid_from(self) -> int:
        """Oldest index the producer has written since its last `seek` (older slots are stale)."""
        return self._counters[_VALID_FROM]

    @property
    def read(self) -> int:
        """Absolute index one past the last frame the consumer took."""
        return self._counters[_READ]

    # ---- producer ----------------------------------------------------------------------------

    def seek(self, position: int) -> None:
        """Continue writing at `position` (≥ `written`); frames before it count as absent."""
        self._counters[_VALID_FROM] = position
        self._counters[_WRITTEN] = position

    def write(self, block: np.ndarray) -> None:
        """Append `block[c, n]` (c ≤ channels, n ≤ capacity); overwrites the oldest frames, never
        waits. Channels beyond c keep stale samples (a ring sized for the largest model serves any)."""
        start = self._counters[_WRITTEN]
        put_wrapped(self.data, start % self.capacity, block)
        self._counters[_WRITTEN] = start + block.shape[1]

    # ---- consumer ----------------------------------------------------------------------------

    def available(self, position: int, n: int) -> bool:
        """Are frames [position, position + n) written and not yet overwritten?"""
        written = self._counters[_WRITTEN]
        oldest = max(self._counters[_VALID_FROM], written - self.capacity)
        return oldest <= position and position + n <= written

    def read_at(self, position: int, out: np.ndarray) -> bool:
        """Copy frames [position, position + n) of the first c channels into `out[c, n]`; False when
        they are not all there or the producer overwrote them while we copied."""
        if not self.copy_at(position, out):
            return False
        self._counters[_READ] = position + out.shape[1]
        return True

    def copy_at(self, position: int, out: np.ndarray) -> bool:
        """`read_at` for a second reader (the render thread's dry signal from the input ring, which
        the worker consumes): the same copy, but `read` stays the consumer's."""
        n = out.shape[1]
        if position < 0 or not self.available(position, n):
            return False
        get_wrapped(self.data, position % self.capacity, out)
        return self._counters[_WRITTEN] - self.capacity <= position

    # ---- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Detach; the creating process also removes the block."""
        del self.data
        self._counters.release()
        self._shm.close()
        if self._owner:
            self._shm.unlink()
