"""The dry fallback on a real jackd2 honours what it can: when the stems stop coming (the worker
frozen with SIGSTOP, as a hung or late engine looks), the delayed dry signal plays at the master
gain, and `mute all` silences it — silence is what the performer asked for. Per-stem mutes cannot
apply to dry audio, which is how the test tells dry from separated on the wire."""

import os
import signal
import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from oracle_separator import WEIGHTS, OracleSeparator
from test_daemon_jack import wait_until
from test_daemon_resilience import AMP, envelope, tone_through

from stemd.control.commands import ALL, Action, Command
from stemd.daemon.mixer import db_to_gain

pytestmark = pytest.mark.jack

MASTER_DB = -6.0


def level(recorder, start, seconds, rate):
    """Median 10 ms peak level of the recording from frame `start` for `seconds`."""
    return float(np.median(envelope(recorder.data[0][start:start + round(seconds * rate)], rate)))


def test_the_dry_fallback_follows_master_gain_and_mute_all(jackd, tmp_path):
    rate = jackd.rate
    master = db_to_gain(MASTER_DB)
    # 250 ms: above the oracle's default lookahead once the margin and the render lead are reserved
    with running_daemon(jackd, tmp_path, audio={"latency_ms": 250.0}) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15), daemon.stats()
        plan = daemon.stats()["latency"]  # a fixed L is planned too: the rest above the margin is lookahead
        assert plan["mode"] == "fixed" and plan["right_ms"] > 1000 * OracleSeparator.streaming.right_s, plan
        shown = sum(v for k, v in plan["division_ms"].items() if not k.startswith("streaming_"))
        assert abs(shown - 1000 * daemon.jack.path.latency / rate) < 0.5, plan
        daemon.session.submit([Command(Action.MUTE, stem="vocals"),
                               Command(Action.GAIN, stem=ALL, db=MASTER_DB, absolute=True)], "test")
        player, recorder = tone_through(jackd, 6.0)
        time.sleep(0.8)
        wet_at = recorder.pos - round(0.5 * rate)
        pid = daemon.stats()["engine"]["pid"]
        os.kill(pid, signal.SIGSTOP)  # the stems stop: the path fades to dry after what is queued
        try:
            assert wait_until(lambda: not daemon.jack.path.stats.wet, 5), daemon.stats()
            time.sleep(0.4)
            dry_at = recorder.pos
            time.sleep(0.6)
            assert not daemon.jack.path.stats.wet, "the engine came back before the dry level was heard"
            daemon.session.submit([Command(Action.MUTE, stem=ALL)], "test")
            time.sleep(0.3)
            muted_at = recorder.pos
            time.sleep(0.6)
            still_dry = not daemon.jack.path.stats.wet
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # the watchdog already replaced the hung worker
        recorder.wait_full(20)
        player.close()
        recorder.close()

    wet = level(recorder, wet_at, 0.4, rate)
    dry = level(recorder, dry_at, 0.5, rate)
    silent = level(recorder, muted_at, 0.5, rate)
    print(f"fallback: separated {wet:.3f}, dry {dry:.3f}, dry after mute all {silent:.4f}")
    assert wet == pytest.approx(AMP * master * (1 - WEIGHTS["vocals"]), rel=0.05)
    assert dry == pytest.approx(AMP * master, rel=0.05), "the dry fallback ignored the master gain"
    assert still_dry and silent < 1e-3, "the dry fallback played through mute all"
