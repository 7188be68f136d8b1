"""The xrun soak benchmark: jackd's reports counted right, and the live rig (jackd2, jack_metro,
jack_rec, `stemd run`) runs end to end through `stemd bench xruns`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stemd.benchmarks.xrun_soak import count

JACKD_LOG = """\
JackEngine::XRun: client = stemd was not finished, state = Triggered
JackEngine::XRun: client = stemd was not finished, state = Running
JackAudioDriver::ProcessGraphAsyncMaster: Process error
JackTimedDriver::Process XRun = 7 usec
JackEngine::XRun: client = stemd was not finished, state = Running
JackEngine::XRun: client = jackrec was not finished, state = Triggered
JackTimedDriver::Process XRun = 912 usec
"""


def test_jackd_reports_are_counted_per_overrun_and_per_culprit():
    # Triggered then Running for one late cycle is one overrun; a lone Running is another.
    assert count(JACKD_LOG.splitlines()) == (2, 1, 2)


@pytest.mark.jack
def test_the_soak_runs_through_stemd_bench_with_c_clients_and_writes_json(tmp_path):
    target = tmp_path / "soak.json"
    out = subprocess.run([sys.executable, "-m", "stemd", "bench", "xruns", "--seconds", "3", "--configs", "dry",
                          "--json", str(target)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(target.read_text())["results"]
    assert result["config"] == "dry" and result["seconds"] == 3 and result["output_at_end"] == "dry"
    assert result["worker_priority"] is None  # no worker in dry mode
    assert result["underruns"] == 0 and result["dry_seconds"] == []  # dry by choice is no underrun
    assert "blamed on stemd" in out.stdout
