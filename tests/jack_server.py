"""A private jackd2 (dummy backend) for tests: real server, no audio hardware, torn down afterwards."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
import uuid

import jack


def _die_with_parent() -> None:
    """In the child before exec: a killed or timed-out test run must not leave jackd behind."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class JackServer:
    """`jackd -d dummy` under a unique server name; `JACK_DEFAULT_SERVER` points clients (including
    rtmidi's JACK API and child processes) at it while it runs."""

    def __init__(self, rate: int = 48000, period: int = 256) -> None:
        self.rate = rate
        self.period = period
        self.name = f"stemdtest-{uuid.uuid4().hex[:8]}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "JackServer":
        jackd = shutil.which("jackd")
        if jackd is None:
            raise RuntimeError("jackd not found: run scripts/install.sh (installs jackd2)")
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        self.process = subprocess.Popen(
            [jackd, "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=_die_with_parent,
        )
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jackd exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                probe = jack.Client("stemd-probe", servername=self.name, no_start_server=True)
            except jack.JackOpenError:
                time.sleep(0.05)
                continue
            probe.close()
            return self
        self.stop()
        raise RuntimeError("jackd did not come up")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.environ.get("JACK_DEFAULT_SERVER") == self.name:
            del os.environ["JACK_DEFAULT_SERVER"]

    def client(self, name: str) -> jack.Client:
        return jack.Client(name, servername=self.name, no_start_server=True)
