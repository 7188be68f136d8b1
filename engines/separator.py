"""The one interface every separation backend implements, so the streaming code, the worker, the
offline path and the benchmarks never care which model or runtime is underneath."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamingDefaults:
    """A model's preferred streaming geometry (seconds): context window W, hop H, right context R."""

    window_s: float
    hop_s: float
    right_s: float


class Separator(ABC):
    """Separates a stereo window at `sample_rate` into `len(sources)` stereo stems.

    `separate` takes float32 [2, N] and returns float32 [S, 2, N] in the order of `sources`. The sum
    of the stems need not equal the input (models are not exactly mixture-consistent).
    `separate_batch` takes [B, 2, N] (one window per stream, e.g. per deck) and returns [B, S, 2, N].
    """

    name: str
    sources: list[str]
    sample_rate: int
    streaming: StreamingDefaults

    @abstractmethod
    def separate(self, window: np.ndarray) -> np.ndarray: ...

    def separate_span(self, window: np.ndarray, start: int, stop: int) -> np.ndarray:
        """The stems of window samples [start, stop) only, [S, 2, stop - start]: what the streaming
        loop keeps of each hop. A model whose output stage costs per output sample (Spleeter's
        inverse STFT) overrides this to skip the rest; the default separates the whole window."""
        return self.separate(window)[:, :, start:stop]

    def separate_batch(self, windows: np.ndarray) -> np.ndarray:
        """Several streams' windows at once. Backends whose model takes a batch override this with
        one forward pass, so several inputs cost about one; this default separates them in turn."""
        return np.stack([self.separate(window) for window in windows])

    def describe(self) -> str:
        return f"{self.name} ({', '.join(self.sources)}) @ {self.sample_rate} Hz"


class BatchSeparator(Separator):
    """A backend whose model takes a batch natively: one window is a batch of one."""

    def separate(self, window: np.ndarray) -> np.ndarray:
        return self.separate_batch(window[None])[0]

    @abstractmethod
    def separate_batch(self, windows: np.ndarray) -> np.ndarray: ...
