"""A streaming STFT with overlap-add resynthesis for post-processing the stem stream frame by frame.

Hann analysis and synthesis windows at 75% overlap (their product sums to a constant, so identity
frames give back the input exactly). Blocks of any size go in; the same number of samples comes
out, `latency_samples` late. A frame is final once the next `n_fft / hop - 1` frames have been
added, so the delay is n_fft - hop when blocks are whole hops, plus what a block size that is not
a multiple of the hop leaves waiting: in all n_fft - gcd(block, hop).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

FrameFunction = Callable[[np.ndarray], np.ndarray]  # [T, F, C] complex -> [T, F, C] complex


class StreamingStft:
    def __init__(self, channels: int, n_fft: int = 1024, hop: int = 256, block: int | None = None) -> None:
        if n_fft % hop or n_fft // hop < 2:
            raise ValueError(f"n_fft {n_fft} must be a multiple (≥ 2) of the hop {hop}")
        self.channels, self.n_fft, self.hop = channels, n_fft, hop
        self.bins = n_fft // 2 + 1
        self.latency_samples = n_fft - (math.gcd(block, hop) if block else 1)
        window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
        self._analysis = window.astype(np.float32)
        self._synthesis = (window / np.sum(window * window) * hop).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        c, n = self.channels, self.n_fft
        self._input = np.zeros((c, n), np.float32)  # the last n_fft input samples
        self._pending = 0  # input samples since the last frame
        self._ola = np.zeros((c, n), np.float32)  # overlap-add accumulator of the next frames
        # Final output not yet emitted. The first frame's first hop is already output sample
        # n_fft - hop before the input's first, so only the rest of the delay starts as zeros.
        self._ready = np.zeros((c, self.latency_samples - (n - self.hop)), np.float32)

    def process(self, x: np.ndarray, frames: FrameFunction) -> np.ndarray:
        """[C, n] in, [C, n] out (`latency_samples` late); `frames` maps each batch of new frames."""
        n = x.shape[1]
        spectra, finals = [], []
        pos = 0
        while pos < n:
            take = min(self.hop - self._pending, n - pos)
            self._input[:, :-take] = self._input[:, take:]
            self._input[:, -take:] = x[:, pos:pos + take]
            self._pending += take
            pos += take
            if self._pending == self.hop:
                self._pending = 0
                spectra.append(np.fft.rfft(self._input * self._analysis, axis=-1).T)
        if spectra:
            out = frames(np.stack(spectra))  # [T, F, C]
            for frame in out:
                self._ola += np.fft.irfft(frame.T, n=self.n_fft, axis=-1).astype(np.float32) * self._synthesis
                finals.append(self._ola[:, :self.hop].copy())
                self._ola[:, :-self.hop] = self._ola[:, self.hop:]
                self._ola[:, -self.hop:] = 0.0
        stream = np.concatenate([self._ready, *finals], axis=1)
        result, self._ready = stream[:, :n], stream[:, n:]
        return result
