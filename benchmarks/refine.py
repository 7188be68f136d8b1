"""What the refiner buys and costs, on fixtures with known stems: the `refine` rows of `stemd bench`.

- `clean`: every stem of the fixture song leaks a share of itself into the other three (so the
  stems still add up to the mix, as a separator's do); SDR / SI-SDR of each stem against the true
  stem before and after Wiener re-masking.
- `dereverb`: the song's dry vocal convolved with a synthetic room (stereo exponentially decaying
  noise after a direct path, RT60 about 0.6 s); SDR / SI-SDR of the vocal against the dry vocal
  before and after online WPE, scored after the filter's first `SETTLE_S`.
- `clean+dereverb`: both problems at once, as "clean vocals, no reverb" asks: the reverberant vocal
  of `dereverb` inside the leaking stems of `clean`; the vocal against the dry vocal, for the stacked
  mode and for each mode alone on the same input (`alone`), scored after `SETTLE_S`; medians over
  three fixture songs, as one song swings the result by about ±1 dB.
- `off`: the STFT round trip alone (what every hop pays once the refiner is installed).
Cost is the refiner's own time per stream hop (the model's default hop, 2048 samples at 44.1 kHz),
median and p95, and the share of real time it takes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from stemd.engines.fixtures import STEMS, render_song
from stemd.engines.metrics import sdr, si_sdr
from stemd.engines.refine.refiner import Refiner

RATE = 44100
BLOCK = 2048  # HTDemucs' default streaming hop at 44.1 kHz
LEAK = 0.3
RT60_S = 0.6
SETTLE_S = 1.0
WORKER_MODEL = "spleeter2"  # the CPU default ("auto" without htdemucs weights)


def synthetic_rir(rate: int, rt60_s: float = RT60_S, seed: int = 0, direct_to_reverb_db: float = -3.0) -> np.ndarray:
    """[2, n] room impulse response: a unit direct path, then independent exponentially decaying
    noise per channel (-60 dB after `rt60_s`) whose energy sits `direct_to_reverb_db` from it."""
    rng = np.random.default_rng(seed)
    n = round(1.2 * rt60_s * rate)
    t = np.arange(n) / rate
    tail = rng.standard_normal((2, n)) * np.exp(-3.0 * np.log(10.0) * t / rt60_s)
    tail[:, :round(0.002 * rate)] = 0.0  # first reflections a couple of ms after the direct sound
    tail *= np.sqrt(10.0 ** (direct_to_reverb_db / 10.0) / np.sum(tail * tail, axis=1, keepdims=True))
    tail[:, 0] = 1.0
    return tail.astype(np.float32)


def reverberate(dry: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Each channel of a [2, n] signal through its channel of the room (same length out)."""
    n = dry.shape[1] + rir.shape[1]
    wet = np.fft.irfft(np.fft.rfft(dry, n) * np.fft.rfft(rir, n), n)
    return wet[:, :dry.shape[1]].astype(np.float32)


def leak(stems: np.ndarray, share: float = LEAK) -> np.ndarray:
    """[S, 2, n] stems where each gives `share` of itself to the others in equal parts (sum kept)."""
    s = stems.shape[0]
    spread = share * stems / (s - 1)
    return ((1.0 - share) * stems + spread.sum(axis=0, keepdims=True) - spread).astype(np.float32)


def run(refiner: Refiner, stems: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, list[float]]:
    """Stream [S, 2, n] stems through `refiner` in `block`s; the time-aligned output (latency removed)
    and the ms each block took."""
    n = stems.shape[2] // block * block
    pieces, ms = [], []
    for at in range(0, n, block):
        pieces.append(refiner.process(stems[:, :, at:at + block], refiner.rate))
        ms.append(refiner.last_ms)
    out = np.concatenate(pieces, axis=2)[:, :, refiner.latency_samples:]
    return out, ms


def score(reference: np.ndarray, before: np.ndarray, after: np.ndarray, skip: int = 0) -> dict[str, float]:
    """SDR and SI-SDR before and after, on the samples both cover from `skip` on."""
    n = after.shape[-1]
    ref, bef, aft = reference[..., skip:n], before[..., skip:n], after[..., skip:n]
    return {"sdr_before": sdr(ref, bef), "sdr_after": sdr(ref, aft),
            "si_sdr_before": si_sdr(ref, bef), "si_sdr_after": si_sdr(ref, aft)}


