"""Drive stemd over OSC with feedback: what a tablet app does, in thirty lines of python-osc.

    .venv/bin/stemd run &                       # or stemd demo, in another terminal
    .venv/bin/python examples/osc_feedback.py [--host 127.0.0.1] [--port 9000]

One UDP socket sends and receives, because stemd answers every message to the address it came
from: `/stemd/ok` with the applied Commands as JSON (or `/stemd/error` with the reason), and, once
subscribed, state feedback on the controls' own addresses — so a fader or button on any surface
shows the state whoever changed it (this script, another tablet, a MIDI pad, a spoken command).
"""

from __future__ import annotations

import argparse
import socket
import time

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--listen", type=float, default=1.0, help="seconds to print feedback at the end")
    args = ap.parse_args()
    daemon = (args.host, args.port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)

    def send(address: str, *values: object) -> None:
        sock.sendto(build_msg(address, list(values)).dgram, daemon)

    def show_until(deadline: float) -> None:
        meters = 0
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                continue
            message = OscMessage(data)
            if message.address.endswith("/level"):  # meters stream at [osc] meter_hz; count, don't print
                meters += 1
            else:
                print(message.address, *message.params)
        print(f"({meters} meter messages)")

    send("/stemd/subscribe")  # feedback now comes back to this socket
    send("/stemd/intent", "drop the vocals, bring in the bass")
    send("/stemd/stem/drums/gain", 0.6)  # a fader move: position 0..1, 0.75 is 0 dB
    send("/stemd/intent", "make it heavier")  # not a mixer command: refused, with the reason
    show_until(time.monotonic() + args.listen)
    send("/stemd/unsubscribe")


if __name__ == "__main__":
    main()
