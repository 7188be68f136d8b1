"""How well pretrained models separate, against the fixture songs' ground truth: the `quality` rows of
`stemd bench`.

The streaming rows compare streaming with the same model offline; these compare both with the stems
the song was rendered from, so a port that runs but separates badly (wrong weights, a padding slip)
shows here. A 2-stem model's `accompaniment` is scored against everything but the vocals. Random-weight
models are skipped (their separation means nothing), so are models that cannot load (the streaming rows
already say why).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from stemd.engines.fixtures import Song, render_song
from stemd.engines.metrics import sdr, si_sdr
from stemd.engines.resample import resample
from stemd.engines.separator import Separator
from stemd.engines.streaming import StreamingSeparator

if TYPE_CHECKING:
    from stemd.benchmarks.streaming import BenchOptions, BenchRow

ACCOMPANIMENT = "accompaniment"


def reference(song: Song, source: str) -> np.ndarray:
    """The true stem for a model's source name; `accompaniment` is the mix without the vocals."""
    if source == ACCOMPANIMENT:
        return song.mix - song.stems["vocals"]
    return song.stems[source]


def scores(song: Song, sources: list[str], estimate: np.ndarray, skip_s: float = 1.0) -> dict:
    """{source: {"sdr", "si_sdr"}} in dB against the true stems (see `scores_against`)."""
    return scores_against([reference(song, source) for source in sources], sources, estimate, song.sr, skip_s)


def scores_against(references: list[np.ndarray], sources: list[str], estimate: np.ndarray, sr: int,
                   skip_s: float = 1.0) -> dict:
    """{source: {"sdr", "si_sdr"}} in dB of each estimate against its reference, ignoring the first
    `skip_s` (streaming warm-up) and the last 0.2 s (the zero-padded tail)."""
    span = slice(int(skip_s * sr), references[0].shape[1] - sr // 5)
    result = {}
    for i, source in enumerate(sources):
        ref, est = references[i][:, span], estimate[i][:, span]
        result[source] = {"sdr": round(sdr(ref, est), 2), "si_sdr": round(si_sdr(ref, est), 2)}
    return result


def offline_estimate(separator: Separator, song: Song) -> np.ndarray:
    """The model's whole-song reference path (`separate_offline` where it has one) at the song rate."""
    run = getattr(separator, "separate_offline", separator.separate)
    stems = run(resample(song.mix, song.sr, separator.sample_rate))
    return resample(stems, separator.sample_rate, song.sr)[..., : song.mix.shape[1]]


def streaming_estimate(streamer: StreamingSeparator, song: Song, period: int) -> np.ndarray:
    """The song through `streamer` in JACK-period blocks, realigned by the streamer's latency."""
    lag = streamer.latency_samples
    x = np.concatenate([song.mix, np.zeros((2, lag + period), np.float32)], axis=1)
    out = [streamer.process(x[:, pos:pos + period]) for pos in range(0, x.shape[1], period)]
    return np.concatenate(out, axis=2)[:, :, lag:lag + song.mix.shape[1]]


def quality_row(separator: Separator, options: BenchOptions) -> BenchRow:
    from stemd.benchmarks.streaming import BenchRow

    song = render_song(options.seconds, options.rate, seed=0)
    streamer = StreamingSeparator(separator, options.rate, options.window_s, options.hop_s, options.right_s)
    streamed = streaming_estimate(streamer, song, options.period)
    g = streamer.geometry
    row = BenchRow(separator.name, options.backend, str(getattr(separator, "device", "cpu")),
                   round(g.window / g.rate, 3), 1000.0 * g.hop / g.rate, 1000.0 * g.right / g.rate,
                   latency_ms=1000.0 * streamer.latency_samples / options.rate)
    row.extra = {"quality_offline": scores(song, separator.sources, offline_estimate(separator, song)),
                 "quality_streaming": scores(song, separator.sources, streamed)}
    row.note = ("quality: SDR / SI-SDR in dB against the fixture's true stems (accompaniment = mix - "
                "vocals); speed is in the streaming rows")
    return row


def quality_rows(options: BenchOptions) -> list[BenchRow]:
    from stemd.engines.demucs_backend import torch_threads
    from stemd.engines.registry import ModelNotAvailable, load_separator
    from stemd.benchmarks.streaming import RANDOM_MODELS

    threads = options.threads or max(1, (os.cpu_count() or 2) - 1)
    rows = []
    with torch_threads(threads):
        for name in options.models:
            if name in RANDOM_MODELS:
                continue
            try:
                separator = load_separator(name, device=options.device, backend=options.backend)
            except ModelNotAvailable:
                continue
            rows.append(quality_row(separator, options))
    return rows
