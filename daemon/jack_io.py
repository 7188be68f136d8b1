"""The JACK client `stemd`: ports, connections, latency reporting, xruns and the process callback.

One `JackIO` lives as long as the daemon; each connection to a JACK server is a fresh
`jack.Client` made by `connect()`. The process callback is compiled (rt_callback.c): it only copies
between the ports and the rings, and plays the blocks the render thread (render_ahead.py) rendered
ahead of it. The audio state (`AudioPath`, the callback's `RtCallback`: rings, mixer, counters) is not
tied to a client, so after a server restart the new client resumes with the same frame count, mixer
state and rings, and the ports are re-created with the connections they had.
"""

from __future__ import annotations

import errno
import logging
import threading
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import jack

from stemd.daemon import libjack_output
from stemd.daemon.audio_path import AudioPath
from stemd.daemon.jack_latency import LatencyReporter
from stemd.daemon.jack_shutdown import on_plain_shutdown
from stemd.daemon.render_ahead import RenderAhead
from stemd.daemon.rt_callback import RtCallback

log = logging.getLogger(__name__)


class RtHook(Protocol):
    """Something else that belongs to every JACK cycle (JACK MIDI, transport)."""

    def register(self, client: jack.Client, rt: RtCallback | None = None) -> None:
        """Create its ports on a new client (called before every activate); with `rt`, hand the
        compiled callback what it copies for this hook (JACK MIDI's ports)."""

    def pump(self, frame: int, frames: int) -> None:
        """Its non-real-time half, once per cycle, on the render thread (render_ahead.py)."""

    # Optional: `detach()` — drop every reference to the client and its ports and stop calling JACK
    # from any thread. Called before the client is closed (shutdown, or a server that went away):
    # closing the last client frees libjack's shared graph, and a later call on an old port (even
    # `number_of_connections`) aborts the whole process with a libjack assertion.


@dataclass
class PortPlan:
    """Which ports exist and what they connect to by default (from config [jack])."""

    stems: Sequence[str] = ()
    stem_ports: bool = False
    mic: bool = False
    connect_inputs: Sequence[str] = ()
    connect_outputs: Sequence[str] = ()
    connect_mic: str = ""

    def defaults(self) -> dict[str, list[str]]:
        """port short name -> peer port names, from the config lists."""
        plan: dict[str, list[str]] = {}
        for short, peer in zip(("in_L", "in_R"), self.connect_inputs):
            plan.setdefault(short, []).append(peer)
        for short, peer in zip(("out_L", "out_R"), self.connect_outputs):
            plan.setdefault(short, []).append(peer)
        if self.mic and self.connect_mic:
            plan["mic"] = [self.connect_mic]
        return plan


@dataclass
class XrunCounter:
    count: int = 0
    last_delay_us: float = 0.0

    def __call__(self, delayed_usecs: float) -> None:
        self.count += 1
        self.last_delay_us = delayed_usecs


