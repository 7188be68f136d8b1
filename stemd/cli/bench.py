"""`stemd bench`: the one entry point to every benchmark in `benchmarks/` (installed as
`stemd.benchmarks`), apart from the product code they measure.

- `stemd bench [--only NAME ...] [--json] [--models ...]`: engines, backends and devices measured
  the same way and printed as one table (or JSON). Rows come from providers: name ->
  "module:function", the function taking BenchOptions and returning BenchRows; a new measurement
  is one line in PROVIDERS. Providers are imported only when run, so a missing runtime costs nothing.
- `stemd bench SUITE [ARGS ...]`: a benchmark with its own rig and options (voice, intent, OSC and web
  load); ARGS go to that suite's `main(argv)` unchanged (`stemd bench voice --help`).
"""

from __future__ import annotations

import argparse
import importlib
import json
from dataclasses import asdict

from stemd.cli.json_output import json_stdout

HELP = ("Benchmark the streaming engine per model/backend/device: ms per hop (median/p95/max), real-time "
        "factor, latency budget, peak memory, and streaming-vs-offline SDR per stem; or run one suite "
        "(voice, intent, osc, web) with its own arguments.")

PROVIDERS: dict[str, str] = {
    "streaming": "stemd.benchmarks.streaming:streaming_rows",
    "quality": "stemd.benchmarks.quality:quality_rows",
    "refine": "stemd.benchmarks.refine:refine_rows",
    "backends": "stemd.benchmarks.backends:backend_rows",
    "frontier": "stemd.benchmarks.frontier:frontier_rows",
    "spleeter": "stemd.benchmarks.spleeter_stems:spleeter_rows",
}
# name -> "module:main"; main takes the suite's own argv and returns an exit status.
SUITES: dict[str, str] = {
    "voice": "stemd.benchmarks.voice:main",
    "intent": "stemd.benchmarks.intent:main",
    "osc": "stemd.benchmarks.osc_load:main",
    "web": "stemd.benchmarks.web_load:main",
    "xruns": "stemd.benchmarks.xrun_soak:main",
    "recovery": "stemd.benchmarks.recovery:main",
    "command-delay": "stemd.benchmarks.command_delay:main",
    "midi-clock": "stemd.benchmarks.midi_clock:main",
}
DEFAULT_PROVIDERS = [name for name in PROVIDERS if name not in ("frontier", "spleeter")]  # minutes each: ask for them
DEFAULT_MODELS = ["small", "htdemucs-size", "htdemucs", "spleeter2"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (f"Suites with their own rig and options: stemd bench {{{','.join(SUITES)}}} [ARGS ...] "
                     "(stemd bench voice --help).")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help="small and htdemucs-size are random-weight HTDemucs (always available); "
                             "other names load through the model registry")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the fixture song streamed")
    parser.add_argument("--rate", type=int, default=48000, help="JACK sample rate")
    parser.add_argument("--period", type=int, default=256, help="JACK period (block size)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--backend", default="torch", help="inference backend")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = all cores but one")
    parser.add_argument("--window", type=float, help="context window W in s (default: the model's)")
    parser.add_argument("--hop-ms", type=float, help="hop H in ms (default: the model's)")
    parser.add_argument("--right-ms", type=float, help="right context R in ms (default: the model's)")
    parser.add_argument("--only", nargs="+", choices=sorted(PROVIDERS), help="run only these providers")
    parser.add_argument("--compute-ms", type=float,
                        help="frontier: p95 compute per hop to plan with (default: measured here)")
    parser.add_argument("--out", default="", help="frontier: folder for frontier.json and its plots "
                                                  "(default: benchmarks/results)")


def _resolve(target: str):
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def run_raw(argv: list[str]) -> int | None:
    """`stemd bench SUITE ARGS...` hands ARGS to the suite untouched (its --help included), so
    this command's own options never shadow a suite's."""
    if argv and argv[0] in SUITES:
        return int(_resolve(SUITES[argv[0]])(argv[1:]) or 0)
    return None


def main(args: argparse.Namespace) -> int:
    from stemd.benchmarks.streaming import BenchOptions

    options = BenchOptions(
        models=args.models, seconds=args.seconds, rate=args.rate, period=args.period, device=args.device,
        backend=args.backend, threads=args.threads, window_s=args.window,
        hop_s=None if args.hop_ms is None else args.hop_ms / 1000.0,
        right_s=None if args.right_ms is None else args.right_ms / 1000.0,
        compute_ms=args.compute_ms, out=args.out,
    )
    if args.json:
        with json_stdout() as emit:
            emit(json.dumps([asdict(r) for r in _rows(args, options)], indent=2))
    else:
        print(table(_rows(args, options)))
    return 0


def _rows(args: argparse.Namespace, options) -> list:
    rows = []
    for name in args.only or DEFAULT_PROVIDERS:
        rows += _resolve(PROVIDERS[name])(options)
    return rows


COLUMNS = [("model", "model", "{}"), ("backend", "backend", "{}"), ("device", "device", "{}"),
           ("window_s", "W s", "{:.2f}"), ("hop_ms", "H ms", "{:.1f}"), ("right_ms", "R ms", "{:.1f}"),
           ("ms_median", "ms/hop med", "{:.1f}"), ("ms_p95", "p95", "{:.1f}"), ("ms_max", "max", "{:.1f}"),
           ("rtf", "RTF", "{:.2f}"), ("latency_ms", "latency ms", "{:.1f}"), ("budget_ms", "budget ms", "{:.1f}"),
           ("peak_mem_mb", "peak MB", "{:.0f}")]


def table(rows: list) -> str:
    """Fixed columns, then the per-stem SDRs and notes on their own indented lines."""
    cells = [[h for _, h, _ in COLUMNS]]
    for r in rows:
        values = asdict(r)
        cells.append(["-" if values[k] is None else f.format(values[k]) for k, _, f in COLUMNS])
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = []
    for i, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            continue
        r = rows[i - 1]
        for label, scores in (("SDR vs offline (apply_model)", r.sdr_offline), ("SDR vs whole-song pass", r.sdr_whole)):
            if scores:
                lines.append(f"    {label}: " + ", ".join(f"{k} {v:.1f} dB" for k, v in scores.items()))
        for key, value in r.extra.items():
            if key.startswith("sdr") or key.startswith("quality"):
                lines.append(f"    {key}: {value}")
        if r.note:
            lines.append(f"    {r.note}")
    return "\n".join(lines)
