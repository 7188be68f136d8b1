"""Single-producer/single-consumer ring of timestamped MIDI events in one preallocated bytearray.

It carries MIDI between the JACK process callback and the controller thread in both directions, so
the callback never takes a lock, never waits and never grows memory: the producer writes the event
and only then publishes its new write position; the consumer reads and only then publishes its read
position. Each position has exactly one writer, and CPython's GIL makes the int stores atomic and
ordered. A full ring drops the event (counted) and flags the next stored one as following a gap, so
the consumer can drop any running status that the lost bytes may have changed.
"""

from __future__ import annotations

import struct

_HEADER = struct.Struct("<Hd")  # length (high bit: gap before this event), timestamp in seconds
_GAP = 0x8000
_WRAP = 0xFFFF  # marker: the rest of the buffer is unused, continue at 0
MAX_EVENT = 0x7FFF - 1


class EventRing:
    def __init__(self, capacity: int = 1 << 16, max_event: int = 1024) -> None:
        if not 0 < max_event <= MAX_EVENT or capacity < 2 * (_HEADER.size + max_event):
            raise ValueError("capacity must hold two events of max_event bytes")
        self.capacity = capacity
        self.max_event = max_event
        self.dropped = 0
        self._buf = bytearray(capacity)
        self._view = memoryview(self._buf)
        self._write = 0  # total bytes ever written; only the producer stores it
        self._read = 0  # total bytes ever consumed; only the consumer stores it
        self._gap = False  # producer-side: an event was dropped since the last stored one

    # ---- producer -------------------------------------------------------------------------------

    def put(self, time: float, data: bytes | memoryview) -> bool:
        """Store one event; False (and counted) when it is empty, too long, or the ring is full."""
        n = len(data)
        need = _HEADER.size + n
        pos = self._write % self.capacity
        tail = self.capacity - pos
        skip = tail if tail < need else 0
        if not 0 < n <= self.max_event or self._write - self._read + skip + need > self.capacity:
            self.dropped += 1
            self._gap = True
            return False
        if skip:
            if tail >= 2:
                struct.pack_into("<H", self._buf, pos, _WRAP)
            pos = 0
        _HEADER.pack_into(self._buf, pos, n | (_GAP if self._gap else 0), time)
        start = pos + _HEADER.size
        self._buf[start:start + n] = data
        self._gap = False
        self._write += skip + need
        return True

    # ---- consumer -------------------------------------------------------------------------------

    def peek(self) -> tuple[float, memoryview, bool] | None:
        """The oldest event as (time, bytes view, gap-before) without consuming it, or None.

        The view stays valid until `commit()`; the consumer copies it if it needs it longer."""
        if self._read == self._write:
            return None
        pos = self._read % self.capacity
        tail = self.capacity - pos
        if tail < _HEADER.size or struct.unpack_from("<H", self._buf, pos)[0] == _WRAP:
            self._read += tail
            pos = 0
        length, time = _HEADER.unpack_from(self._buf, pos)
        start = pos + _HEADER.size
        return time, self._view[start:start + (length & ~_GAP)], bool(length & _GAP)

    def commit(self) -> None:
        """Consume the event `peek` returned."""
        pos = self._read % self.capacity
        length = _HEADER.unpack_from(self._buf, pos)[0] & ~_GAP
        self._read += _HEADER.size + length

    def get(self) -> tuple[float, bytes, bool] | None:
        """Consume and return the oldest event with its bytes copied."""
        event = self.peek()
        if event is None:
            return None
        time, view, gap = event
        data = bytes(view)
        self.commit()
        return time, data, gap

    def clear(self) -> None:
        """Drop everything pending (consumer side only)."""
        self._read = self._write

    def __len__(self) -> int:
        return self._write - self._read
