"""A live rig for the soak and recovery benchmarks: a private jackd2 (dummy backend) with its stderr
in a file, `stemd run` as its own process (as systemd runs it), and jackd2's C example clients as
player (jack_metro) and recorder (jack_rec), so nothing but stemd is Python."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from stemd.control.osc.client import status
from stemd.daemon.private_jackd import PrivateJackd, stop_process

PLAYER_PORT = "metro:120_bpm"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


class LiveRig:
    """jackd + jack_metro + `stemd run` with `engine` settings; `stop()` ends them all."""

    def __init__(self, workdir: Path, engine: dict[str, Any], rate: int = 48000, period: int = 256) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.jackd_log = workdir / "jackd.log"
        self.jackd = PrivateJackd(f"stemd-bench-{uuid.uuid4().hex[:8]}", rate, period, log=self.jackd_log)
        self.osc_port = free_udp_port()
        self.engine = engine
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=self.jackd.name, JACK_NO_AUDIO_RESERVATION="1")
        self.player: subprocess.Popen | None = None
        self.stemd: subprocess.Popen | None = None
        self.recorder: subprocess.Popen | None = None

    def _config(self) -> Path:
        sections = {
            "jack": {"server_name": self.jackd.name, "connect_inputs": [PLAYER_PORT, PLAYER_PORT],
                     "connect_outputs": [], "reconnect_interval_s": 0.25},
            "engine": self.engine,
            "osc": {"enabled": True, "port": self.osc_port},
            "voice": {"enabled": False},
            "midi": {"jack_ports": False},
            "state": {"dir": str(self.workdir / "state"), "restore": False},
        }
        path = self.workdir / "stemd.toml"
        path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items()) + "\n"
                                for name, keys in sections.items()))
        return path

    def start(self, load_timeout: float = 300.0, standby_timeout: float = 300.0) -> dict[str, Any]:
        """Everything up, the model loaded (and the standby, when configured); returns the status."""
        self.jackd.start()
        self.start_player()
        self.stemd = subprocess.Popen([sys.executable, "-m", "stemd", "run", "--config", str(self._config())],
                                      env=self.env, stdout=subprocess.DEVNULL,
                                      stderr=open(self.workdir / "stemd.log", "ab"))
        st = self.wait(lambda s: s["daemon"]["state"].startswith("running"), load_timeout)
        if self.engine.get("standby") and self.engine.get("model") != "dry":
            st = self.wait(lambda s: (s["daemon"]["engine"].get("standby") or {}).get("loaded"), standby_timeout)
        return st

    def start_player(self) -> None:
        """jack_metro (again: it outlives a killed jackd, and ignores SIGTERM then, so the old one is killed)."""
        if self.player is not None and self.player.poll() is None:
            self.player.kill()
            self.player.wait()
        self.player = subprocess.Popen(["jack_metro", "-b", "120", "-n", "metro"], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def record(self, seconds: float, wav: Path) -> subprocess.Popen:
        self.recorder = subprocess.Popen(["jack_rec", "-f", str(wav), "-d", str(seconds), "-b", "16",
                                          "stemd:out_L", "stemd:out_R"], env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.recorder

    def status(self) -> dict[str, Any]:
        return status("127.0.0.1", self.osc_port, timeout=1.0)

    def wait(self, condition: Any, timeout: float, step: float = 0.05) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stemd is not None and self.stemd.poll() is not None:
                raise RuntimeError(f"stemd exited; see {self.workdir / 'stemd.log'}")
            try:
                st = self.status()
            except (TimeoutError, OSError):
                st = None
            if st is not None and condition(st):
                return st
            time.sleep(step)
        raise TimeoutError(f"condition not met within {timeout:.0f} s; see {self.workdir / 'stemd.log'}")

    def jackd_lines(self) -> list[str]:
        return self.jackd_log.read_text(errors="replace").splitlines() if self.jackd_log.exists() else []

    def kill_jackd(self) -> None:
        self.jackd.process.send_signal(signal.SIGKILL)
        self.jackd.process.wait()
        self.jackd.process = None

    def server_back(self) -> float:
        """Start jackd again under the same name; returns when a client can join (monotonic time;
        PrivateJackd polls every 50 ms, so the server was back at most that much earlier)."""
        self.jackd.start()
        return time.monotonic()

    def stop(self) -> None:
        for process in (self.recorder, self.stemd, self.player):
            stop_process(process, 10)
        self.jackd.stop()
