"""The stems' last seconds, for the intent parser's audio-aware routing ("mute the piano": which stem
has it right now?), read from the stem ring on the control thread that parses.

The stem ring already holds every stem as the worker separated it (before the mixer's gains, so a
muted stem is still heard here), and its consumer, the JACK callback, is not touched: this reader
never calls `read_at` (which moves the callback's read counter). It copies the newest frames and then
checks, as `read_at` does, that the worker did not overwrite them meanwhile, staying `CLEARANCE_S`
clear of the oldest frame so that a hop being written during the copy cannot reach it. The cost (a
copy of a few MB) is paid only when a sentence names an instrument the model has no stem for.
"""

from __future__ import annotations

import numpy as np

from stemd.daemon.ring import SpscRing, get_wrapped

HISTORY_S = 2.0  # what is read; the daemon sizes the stem ring to hold this on top of its latency
CLEARANCE_S = 0.5  # longer than any hop the worker writes at once


def latest(ring: SpscRing, channels: int, frames: int, clearance: int) -> np.ndarray | None:
    """The newest `frames` frames (fewer while the ring is filling) of the first `channels`
    channels, or None when there are none or the worker kept lapping the copy."""
    for _ in range(3):
        written = ring.written
        oldest = max(ring.valid_from, written - ring.capacity + 2 * clearance)
        n = min(frames, written - oldest)
        if n <= 0:
            return None
        start = written - n
        out = np.empty((channels, n), np.float32)
        get_wrapped(ring.data, start % ring.capacity, out)
        if ring.written - ring.capacity + clearance <= start:
            return out
    return None


def recent_stems(ring: SpscRing | None, sources: list[str], rate: int) -> tuple[dict[str, np.ndarray], int]:
    """{stem: (2, n) float32} of the last HISTORY_S seconds, and the rate (the IntentParser's
    AudioProvider contract); empty while no engine runs."""
    if ring is None or not sources or not rate:
        return {}, rate
    block = latest(ring, 2 * len(sources), round(HISTORY_S * rate), round(CLEARANCE_S * rate))
    if block is None:
        return {}, rate
    return {stem: block[2 * i:2 * i + 2] for i, stem in enumerate(sources)}, rate
