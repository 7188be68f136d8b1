"""Comfort noise for PocketSphinx: a white-noise floor a fixed distance under the voice.

The en-us acoustic model was trained on real recordings, which always carry a noise floor. A voice
with nothing under it (a quiet room through a good mic, or any synthetic voice) leaves frequency bands
all but empty, and their log energies, far below anything the model saw, pull its features off. A floor
COMFORT_BELOW_DB under the loud frames of the performer's own voice fills those bands, as a little
room noise would, without masking any speech. Only the first pass hears it: held out it took
push-to-talk from 429 to 462 right commands of 1056 and wrong ones from 47 to 37; under the second
pass too it lifted right commands further but let that pass accept wrong sentences it used to refuse
(docs/decisions/voice.md). Under music the floor is far below the music already.

The floor follows the voice: mic gains differ by tens of dB, and a fixed floor would bury a quiet mic.
The level is taken from the utterance before (the loudest tenth of its 10 ms frames, which is the
voice whenever a command was said), so it is steady across an utterance, where the decoder's running
mean normalisation needs it steady; before the first utterance it assumes a well-set mic.
"""

from __future__ import annotations

import numpy as np

from stemd.control.voice.recognizer import RATE

FRAME_SAMPLES = RATE // 100  # one 10 ms decoder frame
COMFORT_BELOW_DB = 34.0  # the floor under the 90th percentile of an utterance's frame levels
LOUD_PERCENTILE = 90.0
DEFAULT_LOUD_DB = -16.0  # a well-set mic: espeak-ng's voices at -20 dBFS RMS have loud frames here
FLOOR_RANGE_DB = (-80.0, -40.0)  # never louder than room noise, nor lost under int16's own noise


def frame_power(samples: np.ndarray) -> np.ndarray:
    """The mean power of each whole 10 ms frame of float `samples` (full scale = 1)."""
    frames = samples.size // FRAME_SAMPLES
    return np.mean(samples[:frames * FRAME_SAMPLES].reshape(frames, FRAME_SAMPLES) ** 2, axis=1)


def decibels(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(power + 1e-12)


class ComfortNoise:
    """Adds the floor to what the recogniser is fed, and learns the voice's level from each utterance."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self.loud_db = DEFAULT_LOUD_DB

    @property
    def floor_db(self) -> float:
        low, high = FLOOR_RANGE_DB
        return min(max(self.loud_db - COMFORT_BELOW_DB, low), high)

    def add(self, samples: np.ndarray) -> np.ndarray:
        """`samples` (float, 16 kHz) with the floor under them."""
        noise = self._rng.standard_normal(samples.size, dtype=np.float32)
        return samples + noise * np.float32(10.0 ** (self.floor_db / 20.0))

    def learn(self, samples: np.ndarray) -> None:
        """Take the voice's level from a finished utterance's float samples (shorter than a frame:
        nothing to learn)."""
        power = frame_power(samples)
        if power.size:
            self.loud_db = float(np.percentile(decibels(power), LOUD_PERCENTILE))
