"""A private jackd2 (dummy backend) for tests: real server, no audio hardware, torn down afterwards."""

from __future__ import annotations

import os
import uuid

import jack

from stemd.daemon.private_jackd import PrivateJackd


class JackServer(PrivateJackd):
    """The demo's private jackd under a unique name; `JACK_DEFAULT_SERVER` points clients (including
    rtmidi's JACK API and child processes) at it while it runs."""

    def __init__(self, rate: int = 48000, period: int = 256) -> None:
        super().__init__(f"stemdtest-{uuid.uuid4().hex[:8]}", rate, period)

    def start(self, timeout: float = 10.0) -> "JackServer":
        super().start(timeout)
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        return self

    def stop(self) -> None:
        super().stop()
        if os.environ.get("JACK_DEFAULT_SERVER") == self.name:
            del os.environ["JACK_DEFAULT_SERVER"]

    def client(self, name: str) -> jack.Client:
        return jack.Client(name, servername=self.name, no_start_server=True)
