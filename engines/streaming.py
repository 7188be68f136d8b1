"""Real-time separation with a fixed latency: a sliding context window, a hop, right context, and a
crossfade between consecutive hops.

At the model rate M: every hop H, the separator runs on the last W samples of input; the slice of its
output that ends R before the window's end (R = right context, the lookahead every output sample
has seen at least) is crossfaded into the output over O samples with complementary sin²/cos² ramps.
A sample is final once the next hop has crossfaded it, so the algorithmic delay is R + O + H at the
model rate. Resampling the JACK rate to M and back (soxr, time-aligned) adds only soxr's hold-back,
measured at construction. The whole chain is time-aligned, so the output is the stems of the input
delayed by exactly `latency_samples`; zeros come out until then.

W and H are rounded to multiples of the separator's `grid` (its STFT hop / total time stride, 1024
samples for HTDemucs), so every window starts on the same frame grid as a whole-track pass: a model
that is not exactly shift-invariant then sees each sample the way offline inference does.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stemd.engines.resample import QUALITY, StreamResampler, max_lag
from stemd.engines.separator import Separator

CROSSFADE_S = 0.01
STATS_HOPS = 1000
# Input history a fresh stream needs before a frame for soxr's filters to have settled there: started
# cold mid-signal, the resamplers see a step from the zeros before and ring (0.034 at a 0.5 peak,
# 48 -> 44.1 kHz, HQ); with 2 ms of history the error is below 1e-5 (tests/test_streaming.py).
RESAMPLER_SETTLE_S = 0.005


class PostProcessor(Protocol):
    """Runs on every hop's final output at the model rate (e.g. the refiner). One that delays its
    output has `latency_samples` (model rate) and joins through `add_post`, which adds that delay to
    the stream's; one with `reset()` forgets its audio with the stream."""

    def process(self, stems: np.ndarray, rate: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Geometry:
    """Window W, hop H, right context R, crossfade O, in samples at the model rate."""

    rate: int
    window: int
    hop: int
    right: int
    crossfade: int

    @property
    def delay(self) -> int:
        """Algorithmic delay at the model rate: right context + crossfade + hop quantization."""
        return self.right + self.crossfade + self.hop

    def seconds(self) -> dict[str, float]:
        return {k: getattr(self, k) / self.rate for k in ("window", "hop", "right", "crossfade")}


def make_geometry(model_rate: int, grid: int, window_s: float, hop_s: float, right_s: float,
                  crossfade_s: float = CROSSFADE_S) -> Geometry:
    hop = max(1, round(hop_s * model_rate / grid)) * grid
    right = round(right_s * model_rate)
    crossfade = min(round(crossfade_s * model_rate), hop)
    window = max(1, round(window_s * model_rate / grid)) * grid
    if window < right + hop + crossfade:
        raise ValueError(
            f"window {window_s:g} s is shorter than right context + hop + crossfade "
            f"({(right + hop + crossfade) / model_rate:g} s)"
        )
    return Geometry(model_rate, window, hop, right, crossfade)


class StreamingSeparator:
    """Feeds arbitrary blocks through `separator` and returns the stems, `latency_samples` late."""

    def __init__(self, separator: Separator, rate: int, window_s: float | None = None,
                 hop_s: float | None = None, right_s: float | None = None,
                 crossfade_s: float = CROSSFADE_S) -> None:
        defaults = separator.streaming
        self.separator = separator
        self.sources = list(separator.sources)
        self.rate = rate
        self.model_rate = separator.sample_rate
        self.geometry = make_geometry(
            self.model_rate, getattr(separator, "grid", 1),
            defaults.window_s if window_s is None else window_s,
            defaults.hop_s if hop_s is None else hop_s,
            defaults.right_s if right_s is None else right_s,
            crossfade_s,
        )
        g = self.geometry
        self.hop_samples = round(g.hop * rate / self.model_rate)
        # A model that ignores the top of the band (spleeter2 masks nothing above 11 kHz) may take a
        # resampler with a shorter hold-back: fewer frames of L that buy nothing (`resample_quality`).
        self.resample_quality = getattr(separator, "resample_quality", QUALITY)
        q = self.resample_quality
        self.resampler_lag = {"in": max_lag(rate, self.model_rate, q), "out": max_lag(self.model_rate, rate, q)}
        self._post_delay = 0  # model-rate delay of the post-processors
        self.latency_samples = self._latency()
        self.settle_samples = 0 if rate == self.model_rate else math.ceil(RESAMPLER_SETTLE_S * rate)
        ramp = np.sin(0.5 * np.pi * (np.arange(g.crossfade) + 0.5) / max(g.crossfade, 1)) ** 2
        self._fade_in = ramp.astype(np.float32)
        self._fade_out = (1.0 - ramp).astype(np.float32)
        self.post: list[PostProcessor] = []
        self.compute_ms: deque[float] = deque(maxlen=STATS_HOPS)
        self.reset()

    def _latency(self) -> int:
        return self.latency_with_right(self.geometry.right)

    def latency_with_right(self, right: int) -> int:
        """`latency_samples` this stream would have with right context `right` (model-rate samples)
        and everything else as it is: what the latency plan sizes R with."""
        g = self.geometry
        delay = self.resampler_lag["in"] + right + g.crossfade + g.hop + self._post_delay
        return math.ceil(delay * self.rate / self.model_rate + self.resampler_lag["out"])

    def delay_parts_ms(self) -> dict[str, float]:
        """`latency_samples` in its parts (ms): lookahead, hop, crossfade, post-processors (the
        refiner) and resampling, which takes the rounding so the parts add up to the whole."""
        g, ms = self.geometry, 1000.0 / self.model_rate
        parts = {"lookahead": g.right * ms, "hop": g.hop * ms, "crossfade": g.crossfade * ms}
        if self._post_delay:
            parts["refiner"] = self._post_delay * ms
        parts["resampling"] = 1000.0 * self.latency_samples / self.rate - sum(parts.values())
        return {k: round(v, 1) for k, v in parts.items()}

    def add_post(self, processor: PostProcessor) -> None:
        """Append a post-processor before streaming starts; its delay becomes part of
        `latency_samples`, so the output stays time-aligned."""
        if self.hops:
            raise RuntimeError("add post-processors before the first hop: the latency is fixed once streaming")
        self.post.append(processor)
        self._post_delay += getattr(processor, "latency_samples", 0)
        self.latency_samples = self._latency()

    def reset(self) -> None:
        """Forget all audio (e.g. after the JACK server restarted); latency and settings stay."""
        for post in self.post:
            getattr(post, "reset", lambda: None)()
        g, channels = self.geometry, 2 * len(self.sources)
        self._to_model = StreamResampler(self.rate, self.model_rate, 2, self.resample_quality)
        self._from_model = StreamResampler(self.model_rate, self.rate, channels, self.resample_quality)
        self._window = np.zeros((2, g.window), dtype=np.float32)
        self._filled = 0  # model-rate samples of the next hop already in the window's tail
        self._model_in = 0  # model-rate input samples so far
        self._tail = np.zeros((len(self.sources), 2, g.crossfade), dtype=np.float32)
        self._out = np.zeros((len(self.sources), 2, 0), dtype=np.float32)
        self._out_start = 0  # absolute index (at `rate`) of self._out[..., 0]
        self._in_count = 0  # input samples so far at `rate`
        self.underrun_samples = 0
        self.hops = 0

    @property
    def real_time_factor(self) -> float:
        """Median compute time per hop over the hop's duration (must stay well below 1)."""
        if not self.compute_ms:
            return 0.0
        return float(np.median(self.compute_ms)) / (1000.0 * self.geometry.hop / self.model_rate)

    def calibrate(self, hops: int, warmup: int = 2) -> list[float]:
        """Time `hops` hops on noise after `warmup` untimed ones (first runs allocate and pick kernels),
        then forget it all: what this geometry costs on this machine, measured before going live."""
        block = (0.1 * np.random.default_rng(0).standard_normal((2, self.hop_samples))).astype(np.float32)
        self.reset()
        while self.hops < warmup + hops:
            self.process(block)
        timed = list(self.compute_ms)[-hops:]
        self.compute_ms.clear()
        self.reset()
        return timed

    def process(self, block: np.ndarray) -> np.ndarray:
        """[2, n] float32 at `rate` in, [S, 2, n] float32 out (the stems of the input
        `latency_samples` ago)."""
        if block.ndim != 2 or block.shape[0] != 2:
            raise ValueError(f"expected a stereo block [2, n], got shape {block.shape}")
        self._take(self._to_model.process(block.astype(np.float32, copy=False)))
        start = self._in_count - self.latency_samples
        self._in_count += block.shape[1]
        return self._emit(start, block.shape[1])

    def _take(self, x: np.ndarray) -> None:
        """Append model-rate input, running one hop each time H new samples are in."""
        hop, window = self.geometry.hop, self._window
        pos = 0
        while pos < x.shape[1]:
            if self._filled == 0:
                window[:, :-hop] = window[:, hop:]
            n = min(hop - self._filled, x.shape[1] - pos)
            at = window.shape[1] - hop + self._filled
            window[:, at:at + n] = x[:, pos:pos + n]
            self._filled += n
            self._model_in += n
            pos += n
            if self._filled == hop:
                self._filled = 0
                self._hop()

    def _hop(self) -> None:
        g = self.geometry
        started = time.perf_counter()
        end = g.window - g.right
        piece = self.separator.separate_span(self._window, end - g.hop - g.crossfade, end)
        final = piece[:, :, :g.hop].copy()
        final[:, :, :g.crossfade] *= self._fade_in
        final[:, :, :g.crossfade] += self._tail
        np.multiply(piece[:, :, g.hop:], self._fade_out, out=self._tail)
        for post in self.post:
            final = post.process(final, self.model_rate)
        self.compute_ms.append(1000.0 * (time.perf_counter() - started))
        self.hops += 1
        first = self._model_in - g.delay - self._post_delay  # model-rate index of final[..., 0]
        if first + g.hop <= 0:
            return
        if first < 0:
            final = final[:, :, -first:]
        self._push(final)

    def _push(self, final: np.ndarray) -> None:
        s = len(self.sources)
        out = self._from_model.process(final.reshape(2 * s, -1)).reshape(s, 2, -1)
        self._out = np.concatenate([self._out, out], axis=2)

    def _emit(self, start: int, n: int) -> np.ndarray:
        """Output samples [start, start + n) of the time-aligned stem stream; zeros before 0."""
        result = np.zeros((len(self.sources), 2, n), dtype=np.float32)
        out_end = self._out_start + self._out.shape[2]
        lo, hi = max(start, self._out_start), min(start + n, out_end)
        if hi > lo:
            result[:, :, lo - start:hi - start] = self._out[:, :, lo - self._out_start:hi - self._out_start]
        self.underrun_samples += max(0, start + n - max(start, 0, out_end))
        drop = max(0, start + n - self._out_start)
        self._out = self._out[:, :, drop:]
        self._out_start += drop
        return result
