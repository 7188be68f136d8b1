"""The quality-latency frontier: `stemd bench --only frontier`.

For each model and each L in `LATENCIES_MS` (and the L auto picks), the geometry the daemon's latency
plan chooses at that L (hop, lookahead, window, margin; compute measured once per model, as the
worker does at start, unless `--compute-ms` pins it) and, for pretrained models, the quality of the
stream at that geometry: SDR / SI-SDR per stem against the fixture songs' true stems and against the
model's own offline output, medians over `SONG_SEEDS` (songs not used to tune the streaming, which
was tuned on seeds 100 and 101). Random-weight models (HTDemucs sizes) get geometry and compute only:
what a GPU user will get, without a quality that would mean nothing.

Besides the rows, the run writes `frontier-<model>.json` and `frontier-<model>.png` (quality against
L, one line per stem, offline dashed) into `benchmarks/results/`, or `--out`. The compute is the one
input that depends on the machine's load: on a shared machine `--compute-ms` pins the p95 measured
when it was quiet, and the rows say which it was.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from stemd.benchmarks.quality import offline_estimate, scores, scores_against, streaming_estimate
from stemd.benchmarks.streaming import RANDOM_MODELS, BenchOptions, BenchRow, daemon_reserves, per_model
from stemd.daemon import latency_budget
from stemd.engines.fixtures import render_song

LATENCIES_MS = (150, 200, 250, 300, 400, 500, 600)  # the grid, and two more to show where it bends
SONG_SEEDS = (1, 2, 3)
RESULTS = Path(__file__).parent / "results"


def frontier_rows(options: BenchOptions) -> list[BenchRow]:
    """One row per (model, L); writes the JSON and plots as a side product (see the module docstring)."""
    def rows_for(name: str, separator: Any) -> list[BenchRow]:
        rows = model_rows(separator, options, quality=name not in RANDOM_MODELS)
        write(rows, Path(options.out) if options.out else RESULTS)
        return rows
    return per_model(options, rows_for)


def write(rows: list[BenchRow], out: Path) -> None:
    """One model's rows as `frontier-<model>.json`, and its plot `frontier-<model>.png` when the rows
    have quality (runs for different models, or with a pinned compute, do not overwrite each other)."""
    out.mkdir(parents=True, exist_ok=True)
    model = rows[0].model
    (out / f"frontier-{model}.json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    if rows[0].extra.get("quality_streaming"):
        plot(rows, out / f"frontier-{model}.png")


def model_rows(separator: Any, options: BenchOptions, quality: bool) -> list[BenchRow]:
    rate, period = options.rate, options.period
    reserves = daemon_reserves(rate, period)
    build = latency_budget.stream_builder(separator, rate, options.window_s)
    compute = options.compute_ms
    measured = compute is None
    if measured:  # one calibration for every L, as the worker makes one at start
        compute = latency_budget.fit_hop(build, False)[1]
    songs = [render_song(options.seconds, rate, seed=seed) for seed in SONG_SEEDS] if quality else []
    offline = [offline_estimate(separator, song) for song in songs]
    rows, scored = [], {}
    for target in (*LATENCIES_MS, 0):
        (stream, _), plan = latency_budget.plan(build, False, False, period, reserves["crossfade"], rate,
                                                latency_budget.frames(target, rate), compute,
                                                render_lead=reserves["render_lead"])
        row = _geometry_row(separator, options, plan)
        row.extra["compute"] = "measured" if measured else "pinned by --compute-ms"
        if quality:
            g = stream.geometry
            key = (g.window, g.hop, g.right)  # Ls too short for any lookahead share one geometry: stream it once
            if key not in scored:
                streamed = [streaming_estimate(stream, song, period) for song in songs]
                scored[key] = {
                    "quality_streaming": _median([scores(s, separator.sources, x) for s, x in zip(songs, streamed)]),
                    "quality_offline": _median([scores(s, separator.sources, x) for s, x in zip(songs, offline)]),
                    "sdr_vs_offline": _median([scores_against(list(ref), separator.sources, x, rate)
                                               for x, ref in zip(streamed, offline)]),
                }
            row.extra.update(scored[key])
        rows.append(row)
    return rows


def _geometry_row(separator: Any, options: BenchOptions, plan: latency_budget.Plan) -> BenchRow:
    division = plan.as_dict(options.rate)
    row = BenchRow(separator.name, options.backend, str(getattr(separator, "device", "cpu")), round(plan.window_s, 3),
                   1000.0 * plan.hop_s, 1000.0 * plan.right_s, ms_p95=plan.compute_p95_ms,
                   latency_ms=1000.0 * plan.latency / options.rate, budget_ms=1000.0 * plan.minimum / options.rate)
    row.extra = {"mode": plan.mode, "fits": plan.fits, "division_ms": division["division_ms"],
                 "songs": list(SONG_SEEDS), "seconds": options.seconds, "rate": options.rate, "period": options.period}
    row.note = ("auto L. " if plan.mode == "auto" else "") + plan.reason
    return row


def _median(per_song: list[dict]) -> dict:
    return {stem: {metric: round(float(np.median([s[stem][metric] for s in per_song])), 2)
                   for metric in per_song[0][stem]} for stem in per_song[0]}


def plot(rows: list[BenchRow], path: Path) -> None:
    """Quality against L: SDR vs the true stems per stem (solid), the offline SDR (dashed), and the
    agreement with offline on a second axis; the auto L marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r.latency_ms)
    stems = list(rows[0].extra["quality_streaming"])
    fig, (truth, agree) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [r.latency_ms for r in rows]
    short = [r for r in rows if not r.extra["fits"]]
    for i, stem in enumerate(stems):
        colour = f"C{i}"
        truth.plot(xs, [r.extra["quality_streaming"][stem]["sdr"] for r in rows], "o-", color=colour,
                   label=f"{stem} streaming")
        truth.axhline(rows[0].extra["quality_offline"][stem]["sdr"], color=colour, ls="--", label=f"{stem} offline")
        agree.plot(xs, [r.extra["sdr_vs_offline"][stem]["sdr"] for r in rows], "o-", color=colour, label=stem)
        for axis, key in ((truth, "quality_streaming"), (agree, "sdr_vs_offline")):
            # An L that cannot hold compute and margin plays mostly dry in the daemon: hollow points.
            axis.plot([r.latency_ms for r in short], [r.extra[key][stem]["sdr"] for r in short], "o", color="white",
                      markeredgecolor=colour, label="L too short: mostly dry" if i == len(stems) - 1 else None)
    for axis, title in ((truth, "SDR vs true stems (dB)"), (agree, "SDR vs the model's offline output (dB)")):
        for r in rows:
            if r.extra["mode"] == "auto":
                axis.axvline(r.latency_ms, color="grey", ls=":", label="auto L")
        axis.set_xlabel("latency L (ms)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(f"{rows[0].model}: quality vs latency (medians of {len(rows[0].extra['songs'])} fixture songs, "
                 f"{rows[0].extra['seconds']:g} s; compute p95 {rows[0].ms_p95:.0f} ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
