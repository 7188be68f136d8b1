"""StreamingSeparator on a random-weight HTDemucs of the real architecture: arbitrary block sizes in,
the stems out exactly `latency_samples` late, agreeing with one whole-track pass of the same model;
at 48 kHz through soxr's streaming resamplers; the post-processor hook; bad geometry refused."""

import numpy as np
import pytest

from stemd.engines.demucs_backend import DemucsSeparator, random_htdemucs, torch_threads
from stemd.engines.metrics import sdr
from stemd.engines.resample import resample
from stemd.engines.streaming import StreamingSeparator

GEOMETRY = dict(window_s=0.5, hop_s=4096 / 44100, right_s=2048 / 44100)
SECONDS = 2.5


@pytest.fixture(scope="module")
def separator():
    with torch_threads(1):
        yield DemucsSeparator(random_htdemucs(8, t_layers=1), "small")


def song(rate, seconds=SECONDS):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    tone = 0.3 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * 2 * t))
    hits = 0.2 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0.6)
    return np.stack([tone + hits, 0.7 * tone - hits]).astype(np.float32)


def stream(streamer, mix, seed=0):
    """Everything through `process` in random block sizes, plus `latency` (and a few) samples of silence so
    the tail comes out; returns the raw output."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([mix, np.zeros((2, streamer.latency_samples + 8), np.float32)], axis=1)
    out, pos = [], 0
    while pos < x.shape[1]:
        n = int(rng.integers(1, 1500))
        block = streamer.process(x[:, pos:pos + n])
        assert block.shape == (len(streamer.sources), 2, x[:, pos:pos + n].shape[1])
        out.append(block)
        pos += n
    return np.concatenate(out, axis=2)


def middle(x, rate):
    """Skip the first window's warm-up (the model saw silence before the song) and the last 0.2 s."""
    return x[..., int(0.6 * rate):-int(0.2 * rate)]


def test_stems_come_exactly_latency_late_and_agree_with_a_whole_track_pass(separator):
    mix = song(44100)
    streamer = StreamingSeparator(separator, 44100, **GEOMETRY)
    g = streamer.geometry
    assert streamer.latency_samples == g.right + g.crossfade + g.hop  # no resampling at 44.1 kHz
    out = stream(streamer, mix)
    latency = streamer.latency_samples
    assert not out[:, :, :latency].any(), "zeros before the first output"
    reference = middle(separator.separate(mix), 44100)
    n = mix.shape[1]
    scores = {lag: sdr(reference, middle(out[:, :, latency + lag:latency + lag + n], 44100))
              for lag in (-1, 0, 1)}
    per_stem = [sdr(r, s) for r, s in zip(reference, middle(out[:, :, latency:latency + n], 44100))]
    assert min(per_stem) > 15.0, per_stem
    assert scores[0] > scores[-1] + 10 and scores[0] > scores[1] + 10, scores
    assert streamer.underrun_samples == 0
    assert streamer.hops > 0 and len(streamer.compute_ms) == streamer.hops and streamer.real_time_factor > 0


def test_48k_goes_through_the_streaming_resamplers(separator):
    mix = song(48000, 2.0)
    streamer = StreamingSeparator(separator, 48000, **GEOMETRY)
    g = streamer.geometry
    assert streamer.latency_samples > round(g.delay * 48000 / 44100)  # soxr's hold-back is budgeted
    assert streamer.hop_samples == round(g.hop * 48000 / 44100)
    out = stream(streamer, mix, seed=1)
    latency, n = streamer.latency_samples, mix.shape[1]
    assert streamer.underrun_samples == 0
    reference = resample(separator.separate(resample(mix, 48000, 44100)), 44100, 48000)[:, :, :n]
    got = out[:, :, latency:latency + n]
    assert sdr(middle(reference, 48000), middle(got, 48000)) > 15.0


class Halve:
    def __init__(self):
        self.calls = []

    def process(self, stems, rate):
        self.calls.append((stems.shape, rate))
        return stems * 0.5


def test_post_processors_see_every_hop_at_the_model_rate(separator):
    mix = song(44100, 1.0)
    plain = StreamingSeparator(separator, 44100, **GEOMETRY)
    halved = StreamingSeparator(separator, 44100, **GEOMETRY)
    halve = Halve()
    halved.post.append(halve)
    a, b = stream(plain, mix), stream(halved, mix)
    np.testing.assert_allclose(b, 0.5 * a, atol=1e-6)
    assert len(halve.calls) == halved.hops
    assert all(shape == (4, 2, halved.geometry.hop) and rate == 44100 for shape, rate in halve.calls)


def test_bad_geometry_and_blocks_are_refused(separator):
    with pytest.raises(ValueError, match="shorter than right context"):
        StreamingSeparator(separator, 44100, window_s=0.05, hop_s=0.05, right_s=0.05)
    streamer = StreamingSeparator(separator, 44100, **GEOMETRY)
    with pytest.raises(ValueError, match="stereo"):
        streamer.process(np.zeros((1, 64), np.float32))
    assert streamer.process(np.zeros((2, 0), np.float32)).shape == (4, 2, 0)


def test_bench_reports_cost_latency_and_agreement_as_json(capsys):
    import json

    from stemd.cli import main

    assert main(["bench", "--json", "--models", "small", "nosuch", "--seconds", "1.5", "--rate", "44100",
                 "--period", "512", "--threads", "1", "--window", "0.5", "--only", "streaming"]) == 0
    small, missing = json.loads(capsys.readouterr().out)
    assert small["model"] == "small" and small["device"] == "cpu"
    assert 0 < small["ms_median"] <= small["ms_p95"] <= small["ms_max"] and small["rtf"] > 0
    assert small["budget_ms"] > small["latency_ms"] > small["hop_ms"] + small["right_ms"]
    assert set(small["sdr_whole"]) == set(small["sdr_offline"]) == {"drums", "bass", "other", "vocals"}
    assert min(small["sdr_whole"].values()) > 10
    assert small["peak_mem_mb"] > 0 and small["extra"]["underrun_samples"] == 0
    assert missing["model"] == "nosuch" and missing["note"].startswith("not available")


def test_a_stream_started_settle_samples_early_joins_a_running_one_without_a_step():
    """What a standby's takeover relies on: a fresh stream fed from `settle_samples` before frame p
    gives, from p on, the stems a stream that ran all along gives there (a linear model: any
    difference is the stream's own) — with no history the cold resamplers ring at p, a click."""
    from oracle_separator import OracleSeparator

    rate = 48000
    t = np.arange(2 * rate) / rate
    mix = np.stack([0.5 * np.sin(2 * np.pi * 375 * t)] * 2).astype(np.float32)
    at = rate + 32  # a peak of the tone: the worst step for a cold start
    running = StreamingSeparator(OracleSeparator(), rate)
    latency = running.latency_samples
    whole = stream(running, mix)[:, :, latency + at:latency + at + rate // 2]

    def joined(history):
        fresh = StreamingSeparator(OracleSeparator(), rate)
        return stream(fresh, mix[:, at - history:])[:, :, latency + history:latency + history + rate // 2]

    settle = running.settle_samples
    assert 0 < settle < rate // 100
    assert np.abs(joined(settle) - whole).max() < 1e-4
    assert np.abs(joined(0) - whole).max() > 0.01
