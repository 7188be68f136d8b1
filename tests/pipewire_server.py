"""A private PipeWire for tests: the `pipewire` daemon and WirePlumber with a null sink, in their own
XDG_RUNTIME_DIR, so JACK clients run under PipeWire's libjack (`pw-jack`) as on a desktop distribution.

No systemd user session and no session D-Bus exist in a container: PipeWire runs with D-Bus support
off, WirePlumber under `dbus-run-session` (it wants a session bus). Clients are started by
`command()` with this server's environment; the test process itself keeps jackd2's libjack, so every
look at the PipeWire graph goes through `jack_lsp` under `pw-jack`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from stemd.daemon.private_jackd import _die_with_parent

SINK = "Null Sink"
RATE, QUANTUM = 48000, 256

CONFIG = f"""
context.properties = {{
    default.clock.rate = {RATE}
    default.clock.quantum = {QUANTUM}
    default.clock.min-quantum = {QUANTUM}
    default.clock.max-quantum = {QUANTUM}
    support.dbus = false
}}
context.objects = [
    {{ factory = adapter
        args = {{
            factory.name     = support.null-audio-sink
            node.name        = "stemd-test-null-sink"
            node.description = "{SINK}"
            media.class      = "Audio/Sink"
            audio.position   = "FL,FR"
            node.driver      = true
            priority.driver  = 30000
        }}
    }}
]
"""


@dataclass
class JackPort:
    """One port as `jack_lsp -c -l` shows it."""

    connections: list[str] = field(default_factory=list)
    playback: tuple[int, int] = (0, 0)
    capture: tuple[int, int] = (0, 0)


class PipeWireServer:
    def __init__(self, root: Path) -> None:
        for tool in ("pipewire", "wireplumber", "pw-jack", "jack_lsp", "dbus-run-session"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found: scripts/install.sh installs it")
        self.runtime = root / "run"
        self.runtime.mkdir(mode=0o700, parents=True)
        drop_ins = root / "config" / "pipewire" / "pipewire.conf.d"
        drop_ins.mkdir(parents=True)
        (drop_ins / "stemd-test.conf").write_text(CONFIG)
        self.env = {k: v for k, v in os.environ.items() if k not in ("JACK_DEFAULT_SERVER", "PIPEWIRE_REMOTE")}
        self.env.update(XDG_RUNTIME_DIR=str(self.runtime), XDG_CONFIG_HOME=str(root / "config"))
        self.log = root / "pipewire.log"
        self.pipewire: subprocess.Popen | None = None
        self.wireplumber: subprocess.Popen | None = None

    def _spawn(self, argv: list[str]) -> subprocess.Popen:
        with self.log.open("a") as log:
            return subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)

    def start(self, timeout: float = 20.0) -> "PipeWireServer":
        """PipeWire, then WirePlumber; ready once the null sink's JACK ports exist."""
        return self.start_pipewire(timeout).start_session_manager(timeout)

    def start_pipewire(self, timeout: float = 20.0) -> "PipeWireServer":
        """The PipeWire daemon alone: JACK clients can join, but the null sink has no ports yet."""
        self.pipewire = self._spawn(["pipewire"])
        socket = self.runtime / "pipewire-0"
        deadline = time.monotonic() + timeout
        while not socket.exists():
            self._check_alive(self.pipewire, deadline)
        return self

    def start_session_manager(self, timeout: float = 20.0) -> "PipeWireServer":
        """WirePlumber, which sets up the null sink's ports."""
        deadline = time.monotonic() + timeout
        self.wireplumber = self._spawn(["dbus-run-session", "--", "wireplumber"])
        while f"{SINK}:playback_FL" not in self.ports():
            self._check_alive(self.wireplumber, deadline)
        return self

    def _check_alive(self, process: subprocess.Popen, deadline: float) -> None:
        if process.poll() is not None or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"{process.args[0]} did not come up: {self.log.read_text()[-2000:]}")
        time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL PipeWire, as a crash would; WirePlumber loses its server and goes with it."""
        for process in (self.pipewire, self.wireplumber):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop(self) -> None:
        for process in (self.wireplumber, self.pipewire):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)

    def command(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """`pw-jack argv...` against this server."""
        return subprocess.Popen(["pw-jack", *argv], env=self.env, start_new_session=True, **kwargs)

    def ports(self) -> dict[str, JackPort]:
        """Every JACK port of the PipeWire graph with its connections and latency ranges."""
        listed = subprocess.run(["pw-jack", "jack_lsp", "-c", "-l"], env=self.env, capture_output=True,
                                text=True, timeout=20)
        ports: dict[str, JackPort] = {}
        current: JackPort | None = None
        for line in listed.stdout.splitlines():
            latency = re.match(r"\s+port (playback|capture) latency = \[ (\d+) (\d+) \]", line)
            if latency and current is not None:
                setattr(current, latency[1], (int(latency[2]), int(latency[3])))
            elif line.startswith("   ") and current is not None:
                current.connections.append(line.strip())
            elif line and not line[0].isspace():
                current = ports.setdefault(line, JackPort())
        return ports
