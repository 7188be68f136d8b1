"""Auto latency (`[audio] latency_ms = 0`): the worker measures its compute before the daemon joins
JACK, lengthens the hop when compute would not keep up, and the daemon reports the L that needs
through JACK and status — then keeps it, worker restarts included. The oracle separator's busy-wait
stands in for a model's compute: a known cost per hop, so the minimum L is known."""

import pytest
from daemon_harness import running_daemon
from oracle_separator import OracleSeparator
from test_daemon_jack import impulse_delay, reported_latency, wait_until, xrun_free

from stemd.daemon import latency_budget
from stemd.daemon.latency_budget import render_lead
from stemd.engines.streaming import StreamingSeparator

pytestmark = pytest.mark.jack

AUTO = {"latency_ms": 0.0, "dry_crossfade_ms": 10.0}


def test_slow_model_gets_a_longer_hop_and_a_latency_that_covers_its_compute(jackd, tmp_path):
    busy_ms = 60.0  # > 60 % of the oracle's 50 ms default hop: auto must lengthen the hop
    with running_daemon(jackd, tmp_path, busy_ms=busy_ms, audio=AUTO) as daemon:
        plan = daemon.stats()["latency"]
        latency = daemon.jack.path.latency
        assert plan["mode"] == "auto", plan
        assert plan["compute_p95_ms"] >= busy_ms
        assert plan["hop_ms"] > 1000 * OracleSeparator.streaming.hop_s
        assert plan["compute_p95_ms"] <= latency_budget.HOP_SHARE * plan["hop_ms"] + 1.0 or not plan["fits"]
        need = latency_budget.minimum(daemon.engine.info["latency_frames"], busy_ms, jackd.period,
                                      round(0.01 * jackd.rate), jackd.rate, render_lead(jackd.rate, jackd.period))
        assert latency >= need, (latency, need, plan)
        assert f"latency {1000 * latency / jackd.rate:.0f} ms" in plan["reason"]
        (cap_lo, cap_hi), (play_lo, play_hi) = reported_latency(jackd)
        assert cap_lo == cap_hi == play_lo == play_hi == latency
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15), daemon.stats()
        delay = xrun_free(daemon, lambda: impulse_delay(jackd, daemon))
        assert abs(delay - latency) <= jackd.period, (delay, latency)

        # Decided once: a restarted worker runs the same geometry at the same L, uncalibrated.
        pid = daemon.engine.process.pid
        daemon.engine.process.kill()
        assert wait_until(lambda: daemon.engine.ready and daemon.engine.process.pid != pid, 30), daemon.stats()
        assert daemon.engine.info["plan"] is None
        assert daemon.engine.info["latency"] == latency == daemon.jack.path.latency
        assert 1000 * daemon.engine.info["geometry"]["hop"] == pytest.approx(plan["hop_ms"], abs=0.1)
        assert reported_latency(jackd)[0] == (latency, latency)


def test_fast_model_keeps_its_hop_and_gets_its_minimum_plus_the_margin(jackd, tmp_path):
    with running_daemon(jackd, tmp_path, audio=AUTO) as daemon:
        plan = daemon.engine.info["plan"]  # unrounded, as the worker decided
        latency = daemon.jack.path.latency
        need = latency_budget.minimum(daemon.engine.info["latency_frames"], plan.compute_p95_ms,
                                      jackd.period, round(0.01 * jackd.rate), jackd.rate,
                                      render_lead(jackd.rate, jackd.period))
        margin = latency_budget.frames(max(latency_budget.MARGIN_MS,
                                           latency_budget.MARGIN_SHARE * plan.compute_p95_ms), jackd.rate)
        step = latency_budget.frames(latency_budget.ROUND_MS, jackd.rate)
        default_hop_ms = 1000 * OracleSeparator.streaming.hop_s
        busy = plan.compute_p95_ms > latency_budget.HOP_SHARE * default_hop_ms  # a burst of load on this machine
        assert busy or plan.hop_s == pytest.approx(default_hop_ms / 1000, abs=1e-4), plan
        assert need == plan.minimum and need + margin <= latency < need + margin + step, (latency, need, plan)
        assert daemon.stats()["latency"]["reason"] == plan.reason
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15), daemon.stats()


def test_auto_without_an_engine_uses_the_default(jackd, tmp_path):
    with running_daemon(jackd, tmp_path, model="dry", audio=AUTO) as daemon:
        assert daemon.jack.path.latency == round(latency_budget.TARGET_MS * jackd.rate / 1000)
        assert daemon.stats()["latency"]["mode"] == "auto"


def oracle_streams(busy_ms, grid=None):
    separator = OracleSeparator(busy_ms)
    if grid:
        separator.grid = grid  # as HTDemucs has: windows and hops in whole 1024-sample frames

    def build(hop_s, right_s):
        return StreamingSeparator(separator, 48000, None, hop_s, right_s), None
    return build


def test_auto_moves_the_hop_on_the_models_frame_grid():
    (stream, _), plan = latency_budget.plan(oracle_streams(40.0, grid=1024), False, False, 256, 480, 48000)
    assert stream.geometry.hop % 1024 == 0 and stream.geometry.hop > 1024 * round(0.05 * 44100 / 1024)
    assert plan.compute_p95_ms <= latency_budget.HOP_SHARE * 1000 * plan.hop_s
    assert plan.latency >= plan.minimum >= stream.latency_samples + 2 * 256 + 480 + round(0.04 * 48000)


def test_a_hop_set_in_the_config_is_kept_and_the_plan_says_it_is_too_short():
    (stream, _), plan = latency_budget.plan(oracle_streams(40.0), True, False, 256, 480, 48000)
    assert plan.hop_s == pytest.approx(OracleSeparator.streaming.hop_s)
    assert not plan.fits and "[engine] hop_ms" in plan.reason
    assert plan.latency >= plan.minimum
