"""`stemd bench --only frontier`: the latency plan's geometry at every L of the grid and auto, the
quality per stem against the truth and against the model's offline output, and the JSON and plot
written next to each other. The oracle separator (stems = fixed fractions of the input) stands in
for a model where quality must come out: its streaming output is its offline output delayed, so any
misalignment in the frontier's scoring shows as a low SDR against offline."""

from __future__ import annotations

import json
import subprocess
import sys

from oracle_separator import OracleSeparator

from stemd.benchmarks import frontier
from stemd.benchmarks.streaming import BenchOptions
from stemd.config import SCHEMA
from stemd.daemon import latency_budget


def test_geometry_rows_for_a_random_weight_model_through_the_cli(tmp_path):
    out = subprocess.run([sys.executable, "-m", "stemd", "bench", "--only", "frontier", "--models", "small",
                          "--compute-ms", "5", "--out", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["latency_ms"] for r in rows[:-1]] == list(frontier.LATENCIES_MS) and rows[-1]["extra"]["mode"] == "auto"
    assert {150, 200, 250, 300, 400} <= set(frontier.LATENCIES_MS)
    for r in rows:
        parts = r["extra"]["division_ms"]
        assert abs(sum(v for k, v in parts.items() if not k.startswith("streaming_")) - r["latency_ms"]) < 0.5
        assert r["ms_p95"] == 5 and r["extra"]["compute"] == "pinned by --compute-ms"
        assert "quality_streaming" not in r["extra"]  # random weights: geometry and compute only
        # The daemon's reserves, not the bench's own: the auto L here is the one the daemon picks.
        rate, period = r["extra"]["rate"], r["extra"]["period"]
        crossfade_ms = SCHEMA["audio"].keys["dry_crossfade_ms"].default
        assert parts["render_lead"] == round(1000 * latency_budget.render_lead(rate, period) / rate, 1) > 0
        assert parts["dry_crossfade"] == round(1000 * latency_budget.dry_crossfade(crossfade_ms, rate) / rate, 1)
    rights = [r["right_ms"] for r in rows[:-1]]
    assert rights == sorted(rights) and rights[-1] > rights[0]
    assert json.loads((tmp_path / "frontier-small.json").read_text()) == rows
    assert not (tmp_path / "frontier-small.png").exists()


def test_quality_rows_score_the_planned_stream_and_plot_it(tmp_path):
    options = BenchOptions(models=[], seconds=2.0, compute_ms=2.0, out=str(tmp_path))
    separator = OracleSeparator()
    separator.streaming = type(separator.streaming)(window_s=1.0, hop_s=0.05, right_s=0.1)
    rows = frontier.model_rows(separator, options, quality=True)
    frontier.write(rows, tmp_path)
    for r in rows:
        assert set(r.extra["quality_streaming"]) == set(OracleSeparator.sources)
        assert min(s["sdr"] for s in r.extra["sdr_vs_offline"].values()) > 30, r.extra["sdr_vs_offline"]
    auto = rows[-1]
    assert auto.extra["mode"] == "auto" and auto.right_ms >= 100 - 0.1
    png = (tmp_path / "frontier-oracle.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
