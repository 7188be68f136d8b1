"""Recovery benchmark: how long a crash costs separated audio, on the live rig (private jackd2,
`stemd run` as its own process, jack_metro playing into it).

    stemd bench recovery [--model spleeter2] [--kills 3] [--restarts 3] [--json out.json]

- *worker kill*, with and without the warm standby ([engine] standby): the active worker is
  SIGKILLed while separating. `dry ms` is exact — the underrun counter's growth (periods the audio
  path played dry, fades included) times the period; `back ms` is from the kill until status says
  separated again with the new worker, polled every 10 ms over OSC.
- *jackd restart*: jackd is SIGKILLed, left down for a second, started again; `back ms` is from the
  moment a client can join it again (PrivateJackd polls every 50 ms) until status says separated.

Also the memory the standby costs (its RSS, PSS and private pages, next to the active worker's).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stemd.benchmarks.live_rig import LiveRig

POLL_S = 0.01
OUTAGE_S = 1.0


@dataclass(frozen=True)
class Recovery:
    event: str
    dry_ms: float | None  # None where the period count stops with the server (jackd restart)
    back_ms: float


def _separated_by(rig: LiveRig, other_than: int | None, timeout: float = 60.0) -> float:
    """Poll until the output is separated (by a worker other than pid `other_than`); monotonic time."""
    def done(st: dict[str, Any]) -> bool:
        d = st["daemon"]
        return d["output"] == "separated" and (other_than is None or d["engine"]["pid"] != other_than)
    rig.wait(done, timeout, step=POLL_S)
    return time.monotonic()


def worker_kills(rig: LiveRig, kills: int, standby: bool) -> list[Recovery]:
    out = []
    period, rate = None, None
    for _ in range(kills):
        st = rig.wait(lambda s: s["daemon"]["output"] == "separated" and (
            not standby or s["daemon"]["engine"]["standby"]["loaded"]), 300)
        d = st["daemon"]
        period, rate = d["period"], d["rate"]
        time.sleep(2.0)  # steady state
        d = rig.status()["daemon"]
        pid, underruns = d["engine"]["pid"], d["underruns"]
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        back = _separated_by(rig, pid)
        time.sleep(1.0)  # a dip right after the takeover counts too
        dry = (rig.status()["daemon"]["underruns"] - underruns) * period / rate
        out.append(Recovery("worker kill, standby" if standby else "worker kill, no standby",
                            round(1000 * dry, 1), round(1000 * (back - killed), 1)))
    return out


def jackd_restarts(rig: LiveRig, restarts: int) -> list[Recovery]:
    out = []
    for _ in range(restarts):
        rig.wait(lambda s: s["daemon"]["output"] == "separated", 300)
        rig.kill_jackd()
        time.sleep(OUTAGE_S)
        up = rig.server_back()
        rig.start_player()
        back = _separated_by(rig, None)
        out.append(Recovery("jackd restart", None, round(1000 * (back - up), 1)))
    return out


def memory(rig: LiveRig) -> dict[str, Any]:
    e = rig.status()["daemon"]["engine"]
    return {"active": e.get("memory"), "standby": (e.get("standby") or {}).get("memory")}


def table(rows: list[Recovery]) -> str:
    events: dict[str, list[Recovery]] = {}
    for r in rows:
        events.setdefault(r.event, []).append(r)
    lines = [f"{'event':<26} {'n':>2} {'dry ms median (each)':<30} {'back ms median (each)'}"]
    for event, rs in events.items():
        dry = [r.dry_ms for r in rs if r.dry_ms is not None]
        back = [r.back_ms for r in rs]
        dry_cell = f"{statistics.median(dry):.0f} ({', '.join(f'{v:.0f}' for v in dry)})" if dry else "-"
        lines.append(f"{event:<26} {len(rs):>2} {dry_cell:<30} "
                     f"{statistics.median(back):.0f} ({', '.join(f'{v:.0f}' for v in back)})")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stemd bench recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="spleeter2")
    parser.add_argument("--kills", type=int, default=3, help="worker kills per configuration")
    parser.add_argument("--restarts", type=int, default=3, help="jackd restarts")
    parser.add_argument("--nice", type=int, default=10, help="[engine] nice of the workers")
    parser.add_argument("--policy", default="batch", help="[engine] policy of the workers")
    parser.add_argument("--cpus", default="auto", help="[engine] cpus of the workers")
    parser.add_argument("--keep", type=Path, help="keep the rig's logs (jackd, stemd) in this folder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    rows: list[Recovery] = []
    mem: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stemd-recovery-") as tmp:
        for standby in (True, False):
            engine = {"model": args.model, "standby": standby, "nice": args.nice, "policy": args.policy,
                      "cpus": args.cpus}
            rig = LiveRig((args.keep or Path(tmp)) / f"standby-{standby}", engine)
            try:
                rig.start()
                if standby:
                    mem = memory(rig)
                rows += worker_kills(rig, args.kills, standby)
                if standby:
                    rows += jackd_restarts(rig, args.restarts)
            finally:
                rig.stop()
    print(table(rows))
    print(f"memory ({args.model}): active worker {mem.get('active')}; standby {mem.get('standby')}")
    print(f"workers at nice {args.nice}, {args.policy}, cpus {args.cpus}; load average at the end: {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    if args.json is not None:
        args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "model": args.model,
                                         "nice": args.nice, "policy": args.policy, "cpus": args.cpus,
                                         "load": os.getloadavg()[0], "memory": mem,
                                         "results": [asdict(r) for r in rows]}, indent=2) + "\n")
    return 0