@dataclass
class JackIO:
    path: AudioPath
    plan: PortPlan
    rt: RtCallback | None = None
    renderer: RenderAhead | None = None
    name: str = "stemd"
    server: str | None = None
    client: jack.Client | None = None
    xruns: XrunCounter = field(default_factory=XrunCounter)
    server_gone: threading.Event = field(default_factory=threading.Event)
    hooks: list[RtHook] = field(default_factory=list)
    connections: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # wanted peers not there (yet)

    def add_rt_hook(self, hook: RtHook) -> None:
        """Run `hook` in every period from the next connect on (MIDI, transport)."""
        self.hooks.append(hook)

    # ---- connection lifecycle (control thread) -------------------------------------------------

    def open(self) -> jack.Client:
        """Open a client without activating it (to learn the rate before the engine starts); libjack's
        complaints when no server is there are dropped (the caller logs once per outage)."""
        with libjack_output.quiet():
            self.client = jack.Client(self.name, servername=self.server or None, no_start_server=True)
        self.server_gone.clear()
        return self.client

    def connect(self) -> None:
        """Ports, callbacks, hooks, activate, then the remembered connections (or config defaults)."""
        client = self.client or self.open()
        plan = self.plan
        self._in = (client.inports.register("in_L"), client.inports.register("in_R"))
        self._out = (client.outports.register("out_L"), client.outports.register("out_R"))
        self._mic = client.inports.register("mic") if plan.mic else None
        self._stem_ports = [
            client.outports.register(f"{stem}_{side}")
            for stem in (plan.stems if plan.stem_ports else ()) for side in "LR"
        ]
        self._latency = LatencyReporter(
            client, self._in, [*self._out, *self._stem_ports], self.path.latency,
            unrelated=[self._mic] if self._mic is not None else [],
        )
        self.rt.install(client, self._in, self._out, self._mic, self._stem_ports)
        client.set_xrun_callback(self.xruns)
        client.set_shutdown_callback(self._shutdown)
        self._plain_shutdown = on_plain_shutdown(client, self.server_gone.set)
        for hook in self.hooks:
            hook.register(client, self.rt)
        client.activate()
        self.missing = self._restore(self.connections or plan.defaults())
        self.remember_connections()

    def _restore(self, wanted: dict[str, list[str]]) -> dict[str, list[str]]:
        """Connect our ports to the `wanted` peers; returns the ones that could not be connected."""
        own = {p.shortname: p for p in self._ports()}
        failed: dict[str, list[str]] = {}
        for short, peers in wanted.items():
            port = own.get(short)
            for peer in peers if port is not None else ():
                try:
                    if port.is_input:
                        self.client.connect(peer, port)
                    else:
                        self.client.connect(port, peer)
                except jack.JackError as exc:
                    if getattr(exc, "code", None) == errno.EEXIST:
                        continue  # already connected is what we wanted
                    log.warning("cannot connect %s to %s (%s); connecting it when it appears",
                                port.name, peer, exc)
                    failed.setdefault(short, []).append(peer)
        return failed

    def connect_missing(self) -> None:
        """Make the wanted connections whose peer port was missing, once it exists. Under PipeWire
        a restarted server shows its sinks only after the session manager has set them up, which
        is after stemd has reconnected (control thread, from housekeeping)."""
        if not self.missing or self.client is None or self.server_gone.is_set():
            return
        try:
            present = {p.name for p in self.client.get_ports()}
        except jack.JackError:
            return
        arrived = {short: [p for p in peers if p in present] for short, peers in self.missing.items()}
        if not any(arrived.values()):
            return
        failed = self._restore(arrived)
        pending = {short: [p for p in peers if p not in present] + failed.get(short, [])
                   for short, peers in self.missing.items()}
        self.missing = {short: peers for short, peers in pending.items() if peers}
        self.remember_connections()

    def _ports(self) -> list[jack.Port]:
        return [*self._in, *self._out, *self._stem_ports, *([self._mic] if self._mic is not None else [])]

    def remember_connections(self) -> None:
        """Snapshot our ports' connections, to put them back after a server restart."""
        if self.client is None or self.server_gone.is_set():
            return
        try:
            made = {p.shortname: [c.name for c in self.client.get_all_connections(p)] for p in self._ports()}
        except jack.JackError:
            return  # the server is going away; the shutdown callback follows
        for short, peers in self.missing.items():  # still wanted after a restart
            made[short] = made.get(short, []) + [p for p in peers if p not in made.get(short, [])]
        self.connections = made

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        for hook in self.hooks:
            detach = getattr(hook, "detach", None)
            if detach is not None:
                detach()
        try:
            if not self.server_gone.is_set():
                client.deactivate()
            client.close()
        except jack.JackError as exc:
            log.debug("closing the JACK client: %s", exc)

    def _shutdown(self, status: jack.Status, reason: str) -> None:
        """JACK thread, async-signal context: only raise the flag; the app reconnects."""
        self.server_gone.set()
