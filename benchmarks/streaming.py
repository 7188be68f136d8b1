"""What the live engine costs and how close it stays to offline inference, per model, backend and
device: the rows of `stemd bench` for the streaming loop.

Each row streams a fixture song through StreamingSeparator in JACK-period blocks and reports the
compute per hop (median, p95, max), the real-time factor, the latency budget
L = R + H + crossfade + resampler hold-back + compute (p95) + one JACK period, the process's peak
memory while it ran, and the SDR per stem of the streaming output against demucs's `apply_model`
("offline") and against one pass of the model over the whole song ("whole", which isolates what
streaming changes from what apply_model's own chunking changes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from stemd.engines.metrics import sdr
from stemd.engines.separator import Separator

# Random-weight HTDemucs sizes that are always available (no weights needed).
RANDOM_MODELS = {"small": "SMALL_SIZE", "htdemucs-size": "HTDEMUCS_SIZE"}


def daemon_reserves(rate: int, period: int) -> dict[str, int]:
    """The dry crossfade (the config's default) and render lead the daemon reserves in L, as keyword
    arguments of `latency_budget.plan`: a bench's auto L is then the one the daemon picks."""
    from stemd.config import SCHEMA
    from stemd.daemon import latency_budget

    crossfade_ms = SCHEMA["audio"].keys["dry_crossfade_ms"].default
    return {"crossfade": latency_budget.dry_crossfade(crossfade_ms, rate),
            "render_lead": latency_budget.render_lead(rate, period)}


@dataclass
class BenchOptions:
    models: list[str]
    seconds: float = 8.0
    rate: int = 48000
    period: int = 256
    device: str = "auto"
    backend: str = "torch"
    threads: int = 0
    latency_ms: float = 200.0
    window_s: float | None = None
    hop_s: float | None = None
    right_s: float | None = None
    compute_ms: float | None = None  # frontier: p95 compute per hop to plan with (None = measure)
    out: str = ""  # frontier: folder for its JSON and plots ("" = benchmarks/results)


@dataclass
class BenchRow:
    """One line of `stemd bench`; providers fill what they measure and leave the rest None."""

    model: str
    backend: str = ""
    device: str = ""
    window_s: float | None = None
    hop_ms: float | None = None
    right_ms: float | None = None
    ms_median: float | None = None
    ms_p95: float | None = None
    ms_max: float | None = None
    rtf: float | None = None
    latency_ms: float | None = None  # algorithmic: R + H + crossfade + resampler hold-back
    budget_ms: float | None = None  # latency + compute p95 + one JACK period
    peak_mem_mb: float | None = None
    sdr_offline: dict[str, float] = field(default_factory=dict)
    sdr_whole: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _load(name: str, options: BenchOptions) -> Separator:
    from stemd.engines import demucs_backend
    from stemd.engines.registry import load_separator, resolve_device

    if name in RANDOM_MODELS:
        model = demucs_backend.random_htdemucs(**getattr(demucs_backend, RANDOM_MODELS[name]))
        return demucs_backend.DemucsSeparator(model, name, resolve_device(options.device))
    return load_separator(name, device=options.device, backend=options.backend)


def per_model(options: BenchOptions, rows_for: Callable[[str, Separator], list[BenchRow]]) -> list[BenchRow]:
    """`rows_for(name, separator)` for each model in `options.models`, at the bench's torch threads; a
    model that cannot load here is a row with the reason."""
    from stemd.engines.demucs_backend import torch_threads
    from stemd.engines.registry import ModelNotAvailable

    threads = options.threads or max(1, (os.cpu_count() or 2) - 1)
    rows = []
    with torch_threads(threads):
        for name in options.models:
            try:
                separator = _load(name, options)
            except ModelNotAvailable as exc:
                rows.append(BenchRow(name, options.backend, note=f"not available: {exc}"))
                continue
            rows += rows_for(name, separator)
    return rows


def streaming_rows(options: BenchOptions) -> list[BenchRow]:
    """One row per model in `options.models`."""
    return per_model(options, lambda name, separator: [measure(separator, options)])


def measure(separator: Separator, options: BenchOptions) -> BenchRow:
    from stemd.engines.fixtures import render_song  # soundfile, soxr: not needed for BenchRow alone
    from stemd.engines.streaming import StreamingSeparator

    song = render_song(options.seconds, options.rate, seed=0)
    streamer = StreamingSeparator(separator, options.rate, options.window_s, options.hop_s, options.right_s)
    g, rate = streamer.geometry, options.rate
    latency = streamer.latency_samples
    x = np.concatenate([song.mix, np.zeros((2, latency), np.float32)], axis=1)
    peak, outs = _rss_mb(), []
    for pos in range(0, x.shape[1], options.period):
        outs.append(streamer.process(x[:, pos:pos + options.period]))
        peak = max(peak, _rss_mb())
    got = np.concatenate(outs, axis=2)[:, :, latency:latency + song.mix.shape[1]]
    ms = np.asarray(streamer.compute_ms)
    device = str(getattr(separator, "device", "cpu"))
    row = BenchRow(
        separator.name, options.backend, device, round(g.window / g.rate, 3), 1000.0 * g.hop / g.rate,
        1000.0 * g.right / g.rate, float(np.median(ms)), float(np.percentile(ms, 95)), float(ms.max()),
        streamer.real_time_factor, 1000.0 * latency / rate,
    )
    row.budget_ms = row.latency_ms + row.ms_p95 + 1000.0 * options.period / rate
    row.peak_mem_mb = _peak_mem(device, peak)
    row.extra = {"crossfade_ms": 1000.0 * g.crossfade / g.rate, "resampler_lag": streamer.resampler_lag,
                 "underrun_samples": streamer.underrun_samples, "fits_latency": row.budget_ms <= options.latency_ms,
                 "rate": rate, "period": options.period, "seconds": options.seconds}
    row.sdr_offline, row.sdr_whole = _agreement(separator, song.mix, got, rate)
    return row


def _peak_mem(device: str, rss_peak: float) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return rss_peak


def _agreement(separator: Separator, mix: np.ndarray, got: np.ndarray, rate: int) -> tuple[dict, dict]:
    """SDR per stem of the streaming output against apply_model and against one whole-song pass of
    the same song at the model rate, skipping the first second (the window's warm-up)."""
    from stemd.engines.resample import resample

    model_rate, n = separator.sample_rate, mix.shape[1]
    at_model = resample(mix, rate, model_rate)
    skip = slice(rate, n - rate // 5)
    scores = []
    for reference in (getattr(separator, "separate_offline", None), separator.separate):
        if reference is None:
            scores.append({})
            continue
        ref = resample(reference(at_model), model_rate, rate)[..., :n]
        scores.append({name: round(sdr(ref[i][:, skip], got[i][:, skip]), 2)
                       for i, name in enumerate(separator.sources)})
    return scores[0], scores[1]
