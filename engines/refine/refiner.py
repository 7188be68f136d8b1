"""The refiner: per-stem `clean` / `dereverb` / `clean+dereverb` / `off` on the stem stream, switched with a crossfade,
within a share of real time.

One streaming STFT carries every stem (Hann windows, 75% overlap), so the refiner's delay is fixed
whatever the modes are and switching a mode never moves the audio in time; `off` is the identity in
that domain. A switch ramps the stem's spectrum from the old mode's output to the new one's over
`FADE_S`, both computed meanwhile. The refiner times itself: when its cost stays above `budget` (a
share of real time at the model rate), it turns the costliest refined stem off — crossfaded, like a
command — and records why in `bypassed`, which the worker reports to the daemon's status. A later
`refine` command for that stem tries again.
"""

from __future__ import annotations

import time

import numpy as np

from stemd.control.commands import REFINE_MODES
from stemd.engines.refine.dereverb import OnlineWpe
from stemd.engines.refine.stft import StreamingStft
from stemd.engines.refine.wiener import StreamingWiener

N_FFT = 1024
STFT_HOP = 256
FADE_S = 0.05
# WPE costs (taps × channels)² per bin and frame, so it covers the band where a voice's reverb
# carries (real rooms' tails are shortest above it: air absorbs highs); higher bins pass as they are.
DEREVERB_MAX_HZ = 8000.0
BUDGET = 0.3  # largest share of real time the refiner may use before it bypasses a stem
LOAD_SMOOTHING = 0.1  # per call; about 10 hops of memory
STACKED = "clean+dereverb"
COST_ORDER = (STACKED, "dereverb", "clean")  # which mode to bypass first when over budget


def _uses(mode: str | None, stage: str) -> bool:
    """Whether `mode` runs `stage` ("clean" or "dereverb"); "clean+dereverb" runs both, in that order."""
    return mode is not None and stage in mode.split("+")


