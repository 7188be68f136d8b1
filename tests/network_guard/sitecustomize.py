"""Imported at start-up by every Python process whose PYTHONPATH has this folder (a test's stemd
subprocesses and their engine workers): any attempt to resolve or reach a host that is not this
machine is appended to $STEMD_NETWORK_LOG and refused. A test of offline behaviour then sees every
network access anything underneath tried, not only the ones that happened to fail loudly."""

import os
import sys

LOG = os.environ.get("STEMD_NETWORK_LOG")
LOCAL = ("localhost", "127.", "::1", "0.0.0.0")


def _host(event: str, args: tuple) -> str | None:
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return None  # AF_UNIX sockets (PipeWire, JACK, systemd) are local by definition
    return host.decode() if isinstance(host, bytes) else host


def _refuse_remote(event: str, args: tuple) -> None:
    host = _host(event, args)
    if host is None or not host or host.startswith(LOCAL):
        return
    with open(LOG, "a") as log:
        log.write(f"{os.getpid()} {event} {host} ({' '.join(sys.argv)[:200]})\n")
    raise OSError(f"network access to {host} refused by the offline test guard")


if LOG:
    sys.addaudithook(_refuse_remote)
