"""Soak: music through the daemon with the engine worker busy, counting xruns and underruns.

Short in CI (12 s); `--long` runs 10 minutes. The counts are reported (printed as a table and JSON),
not asserted: they depend on the machine. What is asserted cannot depend on load: the output never
went silent, never switched without a crossfade, and the process callback never raised.
"""

import json
import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player, Recorder
from test_daemon_jack import wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]

BUSY_MS = 15.0  # oracle compute per 50 ms hop: the worker uses ~30 % of a core, like a light model


def music(rate, seconds=4.0):
    rng = np.random.default_rng(7)
    t = np.arange(round(seconds * rate)) / rate
    beat = (np.sin(2 * np.pi * 2 * t) > 0.95).astype(np.float32)
    x = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.1 * np.sin(2 * np.pi * 660 * t) + 0.05 * rng.standard_normal(t.size)
    x = (x + 0.3 * beat * rng.standard_normal(t.size)).astype(np.float32)
    return np.stack([x, np.roll(x, 123)])


def test_soak_with_the_worker_loaded(jackd, tmp_path, request):
    seconds = 600.0 if request.config.getoption("--long") else 12.0
    rate = jackd.rate
    with running_daemon(jackd, tmp_path, busy_ms=BUSY_MS) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15), daemon.stats()
        player = Player(jackd, music(rate), loop=True)
        recorder = Recorder(jackd, 1, seconds)
        player.connect("stemd:in_L", "stemd:in_R")
        recorder.connect("stemd:out_L")
        player.play()
        time.sleep(0.5)  # past L: the recording starts on music
        start = daemon.stats()
        recorder.start()
        recorder.wait_full(seconds * 3 + 10)
        end = daemon.stats()
        player.close()
        recorder.close()
        render_errors = daemon.jack.renderer.errors

    report = {
        "seconds": seconds, "rate": rate, "period": end["period"], "worker_busy_ms_per_hop": BUSY_MS,
        "xruns": end["xruns"] - start["xruns"], "underrun_periods": end["underruns"] - start["underruns"],
        "periods": end["periods"] - start["periods"], "hard_switches": end["hard_switches"],
        "engine_rtf": round(end["engine"]["rtf"], 3), "engine_restarts": end["engine"]["restarts"],
        "resyncs": end["engine"]["resyncs"],
    }
    print("\nsoak   " + "  ".join(f"{k}={v}" for k, v in report.items()))
    print("soak-json " + json.dumps(report))
    silent = np.abs(recorder.data[0].reshape(-1, round(0.05 * rate))).max(axis=1) < 1e-3
    assert not silent.any(), f"{silent.sum()} silent 50 ms windows"
    assert end["hard_switches"] == 0
    assert render_errors == 0