class Refiner:
    """A StreamingSeparator post-processor: [S, 2, n] stems in, refined stems out `latency_samples`
    later, at `rate`."""

    def __init__(self, sources: list[str], rate: int, block: int | None = None,
                 budget: float = BUDGET) -> None:
        self.sources = list(sources)
        self.rate = rate
        self.budget = budget
        self.stft = StreamingStft(2 * len(self.sources), N_FFT, STFT_HOP, block)
        self.latency_samples = self.stft.latency_samples
        self._fade_frames = max(1, round(FADE_S * rate / STFT_HOP))
        self.modes = {s: "off" for s in self.sources}
        self.bypassed: dict[str, str] = {}
        self.load = 0.0  # smoothed refiner time / audio time
        self.last_ms = 0.0
        self.reset()

    def reset(self) -> None:
        """Forget all audio; modes stay."""
        self.stft.reset()
        self._previous: dict[str, str] = {}  # stem -> mode it is fading from
        self._fade: dict[str, int] = {}  # stem -> frames of the fade done
        self._wpe: dict[tuple[str, str], OnlineWpe] = {}
        self._wiener: StreamingWiener | None = None

    def set_mode(self, stem: str, mode: str) -> None:
        """Switch one stem (crossfaded); a new request clears that stem's bypass."""
        if stem not in self.modes:
            raise ValueError(f"no stem {stem!r}; stems are {', '.join(self.sources)}")
        if mode not in REFINE_MODES:
            raise ValueError(f"mode must be one of {', '.join(REFINE_MODES)}, got {mode!r}")
        self.bypassed.pop(stem, None)
        self._switch(stem, mode)

    def _switch(self, stem: str, mode: str) -> None:
        current = self.modes[stem]
        if mode == current:
            return
        if stem in self._previous and self._fade[stem] < self._fade_frames // 2:
            current = self._previous[stem]  # mostly still the old sound: fade on from that
        self.modes[stem] = mode
        if current == mode:  # back to the sound it was leaving: end the fade there
            self._previous.pop(stem, None)
            self._fade.pop(stem, None)
        else:
            self._previous[stem], self._fade[stem] = current, 0

    def process(self, stems: np.ndarray, rate: int) -> np.ndarray:
        if rate != self.rate:
            raise ValueError(f"the refiner runs at {self.rate} Hz, got {rate} Hz")
        started = time.perf_counter()
        s, channels, n = stems.shape
        out = self.stft.process(stems.reshape(s * channels, n), self._frames).reshape(s, channels, n)
        self.last_ms = 1000.0 * (time.perf_counter() - started)
        self.load += LOAD_SMOOTHING * (self.last_ms / (1000.0 * n / rate) - self.load)
        if self.load > self.budget:
            self._shed_load()
        return out

    def _shed_load(self) -> None:
        for mode in COST_ORDER:
            for stem in self.sources:
                if self.modes[stem] == mode:
                    self.bypassed[stem] = (f"{mode} bypassed: the refiner took {self.load:.1%} of real time "
                                           f"(budget {self.budget:.1%})")
                    self._switch(stem, "off")
                    self.load = 0.0  # measure afresh without it
                    return

    def _frames(self, spectra: np.ndarray) -> np.ndarray:
        """[T, F, S·2] frames of all stems -> the same, each stem by its mode (fading if switching)."""
        wanted = {m for stem in self.sources for m in (self.modes[stem], self._previous.get(stem))}
        self._drop_unused(wanted)
        if wanted <= {"off", None}:
            return spectra
        frames, bins, _ = spectra.shape
        stems = spectra.reshape(frames, bins, len(self.sources), 2)
        cleaned = self._clean(self._clean_input(stems)) if any(_uses(m, "clean") for m in wanted) else None
        out = stems.copy()
        for i, stem in enumerate(self.sources):
            new = self._mode_output(stem, self.modes[stem], stems[:, :, i], cleaned, i)
            if stem in self._previous:
                old = self._mode_output(stem, self._previous[stem], stems[:, :, i], cleaned, i)
                done = self._fade[stem] + 1 + np.arange(frames)
                ramp = np.minimum(done / self._fade_frames, 1.0)
                gain = (np.sin(0.5 * np.pi * ramp) ** 2).astype(np.float32)[:, None, None]
                new = old + gain * (new - old)
                self._end_fade(stem, frames)
            out[:, :, i] = new
        broken = ~np.isfinite(out)
        if broken.any():  # never let a NaN into the overlap-add (it would stay) or the mix
            out[broken] = stems[broken]
        return out.reshape(spectra.shape)

    def _drop_unused(self, wanted: set[str | None]) -> None:
        """Forget the state of modes no stem uses any more: a later switch starts them afresh."""
        for stem, mode in list(self._wpe):
            if mode not in (self.modes[stem], self._previous.get(stem)):
                del self._wpe[stem, mode]
        if not any(_uses(m, "clean") for m in wanted):
            self._wiener = None

    def _end_fade(self, stem: str, frames: int) -> None:
        self._fade[stem] += frames
        if self._fade[stem] >= self._fade_frames:
            del self._previous[stem], self._fade[stem]

    def _clean_input(self, stems: np.ndarray) -> np.ndarray:
        """What the clean-up re-masks: the stems, with a stem under "clean+dereverb" dereverbed first
        (WPE on the stem as separated, then Wiener on the drier stem: better on every bench song than
        the other order, which re-masks reverb the filter then cannot model). During that stem's
        switch fade both of its sounds take their clean-up from this one input."""
        stacked = [i for i, stem in enumerate(self.sources)
                   if STACKED in (self.modes[stem], self._previous.get(stem))]
        if not stacked:
            return stems
        out = stems.copy()
        for i in stacked:
            out[:, :, i] = self._dereverb(self.sources[i], STACKED, stems[:, :, i])
        return out

    def _dereverb(self, stem: str, mode: str, spectrum: np.ndarray) -> np.ndarray:
        """Online WPE over the band where reverb carries; one filter per stem and mode, so while
        "dereverb" fades into "clean+dereverb" each filter sees its own input once per frame."""
        band = min(spectrum.shape[1], round(DEREVERB_MAX_HZ * N_FFT / self.rate) + 1)
        wpe = self._wpe.get((stem, mode))
        if wpe is None:
            wpe = self._wpe[stem, mode] = OnlineWpe(band, spectrum.shape[2])
        out = spectrum.copy()
        out[:, :band] = np.stack([wpe.step(frame[:band]) for frame in spectrum])
        return out

    def _clean(self, stems: np.ndarray) -> np.ndarray:
        if self._wiener is None:
            _, bins, sources, _ = stems.shape
            self._wiener = StreamingWiener(bins, sources, self.rate / STFT_HOP)
        return self._wiener.process(stems.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)

    def _mode_output(self, stem: str, mode: str, spectrum: np.ndarray, cleaned: np.ndarray | None,
                     index: int) -> np.ndarray:
        """One stem's [T, F, 2] frames under `mode` (clean-up output already holds the dereverb of a
        "clean+dereverb" stem: see `_clean_input`)."""
        if _uses(mode, "clean"):
            return cleaned[:, :, index]
        if mode == "dereverb":
            return self._dereverb(stem, mode, spectrum)
        return spectrum
