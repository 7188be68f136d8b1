"""A Separator whose stems are known fractions of the input, used ONLY to check the daemon's timing.

With stems = weight_i · input (weights summing to 1) the stems add up to the input exactly, so any
difference between the daemon's summed output and the delayed input is the daemon's own error
(alignment, overlap-add, resampling), and muting a stem scales the output by a known factor — which
tells separated audio (0.5 × dry with vocals muted) from the dry fallback (1 × dry) on the wire.
It runs at 44.1 kHz like Demucs, so the JACK-rate resampling path is exercised too.
"""

from __future__ import annotations

import time

import numpy as np

from stemd.engines.separator import Separator, StreamingDefaults

WEIGHTS = {"vocals": 0.5, "drums": 0.2, "bass": 0.2, "other": 0.1}


class OracleSeparator(Separator):
    name = "oracle"
    sources = list(WEIGHTS)
    sample_rate = 44100
    streaming = StreamingDefaults(window_s=0.3, hop_s=0.05, right_s=0.02)

    def __init__(self, busy_ms: float = 0.0) -> None:
        self.busy_ms = busy_ms  # optional compute time per hop, to load the worker like a model

    def separate(self, window: np.ndarray) -> np.ndarray:
        if self.busy_ms:
            end = time.perf_counter() + self.busy_ms / 1000.0
            while time.perf_counter() < end:
                pass
        weights = np.array(list(WEIGHTS.values()), np.float32)[:, None, None]
        return weights * window[None]


def load_oracle(busy_ms: float = 0.0, load_s: float = 0.0) -> OracleSeparator:
    """Picklable loader for the worker process; `load_s` imitates a model's loading time."""
    time.sleep(load_s)
    return OracleSeparator(busy_ms)
