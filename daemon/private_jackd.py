"""A private jackd2 on the dummy backend, for `stemd demo` on a machine with no audio hardware (and
no JACK server running): real JACK, no sound card, gone when the demo ends."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import jack

from stemd.daemon import libjack_output


def server_running(name: str | None = None) -> bool:
    """Can a client join the server `name` (None: the default server) right now?"""
    try:
        with libjack_output.quiet():
            probe = jack.Client("stemd-probe", servername=name, no_start_server=True)
    except jack.JackOpenError:
        return False
    probe.close()
    return True


def _die_with_parent() -> None:
    """In the child before exec: if the demo (or a test run) is killed, its jackd goes too, instead
    of holding one of JACK's few server slots until someone notices."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class PrivateJackd:
    """`jackd -n NAME -d dummy` as a child process."""

    def __init__(self, name: str, rate: int = 48000, period: int = 256, log: Path | None = None) -> None:
        """`log`: a file for jackd's stderr (its xrun reports), instead of a pipe nobody reads on."""
        self.name, self.rate, self.period, self.log = name, rate, period, log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "PrivateJackd":
        binary = shutil.which("jackd")
        if binary is None:
            raise RuntimeError("jackd not found: scripts/install.sh installs jackd2")
        stderr = open(self.log, "ab") if self.log is not None else subprocess.PIPE
        self.process = subprocess.Popen(
            [binary, "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
            stdout=subprocess.DEVNULL, stderr=stderr,
            env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"), preexec_fn=_die_with_parent,
        )
        if self.log is not None:
            stderr.close()  # the child has its own copy
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = self.process.stderr.read() if self.log is None else self.log.read_bytes()
                raise RuntimeError(f"jackd exited: {said.decode(errors='replace')}")
            if server_running(self.name):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"jackd did not come up within {timeout:g} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, 5)


def stop_process(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM a child that is still running, SIGKILL it if it has not exited within `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
