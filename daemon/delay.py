"""Fixed delay line for the dry path.

The dry signal is what the performer hears whenever the engine cannot deliver, so it must leave at
the same moment the separated stems of the same input would: delayed by exactly L frames. The line
is a circular buffer allocated once; `process` only copies.
"""

from __future__ import annotations

import numpy as np

from stemd.daemon.ring import get_wrapped, put_wrapped


class DelayLine:
    """`channels` channels delayed by `delay` frames, for blocks of at most `max_block` frames."""

    def __init__(self, channels: int, delay: int, max_block: int) -> None:
        if delay < 0:
            raise ValueError(f"delay must be ≥ 0 frames, got {delay}")
        self.delay = delay
        self.size = delay + max_block
        self._buf = np.zeros((channels, self.size), dtype=np.float32)
        self._pos = 0  # where the next input frame goes

    def process(self, block: np.ndarray, out: np.ndarray) -> None:
        """Push `block[channels, n]` and write the frames from `delay` frames ago into `out`."""
        n = block.shape[1]
        put_wrapped(self._buf, self._pos, block)
        get_wrapped(self._buf, (self._pos - self.delay) % self.size, out)
        self._pos = (self._pos + n) % self.size
