"""OSC load benchmark: sustained answered messages/s and reply latency (median, p99) of stemd's OSC
server on loopback, against a bare Python UDP answerer in the same process as the baseline.

    stemd bench osc [--seconds 5] [--json out.json]

The server runs as the daemon runs it (Session over a real Mixer, rate limit raised so the limiter
does not cap the measurement); the mixer applies directly, as no JACK thread drains its queue here.
A client keeps `window` requests in flight (1 = ping-pong, which shows the bare latency; more shows
throughput and the latency a busy surface sees) and matches answers to requests in order, which the
single receive thread guarantees. The same measurement against a minimal UDP answerer in the same
process is the baseline: the ratio says what stemd's checks, parsing and mixer updates cost on top
of Python sockets on this machine.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterator

from pythonosc.osc_message_builder import build_msg

from stemd.control.osc.client import ANSWERS
from stemd.config import validate
from stemd.control.commands import STEMS_4
from stemd.control.osc.packet import MalformedPacket, parse
from stemd.control.osc.server import OscServer
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session


@dataclass(frozen=True)
class LoadResult:
    target: str
    window: int
    answered: int
    lost: int
    seconds: float
    msgs_per_s: float
    median_ms: float
    p99_ms: float


def requests() -> Iterator[bytes]:
    """A realistic mix from a fader-heavy surface: mutes, solos, fader moves, dB sets."""
    stems = ("vocals", "drums", "bass", "other")
    i = 0
    while True:
        stem = stems[i % 4]
        yield build_msg(f"/stemd/stem/{stem}/mute", [i // 4 % 2]).dgram
        yield build_msg(f"/stemd/stem/{stem}/gain", [(i % 100) / 100.0]).dgram
        yield build_msg(f"/stemd/stem/{stem}/solo", [0]).dgram
        yield build_msg(f"/stemd/stem/{stem}/gain_db", [-float(i % 24)]).dgram
        i += 1


def measure(address: tuple[str, int], seconds: float, window: int, target: str = "stemd") -> LoadResult:
    """Drive `address` for `seconds` with `window` requests in flight."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    sent: deque[float] = deque()
    latencies: list[float] = []
    source = requests()
    lost = 0
    start = time.perf_counter()
    end = start + seconds
    try:
        while True:
            now = time.perf_counter()
            while now < end and len(sent) < window:
                sent.append(time.perf_counter())
                sock.sendto(next(source), address)
            if not sent:
                break
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                lost += len(sent)  # an answer that has not come in a second is not coming
                sent.clear()
                continue
            arrived = time.perf_counter()
            try:
                answers = sum(1 for m in parse(data) if m.message.address in ANSWERS)
            except MalformedPacket:
                continue
            for _ in range(min(answers, len(sent))):
                latencies.append(arrived - sent.popleft())
    finally:
        sock.close()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [float("nan")]
    return LoadResult(
        target=target,
        window=window,
        answered=len(latencies),
        lost=lost,
        seconds=round(elapsed, 3),
        msgs_per_s=round(len(latencies) / elapsed, 1),
        median_ms=round(statistics.median(ordered) * 1e3, 3),
        p99_ms=round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3, 3),
    )


class BaselineAnswerer:
    """The floor: a thread that answers every datagram with a fixed `/stemd/ok`, nothing else."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="osc-baseline", daemon=True)

    def __enter__(self) -> "BaselineAnswerer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _run(self) -> None:
        reply = build_msg("/stemd/ok", ["[]"]).dgram
        while not self._stop.is_set():
            try:
                _, client = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            self.sock.sendto(reply, client)


def compare(address: tuple[str, int], seconds: float, windows: tuple[int, ...] = (1, 32)) -> list[LoadResult]:
    """Baseline then stemd at each window, `seconds` each."""
    with BaselineAnswerer() as base:
        results = [measure(base.address, seconds, w, "baseline") for w in windows]
    return results + [measure(address, seconds, w) for w in windows]


def table(results: list[LoadResult]) -> str:
    """Results as a text table; `vs base` is throughput relative to the baseline at the same window."""
    baseline = {r.window: r for r in results if r.target == "baseline"}
    head = f"{'target':<10}{'window':>7}{'answered':>10}{'lost':>6}{'msgs/s':>10}{'median ms':>11}{'p99 ms':>9}{'vs base':>9}"
    rows = [head, "-" * len(head)]
    for r in results:
        base = baseline.get(r.window)
        ratio = f"{r.msgs_per_s / base.msgs_per_s:.2f}" if base and base.msgs_per_s else "-"
        rows.append(
            f"{r.target:<10}{r.window:>7}{r.answered:>10}{r.lost:>6}{r.msgs_per_s:>10.0f}"
            f"{r.median_ms:>11.3f}{r.p99_ms:>9.3f}{ratio:>9}"
        )
    return "\n".join(rows)


def to_json(results: list[LoadResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stemd bench osc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 32], help="requests in flight")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    config = validate({"osc": {"rate_limit_per_s": 100000.0}}).osc
    config.port = 0
    with tempfile.TemporaryDirectory() as state:
        server = OscServer(Session(Mixer(STEMS_4, 48000)), config, state).start()
        try:
            results = compare(server.address, args.seconds, tuple(args.windows))
        finally:
            server.stop()
    print(table(results))
    print(to_json(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(to_json(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
