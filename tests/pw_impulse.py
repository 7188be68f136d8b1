"""Run under `pw-jack` (tests/test_pipewire.py): plays an impulse into stemd:in_L/R and records
stemd:out_L, then prints how many frames later it arrived. A script because the test process has
jackd2's libjack loaded and cannot also be a PipeWire JACK client."""

import faulthandler
import sys

import jack
from pipewire_server import RATE
from test_daemon_jack import impulse_delay


class DefaultServer:
    """What tests/jack_probe.py needs of a server: its rate and a way to open clients on it."""

    rate = RATE

    def client(self, name: str) -> jack.Client:
        return jack.Client(name, no_start_server=True)


if __name__ == "__main__":
    # The test waits 60 s: a hang (libjack under pw-jack) then shows where, in the test's message.
    faulthandler.dump_traceback_later(45, exit=True, file=sys.stderr)
    print(impulse_delay(DefaultServer(), daemon=None))
