"""OSC load benchmark: sustained answered messages/s and reply latency (median, p99) of stemd's OSC
server on loopback, against a bare Python UDP answerer in the same process as the baseline.

    .venv/bin/python benchmarks/osc_load.py [--seconds 5] [--json out.json]

The server runs as the daemon runs it (Session over a real Mixer, rate limit raised so the limiter
does not cap the measurement); the mixer applies directly, as no JACK thread drains its queue here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from stemd.config import validate
from stemd.control.commands import STEMS_4
from stemd.control.osc.load import compare, table, to_json
from stemd.control.osc.server import OscServer
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
