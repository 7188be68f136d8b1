"""The latency plan's arithmetic: L is exactly the sum of the parts it reports, whatever L is left
once compute fits goes to the lookahead R, and the stream it hands the worker stays sample-aligned
(its stems are the input exactly `latency_samples` late) at every L of the frontier grid. The oracle
separator's stems add up to the input, so any misalignment shows as a difference from the delayed
input; its busy-wait is a known compute per hop."""

import dataclasses

import numpy as np
import pytest
from oracle_separator import OracleSeparator

from stemd.daemon import latency_budget
from stemd.engines.metrics import sdr
from stemd.engines.separator import StreamingDefaults
from stemd.engines.streaming import StreamingSeparator

RATE, PERIOD, CROSSFADE = 48000, 256, 480
GRID_MS = (150, 200, 250, 300, 400)
# Spleeter-like: a 1.4 s window on a 1024-sample frame grid, so R has room to grow.
LONG = StreamingDefaults(window_s=60 * 1024 / 44100, hop_s=2048 / 44100, right_s=0.02)


def streams(busy_ms=2.0, defaults=LONG):
    separator = OracleSeparator(busy_ms)
    separator.streaming = defaults
    separator.grid = 1024

    def build(hop_s, right_s):
        return StreamingSeparator(separator, RATE, None, hop_s, right_s), None
    return build


def frames(ms):
    return latency_budget.frames(ms, RATE)


def total(plan):
    return plan.streaming + plan.compute + plan.periods + plan.dry_crossfade + plan.margin


@pytest.mark.parametrize("latency_ms", GRID_MS)
def test_fixed_latency_is_exactly_its_parts_and_the_rest_is_lookahead(latency_ms):
    (stream, _), plan = latency_budget.plan(streams(), False, False, PERIOD, CROSSFADE, RATE, frames(latency_ms))
    assert plan.mode == "fixed" and plan.latency == frames(latency_ms) == total(plan)
    assert plan.streaming == stream.latency_samples and plan.periods == 2 * PERIOD
    assert plan.dry_crossfade == CROSSFADE and plan.compute == frames(plan.compute_p95_ms)
    g = stream.geometry
    assert plan.right_s == g.right / g.rate and plan.hop_s == g.hop / g.rate
    floor = frames(max(latency_budget.MARGIN_MS, latency_budget.MARGIN_SHARE * plan.compute_p95_ms))
    if 0 < g.right < latency_budget.MAX_LOOKAHEAD_SHARE * g.window:
        # R took everything above the margin: one more sample of R would not fit.
        assert floor <= plan.margin and stream.latency_with_right(g.right + 1) > plan.streaming + plan.margin - floor
    parts = plan.as_dict(RATE)["division_ms"]
    shown = sum(v for k, v in parts.items() if not k.startswith("streaming_"))
    assert shown == pytest.approx(latency_ms, abs=0.5)
    assert sum(v for k, v in parts.items() if k.startswith("streaming_")) == pytest.approx(parts["streaming"], abs=0.5)
    assert f"latency {latency_ms} ms" in plan.reason and "lookahead" in plan.reason


def test_more_latency_buys_more_lookahead_at_the_same_hop():
    plans = [latency_budget.plan(streams(), False, False, PERIOD, CROSSFADE, RATE, frames(ms))[1] for ms in GRID_MS]
    rights = [p.right_s for p in plans]
    assert rights == sorted(rights) and rights[-1] > rights[0] + 0.2, rights
    assert len({p.hop_s for p in plans}) == 1


@pytest.mark.parametrize("latency_ms", GRID_MS)
def test_the_planned_stream_is_the_input_exactly_latency_late(latency_ms):
    (stream, _), plan = latency_budget.plan(streams(), False, False, PERIOD, CROSSFADE, RATE, frames(latency_ms))
    rng = np.random.default_rng(latency_ms)
    n = RATE
    t = np.arange(n + stream.latency_samples + PERIOD) / RATE
    # Random tones well inside both rates' passbands (resampling to 44.1 kHz and back keeps them).
    tones = [np.sin(2 * np.pi * f * t + p) for f, p in zip(rng.uniform(50, 15000, 40), rng.uniform(0, 6, 40))]
    x = (0.02 * np.stack([sum(tones[:20]), sum(tones[20:])])).astype(np.float32)
    x[:, n:] = 0.0
    out = np.concatenate([stream.process(x[:, p:p + PERIOD]) for p in range(0, x.shape[1], PERIOD)], axis=2).sum(0)
    lag = stream.latency_samples
    keep = slice(int(0.5 * RATE), n - RATE // 10)
    scores = {d: sdr(x[:, keep], out[:, lag + d:lag + d + n][:, keep]) for d in (-1, 0, 1)}
    assert scores[0] > 30 and scores[0] > max(scores[-1], scores[1]) + 10, scores


def test_auto_spends_the_models_lookahead_and_rounds_up_into_it():
    (stream, _), plan = latency_budget.plan(streams(), False, False, PERIOD, CROSSFADE, RATE)
    assert plan.mode == "auto" and plan.latency == total(plan)
    assert plan.latency % frames(latency_budget.ROUND_MS) == 0
    assert plan.right_s >= LONG.right_s - 1 / 44100
    floor = frames(max(latency_budget.MARGIN_MS, latency_budget.MARGIN_SHARE * plan.compute_p95_ms))
    assert floor <= plan.margin and plan.fits, plan


def test_a_latency_below_the_minimum_gets_no_lookahead_and_says_how_much_is_needed():
    (stream, _), plan = latency_budget.plan(streams(), False, False, PERIOD, CROSSFADE, RATE, frames(40))
    assert plan.right_s == 0 and plan.margin < 0 and not plan.fits
    assert plan.latency == total(plan) and "raise [audio] latency_ms to at least" in plan.reason


def test_a_configured_lookahead_is_kept_and_the_rest_is_margin():
    def build(hop_s, right_s):
        return streams()(hop_s, 0.05 if right_s is None else right_s)
    (stream, _), plan = latency_budget.plan(build, False, True, PERIOD, CROSSFADE, RATE, frames(300))
    assert stream.geometry.right == round(0.05 * 44100) and plan.latency == total(plan)
    assert plan.margin > frames(100)


def test_lookahead_leaves_the_window_half_its_past():
    short = dataclasses.replace(LONG, window_s=0.3)
    (stream, _), plan = latency_budget.plan(streams(defaults=short), False, False, PERIOD, CROSSFADE, RATE,
                                            frames(400))
    g = stream.geometry
    assert g.right <= latency_budget.MAX_LOOKAHEAD_SHARE * g.window and plan.latency == total(plan)
