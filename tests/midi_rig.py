"""MIDI test rig on a real jackd: the stemd side wired as the daemon wires it, plus MIDI senders.

`StemdMidi` is a plain JACK client that registers the MIDI hook, runs it and the mixer in its process
callback (session in realtime mode, so commands go through the RT queue) and records the JACK frame
at which each mixer command was applied. `FrameSender` writes raw bytes at exact frame times (clock,
garbage that rtmidi would refuse to send, latency probes); `rtmidi_out` / `rtmidi_in` are other
applications' ports through rtmidi's JACK API.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
import rtmidi

from stemd.control.commands import STEMS_4
from stemd.control.midi.controller import MidiController
from stemd.control.midi.jack_ports import JackMidiPorts
from stemd.control.midi.learn import LearnStore
from stemd.control.midi.mapping import binding_from_entry
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session


def wait_for(predicate, timeout: float = 3.0, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def bindings(*entries: dict):
    return [binding_from_entry(e) for e in entries]


class StemdMidi:
    def __init__(self, jackd, entries=(), state_dir=None, beat_clock=None, name: str = "stemd") -> None:
        self.mixer = Mixer(STEMS_4, jackd.rate, max_block=jackd.period)
        self.session = Session(self.mixer, realtime=True, beat_clock=beat_clock)
        store = LearnStore(state_dir) if state_dir is not None else None
        self.controller = MidiController(self.session, bindings(*entries), store)
        self.session.midi = self.controller
        self.hook = JackMidiPorts()
        self.controller.attach_jack(self.hook)
        self.client = jackd.client(name)
        self.hook.register(self.client)
        self.applied_at = np.zeros(4096, dtype=np.int64)  # JACK frame of each applied mixer command
        self.n_applied = 0
        stems = np.zeros((len(STEMS_4), 2, jackd.period), dtype=np.float32)
        out = np.zeros((2, jackd.period), dtype=np.float32)

        @self.client.set_process_callback
        def process(frames):
            self.hook.process(frames)
            before = self.mixer.applied
            self.mixer.process(stems[:, :, :frames], out[:, :frames])
            for _ in range(self.mixer.applied - before):
                if self.n_applied < len(self.applied_at):
                    self.applied_at[self.n_applied] = self.client.last_frame_time
                    self.n_applied += 1

        self.client.activate()
        self.controller.start()

    @property
    def midi_in(self) -> str:
        return f"{self.client.name}:midi_in"

    @property
    def midi_out(self) -> str:
        return f"{self.client.name}:midi_out"

    def stems(self) -> dict:
        return self.session.snapshot()["stems"]

    def close(self) -> None:
        self.controller.stop()
        self.client.deactivate()
        self.client.close()


class FrameSender:
    """A JACK client whose `midi_out` writes queued events at given JACK frame times (or asap)."""

    def __init__(self, jackd, target: str, name: str = "sender") -> None:
        self.client = jackd.client(name)
        self.port = self.client.midi_outports.register("out")
        self._queue: deque[tuple[int | None, bytes]] = deque()
        self.sent_at: list[int] = []  # frame each event went out at, in order
        self.frame = 0

        @self.client.set_process_callback
        def process(frames):
            self.port.clear_buffer()
            start = self.client.last_frame_time
            self.frame = start
            while self._queue:
                at, data = self._queue[0]
                offset = 0 if at is None else at - start
                if offset >= frames:
                    break
                if len(data) > self.port.max_event_size:
                    break  # port buffer full: the rest next cycle
                space = self.port.reserve_midi_event(max(offset, 0), len(data))
                space[:] = data
                self._queue.popleft()
                self.sent_at.append(start + max(offset, 0))

        self.client.activate()
        self.client.connect(self.port, target)
        connected(self.client, self.port.name)

    def send(self, *events: bytes, at: int | None = None) -> None:
        for data in events:
            self._queue.append((at, bytes(data)))

    def schedule(self, events: list[tuple[int, bytes]]) -> None:
        self._queue.extend(events)

    def drained(self) -> bool:
        return not self._queue

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def connected(client, port: str) -> None:
    """Wait until `port` has a connection and the graph has run a few cycles with it."""
    assert wait_for(lambda: client.get_all_connections(port))
    time.sleep(0.03)


def rtmidi_out(rig: "StemdMidi", name: str = "controller") -> rtmidi.MidiOut:
    """Another application's MIDI output (rtmidi's JACK API) connected to the rig's midi_in."""
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    out.open_port(out.get_ports().index(rig.midi_in), "out")
    connected(rig.client, rig.midi_in)
    return out


class Received:
    """Another application's MIDI input (rtmidi's JACK API) that collects messages: connected to
    `source`, or a virtual port `<name>:in` others connect to when `source` is None."""

    def __init__(self, source: str | None, name: str = "leds") -> None:
        self.messages: list[tuple[int, ...]] = []
        self._lock = threading.Lock()
        self.port = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=name)
        self.port.set_callback(self._got)
        if source is None:
            self.port.open_virtual_port("in")
        else:
            self.port.open_port(self.port.get_ports().index(source), "in")

    def _got(self, event, data=None) -> None:
        with self._lock:
            self.messages.append(tuple(event[0]))

    def take(self) -> list[tuple[int, ...]]:
        with self._lock:
            got, self.messages = self.messages, []
        return got

    def close(self) -> None:
        self.port.close_port()
        self.port.delete()
