"""Streaming sample-rate conversion between the JACK rate and a model's rate (soxr).

soxr's output is time-aligned with its input (sample k out is input time k / out_rate, no filter
delay to undo), but it holds samples back: after n input samples it has emitted fewer than
n * ratio. That hold-back ("lag") is what the streaming engine must budget for; `max_lag` measures it
for the worst case (tiny blocks) instead of trusting a constant from one libsoxr version.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

QUALITY = "HQ"
MARGIN = 4


class StreamResampler:
    """[C, n] float32 blocks in at `in_rate`, [C, m] out at `out_rate`; a copy-free pass-through when
    the rates are equal."""

    def __init__(self, in_rate: int, out_rate: int, channels: int, quality: str = QUALITY) -> None:
        self.in_rate, self.out_rate, self.channels = in_rate, out_rate, channels
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, channels, dtype="float32", quality=quality
        )

    def process(self, block: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32))
        return np.ascontiguousarray(out.T)


def resample(x: np.ndarray, in_rate: int, out_rate: int, quality: str = QUALITY) -> np.ndarray:
    """A whole [..., n] float32 signal at once (the time-aligned reference for streaming output)."""
    if in_rate == out_rate:
        return x
    flat = x.reshape(-1, x.shape[-1])
    out = soxr.resample(np.ascontiguousarray(flat.T), in_rate, out_rate, quality=quality)
    return np.ascontiguousarray(out.T, dtype=np.float32).reshape(*x.shape[:-1], -1)


def max_lag(in_rate: int, out_rate: int, quality: str = QUALITY) -> int:
    """Most output samples soxr ever holds back (0 for equal rates), probed with 8-sample blocks
    (larger blocks are held back less), plus a few samples of margin for 1-sample blocks."""
    if in_rate == out_rate:
        return 0
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
    block = np.zeros((8, 1), dtype=np.float32)
    fed = emitted = 0
    worst = 0.0
    for _ in range(in_rate // 10 // len(block)):
        emitted += len(stream.resample_chunk(block))
        fed += len(block)
        worst = max(worst, fed * out_rate / in_rate - emitted)
    return math.ceil(worst) + MARGIN
