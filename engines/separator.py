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
    """

    name: str
    sources: list[str]
    sample_rate: int
    streaming: StreamingDefaults

    @abstractmethod
    def separate(self, window: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str:
        return f"{self.name} ({', '.join(self.sources)}) @ {self.sample_rate} Hz"
