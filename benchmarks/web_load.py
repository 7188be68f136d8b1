"""Web remote load: many WebSocket pages, each sending a steady stream of controls, against a running
daemon (private jackd2 on the dummy backend, the real engine), measured against a quiet baseline.

    stemd bench web [--clients 50] [--rate 20] [--seconds 60] [--model auto] [--json out.json]

Three stretches of `--seconds` each (the solo one at most 10 s), all in one run on one daemon:
1. idle: no page connected; the JACK xruns and engine underruns here are the machine's own;
2. solo: one page at `--rate` messages/s, the round-trip baseline;
3. load: `--clients` pages at `--rate` each, from a separate process at the lowest CPU priority (the
   pages stand for phones: their work must land neither on the daemon's GIL nor ahead of it), while
   the benchmark sets the master gain through the Session four times a second (as OSC or MIDI would;
   the pages never touch the master) and every page notes when the pushed state shows each value.
Reported: messages sent, replies received and lost (no reply within 5 s of the end), refused ones,
round trip median / p95 / max, the push delay to the pages, and xruns / underruns per stretch: xruns
under load beyond the idle stretch's are the ones the web server could be blamed for. The pages
send what a busy surface sends: fader moves, with a mute or unmute every fourth message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

PROBE_SOURCE = "bench-probe"
PROBE_EVERY_S = 0.25
PROBE_VALUES = 40  # distinct master gains the probes cycle through (-10 .. -29.5 dB)
DRAIN_S = 5.0  # a reply not in by this long after the last send counts as lost


def _summary(values: list[float]) -> dict[str, float | None]:
    """Median, p95 and max in ms of `values` given in seconds."""
    if not values:
        return {"median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"median": round(statistics.median(ordered) * 1e3, 2), "p95": round(p95 * 1e3, 2),
            "max": round(ordered[-1] * 1e3, 2)}


async def _page(url: str, rate: float, seconds: float, gate: "_StartGate", out: dict[str, Any]) -> None:
    """One page: connects, waits for every other page, then sends `rate` messages a second for `seconds`."""
    import aiohttp

    sent: dict[int, float] = {}
    last_master = [None]
    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
        hello = json.loads((await ws.receive()).data)
        stems = hello["stems"]

        async def read() -> None:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                now, data = time.time(), message.data
                kind = data[10:17]  # '{"type": "reply"...': only replies and states are parsed
                if kind.startswith("reply"):
                    m = json.loads(data)
                    t = sent.pop(m.get("id"), None)
                    if t is not None:
                        out["rtt"].append(time.perf_counter() - t)
                        out["replied"] += 1
                        out["refused"] += not m["ok"]
                elif kind.startswith("state"):
                    master = json.loads(data)["master"]["gain_db"]
                    if master != last_master[0]:
                        last_master[0] = master
                        out["seen"].append((master, now))
                if not sent and out["done"]:
                    break

        reader = asyncio.create_task(read())
        await gate.connected.wait()
        await gate.go.wait()
        begin = time.perf_counter()
        for k in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, begin + k / rate - time.perf_counter()))
            stem = stems[k % len(stems)]
            if k % 4 == 3:
                message = {"type": "command", "command": {"action": "mute" if k % 8 == 3 else "unmute", "stem": stem}}
            else:
                message = {"type": "fader", "stem": stem, "position": 0.5 + 0.25 * ((k * 7) % 10) / 10}
            sent[k] = time.perf_counter()
            out["sent"] += 1
            await ws.send_str(json.dumps({"id": k, **message}))
        out["done"] = True
        try:
            await asyncio.wait_for(reader, DRAIN_S)
        except asyncio.TimeoutError:
            pass
        out["lost"] += len(sent)


class _StartGate:
    """Every page connected before any sends, so connecting is not measured as load."""

    def __init__(self, pages: int) -> None:
        self.connected = asyncio.Barrier(pages + 1)
        self.go = asyncio.Event()


async def _pages(url: str, clients: int, rate: float, seconds: float, queue: Any) -> dict[str, Any]:
    results = [{"sent": 0, "replied": 0, "refused": 0, "lost": 0, "rtt": [], "seen": [], "done": False}
               for _ in range(clients)]
    gate = _StartGate(clients)
    running = asyncio.gather(*(_page(url, rate, seconds, gate, r) for r in results))
    await gate.connected.wait()
    queue.put(time.time())  # the stretch starts now, for the daemon side too
    gate.go.set()
    await running
    return {
        "sent": sum(r["sent"] for r in results), "replied": sum(r["replied"] for r in results),
        "lost": sum(r["lost"] for r in results), "refused": sum(r["refused"] for r in results),
        "rtt_ms": _summary([x for r in results for x in r["rtt"]]),
        "seen": [r["seen"] for r in results],
    }


def _run_pages(url: str, clients: int, rate: float, seconds: float, queue: Any) -> None:
    """The load process: every page on one asyncio loop; the start time, then the summary, go on `queue`."""
    os.nice(19)
    queue.put(asyncio.run(_pages(url, clients, rate, seconds, queue)))


def _stretch(daemon: Any, seconds: float, clients: int, rate: float, url: str) -> dict[str, Any]:
    """One stretch: pages in their own process (none when clients = 0), fader probes, JACK figures."""
    from stemd.control.commands import Command

    queue: Any = None
    process = None
    if clients:  # started and connected before the stretch: a new Python process is a CPU spike
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        process = ctx.Process(target=_run_pages, args=(url, clients, rate, seconds, queue), daemon=True)
        process.start()
        queue.get(timeout=120)
    before = daemon.stats()
    end = time.monotonic() + seconds
    probes: list[tuple[float, float]] = []  # (master dB, when set)
    k = 0
    while time.monotonic() < end:
        time.sleep(PROBE_EVERY_S)
        k += 1
        db = -10.0 - 0.5 * (k % PROBE_VALUES)
        probes.append((db, time.time()))
        daemon.session.submit([Command("gain", stem="all", db=db, absolute=True)], PROBE_SOURCE)
    after = daemon.stats()
    out: dict[str, Any] = {"clients": clients, "seconds": seconds}
    if process is not None:
        out.update(queue.get(timeout=seconds + 60))
        process.join(10)
        out["push_ms"] = _summary(_push_delays(probes, out.pop("seen")))
    for key in ("xruns", "underruns", "periods"):
        out[key] = after[key] - before[key]
    return out


def _push_delays(probes: list[tuple[float, float]], seen: list[list[tuple[float, float]]]) -> list[float]:
    """For every page and probe: when the page's pushed state first showed the probe's value, minus
    when it was set (one clock: same machine). A probe a page never showed is left out."""
    delays = []
    for page in seen:
        i = 0
        for db, set_at in probes:
            j = next((j for j in range(i, len(page)) if page[j][0] == db and page[j][1] >= set_at), None)
            if j is not None:
                delays.append(page[j][1] - set_at)
                i = j + 1
    return delays


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(clients: int, rate: float, seconds: float, model: str) -> dict[str, Any]:
    """Idle, solo and load stretches on one daemon (see the module docstring)."""
    from stemd.config import validate
    from stemd.daemon.app import Daemon
    from stemd.daemon.private_jackd import PrivateJackd

    server = f"stemd-bench-web-{os.getpid()}"
    jackd = PrivateJackd(server).start()
    port = _free_port()
    with tempfile.TemporaryDirectory() as state:
        config = validate({
            "jack": {"server_name": server, "connect_inputs": [], "connect_outputs": []},
            "engine": {"model": model},
            "osc": {"enabled": False}, "voice": {"enabled": False}, "midi": {"jack_ports": False},
            "web": {"port": port, "max_clients": max(64, clients + 2)},
            "state": {"dir": state, "restore": False},
        })
        daemon = Daemon(config).start()
        supervisor = threading.Thread(target=daemon.run, name="bench-supervisor", daemon=True)
        supervisor.start()
        try:
            deadline = time.monotonic() + 120
            while not daemon.stats().get("output") == "separated" and time.monotonic() < deadline:
                time.sleep(0.2)
            url = f"http://127.0.0.1:{port}/ws"
            stretches = {
                "idle": _stretch(daemon, seconds, 0, rate, url),
                "solo": _stretch(daemon, min(seconds, 10.0), 1, rate, url),
                "load": _stretch(daemon, seconds, clients, rate, url),
            }
            stats = daemon.stats()
            result = {"model": daemon.model_name, "output": stats.get("output"), "state": stats.get("state"),
                      "period": stats.get("period"), "rate_hz": stats.get("rate"), "per_client_rate": rate,
                      "stretches": stretches, "web": stats.get("web"), "cpus": os.cpu_count(),
                      "load_average": [round(x, 2) for x in os.getloadavg()]}
        finally:
            daemon.stopping.set()
            supervisor.join(5)
            daemon.stop()
            jackd.stop()
    return result


def table(result: dict[str, Any]) -> str:
    """The stretches side by side; `p95 vs solo` is the load's p95 round trip over the one-page one."""
    head = (f"{'stretch':<7}{'pages':>6}{'sent':>8}{'replied':>9}{'lost':>6}{'refused':>8}{'rtt med':>9}"
            f"{'rtt p95':>9}{'rtt max':>9}{'push med':>10}{'push p95':>10}{'xruns':>7}{'underruns':>11}")
    rows = [f"model {result['model']} ({result['output']}), period {result['period']} @ {result['rate_hz']} Hz, "
            f"{result['per_client_rate']:g} msgs/s per page, {result['cpus']} CPUs, load average "
            f"{result['load_average']}", head, "-" * len(head)]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    for name, s in result["stretches"].items():
        rtt, push = s.get("rtt_ms", {}), s.get("push_ms", {})
        rows.append(f"{name:<7}{s['clients']:>6}{s.get('sent', 0):>8}{s.get('replied', 0):>9}{s.get('lost', 0):>6}"
                    f"{s.get('refused', 0):>8}{ms(rtt.get('median')):>9}{ms(rtt.get('p95')):>9}"
                    f"{ms(rtt.get('max')):>9}{ms(push.get('median')):>10}{ms(push.get('p95')):>10}"
                    f"{s['xruns']:>7}{s['underruns']:>11}")
    solo, load = result["stretches"]["solo"].get("rtt_ms", {}), result["stretches"]["load"].get("rtt_ms", {})
    if solo.get("p95") and load.get("p95"):
        rows.append(f"p95 round trip under load / solo: {load['p95'] / solo['p95']:.2f}; xruns under load beyond "
                    f"idle: {result['stretches']['load']['xruns'] - result['stretches']['idle']['xruns']}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stemd bench web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="pages in the load stretch")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second per page")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the idle and load stretches")
    parser.add_argument("--model", default="auto", help="[engine] model the daemon runs")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    result = measure(args.clients, args.rate, args.seconds, args.model)
    print(table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
