"""systemd's notify protocol (READY=1, WATCHDOG=1, STATUS=…, STOPPING=1) over $NOTIFY_SOCKET.

A few lines of datagram socket code instead of a dependency; outside systemd (no NOTIFY_SOCKET) every
call is a no-op, so the daemon runs the same from a terminal.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self._address = address or None
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and (not pid or pid == str(os.getpid()))
        # Ping at half the timeout, as sd_watchdog_enabled(3) recommends.
        self.watchdog_interval_s = int(usec) / 2e6 if wanted else None

    def notify(self, *fields: str) -> None:
        if self._address is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto("\n".join(fields).encode(), self._address)
            except OSError:
                pass  # systemd went away; nothing to tell

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def watchdog(self, status: str) -> None:
        self.notify("WATCHDOG=1", f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
