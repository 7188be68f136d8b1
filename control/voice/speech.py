"""Spoken commands over music, for the voice tests and the voice benchmark.

Speech comes from espeak-ng, music from the engine's song fixture, and the mix is played into a mic
ring in JACK-period blocks, exactly as the daemon's process callback fills it, optionally at real-time
pace for latency measurements.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time

import numpy as np
import soundfile as sf
import soxr

from stemd.daemon.ring import SpscRing
from stemd.engines.fixtures import render_song


def speak(text: str, rate: int, voice: str = "ko", words_per_minute: int = 130) -> np.ndarray:
    """`text` spoken by espeak-ng, mono float32 at `rate`."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found: run scripts/install.sh")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True, capture_output=True,
    ).stdout
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(audio, sr, rate).astype(np.float32)


def trimmed(said: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """`said` without the silence espeak-ng appends after the last word (~0.35 s), so that a tail
    added after it is the time from the last word."""
    loud = np.nonzero(np.abs(said) > threshold)[0]
    return said[:loud[-1] + 1] if loud.size else said[:0]


def music(seconds: float, rate: int, seed: int = 1) -> np.ndarray:
    """The engine's synthetic song (FluidSynth drums, bass, chords and espeak-ng vocals), mono float32:
    music with a voice in it, the hardest thing for a command recogniser to ignore."""
    return render_song(seconds, rate, seed=seed).mix.mean(axis=0)


def mix(speech: np.ndarray, backing: np.ndarray | None, snr_db: float | None, lead_s: float, tail_s: float,
        rate: int, floor_db: float = -60.0) -> tuple[np.ndarray, int]:
    """Speech placed after `lead_s` of backing at `snr_db` (speech power over music power while the
    speech lasts; None = no music), `tail_s` after it, over a mic's self-noise at `floor_db` dBFS
    (digital silence is no mic's output, and Vosk's online feature normalisation misreads it).
    Returns the mix and the frame where the speech ends."""
    start = int(lead_s * rate)
    end = start + speech.shape[0]
    out = np.random.default_rng(end).standard_normal(end + int(tail_s * rate)).astype(np.float32)
    out *= 10 ** (floor_db / 20)
    out[start:end] += speech
    if snr_db is not None:
        bed = np.resize(backing, out.shape[0])
        gain = np.sqrt(np.mean(speech**2) / np.mean(bed[start:end] ** 2) / 10 ** (snr_db / 10))
        out += gain * bed
    peak = float(np.max(np.abs(out)))
    return (out / peak * 0.9 if peak > 0.9 else out), end


def play(ring: SpscRing, audio: np.ndarray, rate: int, period: int = 256, speed: float | None = 1.0) -> float:
    """Write `audio` into `ring` one period at a time (as the JACK callback would) at `speed` times
    real time (None: as fast as possible); returns the time.monotonic() of the last write."""
    t0 = time.monotonic()
    for i, at in enumerate(range(0, audio.shape[0], period)):
        if speed is not None:
            delay = t0 + i * period / rate / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ring.write(audio[np.newaxis, at:at + period])
    return time.monotonic()