def measure_clean(seconds: float = 6.0, seed: int = 0, stem: str = "vocals") -> dict[str, Any]:
    song = render_song(seconds, RATE, seed)
    truth = song.stacked
    bleeding = leak(truth)
    refiner = Refiner(list(STEMS), RATE, BLOCK, budget=float("inf"))
    for s in STEMS:
        refiner.set_mode(s, "clean")
    out, ms = run(refiner, bleeding)
    per_stem = {s: score(truth[i], bleeding[i], out[i], RATE // 2) for i, s in enumerate(STEMS)}
    return {"mode": "clean", "stem": stem, **per_stem[stem], "per_stem": per_stem, "ms": ms}


def measure_dereverb(seconds: float = 6.0, seed: int = 0) -> dict[str, Any]:
    song = render_song(seconds, RATE, seed)
    dry = song.stems["vocals"]
    wet = reverberate(dry, synthetic_rir(RATE, seed=seed))
    stems = song.stacked.copy()
    stems[STEMS.index("vocals")] = wet
    refiner = Refiner(list(STEMS), RATE, BLOCK, budget=float("inf"))
    refiner.set_mode("vocals", "dereverb")
    out, ms = run(refiner, stems)
    result = score(dry, wet, out[STEMS.index("vocals")], round(SETTLE_S * RATE))
    return {"mode": "dereverb", "stem": "vocals", **result, "ms": ms}


STACKED_SEEDS = (0, 1, 2)  # one fixture song swings the stacked gain by ±1 dB: the median of three


def measure_stacked(seconds: float = 6.0, seeds: tuple[int, ...] = STACKED_SEEDS) -> dict[str, Any]:
    """Each mode on the same input per seed; SDR / SI-SDR before and after are the medians over the
    seeds, `alone_sdr_gain_db` the median gain of clean and of dereverb alone."""
    runs = [_stacked_once(seconds, seed) for seed in seeds]
    medians = {k: float(np.median([r["clean+dereverb"][0][k] for r in runs])) for k in runs[0]["clean+dereverb"][0]}
    alone = {m: round(float(np.median([r[m][0]["sdr_after"] - r[m][0]["sdr_before"] for r in runs])), 2)
             for m in ("clean", "dereverb")}
    ms = [t for r in runs for t in r["clean+dereverb"][1]]
    return {"mode": "clean+dereverb", "stem": "vocals", **medians, "ms": ms, "alone_sdr_gain_db": alone}


def _stacked_once(seconds: float, seed: int) -> dict[str, tuple[dict[str, float], list[float]]]:
    song = render_song(seconds, RATE, seed)
    dry = song.stems["vocals"]
    wet = song.stacked.copy()
    v = STEMS.index("vocals")
    wet[v] = reverberate(dry, synthetic_rir(RATE, seed=seed))
    bleeding = leak(wet)
    results = {}
    for mode in ("clean", "dereverb", "clean+dereverb"):
        refiner = Refiner(list(STEMS), RATE, BLOCK, budget=float("inf"))
        refiner.set_mode("vocals", mode)
        if mode != "dereverb":  # clean-up re-masks every stem against the others
            for s in (s for s in STEMS if s != "vocals"):
                refiner.set_mode(s, "clean")
        out, ms = run(refiner, bleeding)
        results[mode] = (score(dry, bleeding[v], out[v], round(SETTLE_S * RATE)), ms)
    return results


def measure_off(seconds: float = 6.0, seed: int = 0) -> dict[str, Any]:
    song = render_song(seconds, RATE, seed)
    refiner = Refiner(list(STEMS), RATE, BLOCK)
    out, ms = run(refiner, song.stacked)
    return {"mode": "off", "stem": "all", **score(song.stacked, song.stacked, out), "ms": ms}


def worker_rows(options: Any, model: str = WORKER_MODEL) -> list:
    """The stream as the worker runs it (CPU default model, its default geometry, JACK-period blocks)
    with the refiner off, cleaning every stem, and dereverbing the vocals: compute per hop including
    the refiner, against the same stream with it off, and whether that stays real time."""
    from stemd.engines.demucs_backend import torch_threads
    from stemd.engines.registry import ModelNotAvailable, load_separator
    from stemd.engines.streaming import StreamingSeparator
    from stemd.benchmarks.streaming import BenchRow

    threads = options.threads or max(1, (os.cpu_count() or 2) - 1)
    try:
        separator = load_separator(model, device=options.device, backend=options.backend)
    except ModelNotAvailable as exc:
        return [BenchRow(f"{model}+refine", options.backend, note=f"not available: {exc}")]
    mix = render_song(options.seconds, options.rate, seed=0).mix
    rows, baseline = [], None
    for label, modes in (("off", {}), ("clean", dict.fromkeys(separator.sources, "clean")),
                         ("dereverb", {"vocals": "dereverb"}),
                         ("clean+dereverb", {**dict.fromkeys(separator.sources, "clean"), "vocals": "clean+dereverb"})):
        stream = StreamingSeparator(separator, options.rate)
        refiner = Refiner(stream.sources, stream.model_rate, stream.geometry.hop, budget=float("inf"))
        stream.add_post(refiner)
        for stem, mode in modes.items():
            refiner.set_mode(stem, mode)
        with torch_threads(threads):
            for at in range(0, mix.shape[1], options.period):
                stream.process(mix[:, at:at + options.period])
        ms = np.asarray(stream.compute_ms)
        baseline = baseline or float(np.median(ms))
        g = stream.geometry
        rtf = stream.real_time_factor
        rows.append(BenchRow(
            model=f"{separator.name}+refine:{label}", backend=options.backend, device=options.device,
            window_s=g.window / g.rate, hop_ms=1000.0 * g.hop / g.rate, right_ms=1000.0 * g.right / g.rate,
            ms_median=float(np.median(ms)), ms_p95=float(np.percentile(ms, 95)), ms_max=float(ms.max()), rtf=rtf,
            latency_ms=1000.0 * stream.latency_samples / options.rate,
            extra={"vs_refiner_off": round(float(np.median(ms)) / baseline, 2), "real_time": rtf < 1.0},
            note=f"separator + refiner per hop, as in the worker: {float(np.median(ms)) / baseline:.2f}x the "
                 f"refiner-off hop; {'real time' if rtf < 1.0 else 'NOT real time'} here",
        ))
    return rows


def refine_rows(options: Any) -> list:
    """`stemd bench` rows (provider "refine"): one per mode, on `options.seconds` of the fixture."""
    from stemd.benchmarks.streaming import BenchRow

    hop_ms = 1000.0 * BLOCK / RATE
    latency_ms = 1000.0 * Refiner(list(STEMS), RATE, BLOCK).latency_samples / RATE
    rows = []
    for measure in (measure_off, measure_clean, measure_dereverb, measure_stacked):
        m = measure(max(options.seconds, 3.0))
        ms = np.asarray(m["ms"])
        if m["mode"] == "off":  # nothing to improve: how exact the STFT round trip is
            gains = {"round_trip_sdr_db": round(m["sdr_after"], 1)}
        else:
            gains = {"sdr_gain_db": round(m["sdr_after"] - m["sdr_before"], 2),
                     "sdr_before_db": round(m["sdr_before"], 2), "sdr_after_db": round(m["sdr_after"], 2),
                     "si_sdr_gain_db": round(m["si_sdr_after"] - m["si_sdr_before"], 2)}
            if "alone_sdr_gain_db" in m:
                gains["alone_sdr_gain_db"] = m["alone_sdr_gain_db"]
        rows.append(BenchRow(
            model=f"refine:{m['mode']}", backend="numpy", device="cpu", hop_ms=hop_ms,
            ms_median=float(np.median(ms)), ms_p95=float(np.percentile(ms, 95)), ms_max=float(ms.max()),
            rtf=float(np.median(ms)) / hop_ms, latency_ms=latency_ms,
            extra={f"sdr ({m['stem']})": gains},
            note="refiner alone, per stream hop; latency is the refiner's own",
        ))
    return rows + worker_rows(options)
