"""The xrun soak: does stemd cost the audio anything while it separates? A private jackd2 (dummy
backend, 48 kHz, 256 frames) with C clients only — jack_metro playing into stemd, jack_rec recording
its output — runs for `--seconds` per configuration, and jackd's own reports are counted:

- *blamed on stemd*: "JackEngine::XRun: client = stemd was not finished" (stemd's process callback
  missed its deadline), counted as cycles (jackd prints that line for the late cycle and the next);
- *driver*: "JackTimedDriver::Process XRun" (the dummy driver's timer thread woke late: the machine
  did not run jackd in time, whoever had the CPU);
- stemd's own xrun callback count and its underruns (periods played dry for lack of stems), and of
  those the ones the compiled callback played dry because the render thread was late ("render late").

*Blamed on others* (jack_metro, jack_rec: two C clients that only copy) is the machine's jitter
floor: on a shared machine other people's real-time threads (their own jackd servers) take the CPU
from every client alike, so stemd's count is read against it, not against 0.

    stemd bench xruns [--seconds 600] [--configs dry spleeter2 spleeter2-all] [--json out.json]

Configurations: `dry` (model = "dry": no worker, the baseline), `spleeter2` (the defaults: the worker
at nice 10, SCHED_BATCH, off the lowest CPU), `spleeter2-all` (the same priority on every CPU, as
before `[engine] cpus`), `spleeter2-normal` (the worker at the daemon's own priority on every CPU),
`spleeter2-pinned-normal` (the daemon's own priority, off the lowest CPU). The measurement starts
once the model and the standby are loaded; the machine's load average before and after each run is
recorded, since on a shared machine it says how much of the count is other people's work. `dry
seconds` says how the underruns fall: in how many seconds of the soak, and the most in one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stemd.benchmarks.live_rig import LiveRig

CONFIGS: dict[str, dict[str, Any]] = {
    "dry": {"model": "dry"},
    "spleeter2": {"model": "spleeter2", "nice": 10, "policy": "batch", "cpus": "auto"},
    "spleeter2-all": {"model": "spleeter2", "nice": 10, "policy": "batch", "cpus": "all"},
    "spleeter2-normal": {"model": "spleeter2", "nice": 0, "policy": "normal", "cpus": "all"},
    "spleeter2-pinned-normal": {"model": "spleeter2", "nice": 0, "policy": "normal", "cpus": "auto"},
}
BLAME = re.compile(r"JackEngine::XRun: client = (\S+) was not finished, state = (\w+)")
DRIVER = "JackTimedDriver::Process XRun"


@dataclass(frozen=True)
class SoakResult:
    config: str
    seconds: float
    blamed_on_stemd: int
    blamed_on_others: int
    driver_xruns: int
    stemd_xruns: int
    underruns: int
    render_late: int | None  # of the underruns: periods the callback played dry for want of a rendered block
    output_at_end: str
    worker_priority: str | None
    load_before: float
    load_after: float
    dry_seconds: list[list[int]]  # [second of the soak, periods played dry in it] for each second with any


def count(lines: list[str]) -> tuple[int, int, int]:
    """(cycles blamed on stemd, cycles blamed on other clients, driver timer xruns) in jackd's log.
    A late client is reported as "Triggered" or "Running" once per cycle it overran; the "Running"
    line ends the report, so one overrun is one Triggered-or-Running run of lines."""
    stemd = others = driver = 0
    previous: tuple[str, str] | None = None
    for line in lines:
        if DRIVER in line:
            driver += 1
        match = BLAME.search(line)
        if match is None:
            continue
        client, state = match.groups()
        if previous != (client, "Triggered") or state != "Running":  # a Triggered+Running pair is one cycle
            if client == "stemd":
                stemd += 1
            else:
                others += 1
        previous = (client, state)
    return stemd, others, driver


def soak(name: str, seconds: float, workdir: Path) -> SoakResult:
    rig = LiveRig(workdir / name, {**CONFIGS[name], "threads": 0})
    try:
        before = rig.start()
        skip = len(rig.jackd_lines())  # loading is not part of the measurement
        xruns0, underruns0 = before["daemon"]["xruns"], before["daemon"]["underruns"]
        late0 = (before["daemon"].get("render") or {}).get("late_periods")
        load_before = os.getloadavg()[0]
        dry_seconds = underruns_per_second(rig, rig.record(seconds, workdir / f"{name}.wav"), seconds, underruns0)
        after = rig.status()
        load_after = os.getloadavg()[0]
        stemd, others, driver = count(rig.jackd_lines()[skip:])
    finally:
        rig.stop()
    d = after["daemon"]
    late = (d.get("render") or {}).get("late_periods")
    return SoakResult(name, seconds, stemd, others, driver, d["xruns"] - xruns0, d["underruns"] - underruns0,
                      late - late0 if late is not None else None, d["output"],
                      (d["engine"] or {}).get("priority"), round(load_before, 2), round(load_after, 2),
                      dry_seconds)


def underruns_per_second(rig: LiveRig, recorder: Any, seconds: float, underruns0: int) -> list[list[int]]:
    """Polls the daemon's underrun counter once a second while `recorder` runs: whether the dry
    periods come as one stretch (a stalled worker) or scattered (a worker that keeps just missing)."""
    series, last, start = [], underruns0, time.monotonic()
    while recorder.poll() is None and time.monotonic() - start < seconds + 60:
        time.sleep(1.0)
        try:
            now = rig.status()["daemon"]["underruns"]
        except (TimeoutError, OSError):
            continue
        if now > last:
            series.append([round(time.monotonic() - start), now - last])
        last = now
    return series


def dry_spread(series: list[list[int]]) -> str:
    """'n (most m)': how many seconds of the soak had dry periods, and the most in one of them."""
    return f"{len(series)} (most {max(n for _, n in series)})" if series else "0"


def table(results: list[SoakResult]) -> str:
    head = ("config", "seconds", "blamed on stemd", "on others", "driver xruns", "stemd xruns",
            "underruns", "render late", "dry seconds", "output", "worker", "load before/after")
    rows = [head] + [(r.config, f"{r.seconds:.0f}", str(r.blamed_on_stemd), str(r.blamed_on_others),
                      str(r.driver_xruns), str(r.stemd_xruns), str(r.underruns),
                      "-" if r.render_late is None else str(r.render_late), dry_spread(r.dry_seconds),
                      r.output_at_end,
                      r.worker_priority or "-", f"{r.load_before:.2f}/{r.load_after:.2f}") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stemd bench xruns", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of each soak")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["dry", "spleeter2"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="stemd-soak-") as tmp:
        for name in args.configs:
            results.append(soak(name, args.seconds, Path(tmp)))
            print(table(results[-1:]), file=sys.stderr, flush=True)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
                                         "results": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0
