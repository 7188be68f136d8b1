"""`stemd bench` is one entry point: row providers through --only, suites with their own arguments."""

from __future__ import annotations

import json
import subprocess
import sys


def _stemd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stemd", *args], capture_output=True, text=True, timeout=120)


def test_a_suite_gets_its_own_arguments_help_included():
    out = _stemd("bench", "intent", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: stemd bench intent")


def test_the_osc_suite_runs_through_stemd_bench_and_writes_json(tmp_path):
    target = tmp_path / "osc.json"
    out = _stemd("bench", "osc", "--seconds", "0.2", "--windows", "1", "--json", str(target))
    assert out.returncode == 0, out.stderr
    rows = json.loads(target.read_text())
    assert {r["target"] for r in rows} == {"baseline", "stemd"}
    assert all(r["lost"] == 0 and r["answered"] > 0 for r in rows)


def test_bench_help_names_the_suites():
    out = _stemd("bench", "--help")
    assert out.returncode == 0, out.stderr
    assert "stemd bench {voice,intent,osc,xruns,recovery}" in " ".join(out.stdout.split())
