"""MIDI test rig on a real jackd: the stemd side wired as the daemon wires it, plus MIDI senders.

`StemdMidi` is a plain JACK client that registers the MIDI hook, runs it and the mixer in its process
callback (session in realtime mode, so commands go through the RT queue) and records the JACK frame
at which each mixer command was applied. `FrameSender` writes raw bytes at exact frame times (controls,
clock, garbage that rtmidi would refuse to send, latency probes) and `JackReceiver` collects what
midi_out sends. Both are JACK-Client (cffi) clients on purpose: python-rtmidi keeps the GIL while its
JACK API opens or closes a client, and the server waits for every client's cycle, including this
process's Python callback, which needs the GIL: a deadlock. `Received` (rtmidi's JACK API) is only
used where no Python JACK callback runs in the process.
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


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def bindings(*entries: dict):
    return [binding_from_entry(e) for e in entries]


class StemdMidi:
    """Use as a context manager: closing it closes the controllers, senders and LED receivers made
    through it first, then the stemd client, all before the test's jackd goes away."""

    def __init__(self, jackd, entries=(), state_dir=None, beat_clock=None, name: str = "stemd") -> None:
        self.jackd = jackd
        self._closers: list = []
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
        self.applied_db = np.zeros((4096, len(STEMS_4)))  # the stems' gains right after it
        self.n_applied = 0
        stems = np.zeros((len(STEMS_4), 2, jackd.period), dtype=np.float32)
        out = np.zeros((2, jackd.period), dtype=np.float32)

        self.cycles = 0

        @self.client.set_process_callback
        def process(frames):
            self.cycles += 1
            self.hook.process(frames)
            before = self.mixer.applied
            self.mixer.process(stems[:, :, :frames], out[:, :frames])
            for _ in range(self.mixer.applied - before):
                if self.n_applied < len(self.applied_at):
                    self.applied_at[self.n_applied] = self.client.last_frame_time
                    self.applied_db[self.n_applied] = self.mixer.gain_db
                    self.n_applied += 1

        self.xruns = 0

        @self.client.set_xrun_callback
        def xrun(delay):
            self.xruns += 1  # on a loaded machine the dummy server can drop a late client's MIDI

        self.client.activate()
        self.controller.start()

    @property
    def midi_in(self) -> str:
        return f"{self.client.name}:midi_in"

    @property
    def midi_out(self) -> str:
        return f"{self.client.name}:midi_out"

    def settle(self) -> None:
        """Wait until the controller's commands are applied: queue drained, then two whole cycles."""
        assert wait_for(lambda: len(self.mixer.commands) == 0)
        cycles = self.cycles
        assert wait_for(lambda: self.cycles >= cycles + 2)

    def stems(self) -> dict:
        return self.session.snapshot()["stems"]

    def pad(self, name: str = "controller") -> "FrameSender":
        """A controller: another JACK client whose MIDI output feeds midi_in."""
        return self.sender(name)

    def leds(self, name: str = "leds") -> "JackReceiver":
        """What a controller's LEDs see: another JACK client fed from midi_out."""
        received = JackReceiver(self.jackd, self.midi_out, name)
        self._closers.append(received.close)
        return received

    def sender(self, name: str = "sender") -> "FrameSender":
        sender = FrameSender(self.jackd, self.midi_in, name)
        self._closers.append(sender.close)
        return sender

    def __enter__(self) -> "StemdMidi":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()
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


class JackReceiver:
    """A JACK client whose MIDI input, fed from `source`, collects every event it receives."""

    def __init__(self, jackd, source: str, name: str = "leds") -> None:
        self.messages: list[tuple[int, ...]] = []
        self.client = jackd.client(name)
        self.port = self.client.midi_inports.register("in")

        @self.client.set_process_callback
        def process(frames):
            for _, data in self.port.incoming_midi_events():
                self.messages.append(tuple(bytes(data)))

        self.client.activate()
        self.client.connect(source, self.port)
        connected(self.client, self.port.name)

    def take(self) -> list[tuple[int, ...]]:
        got, self.messages = self.messages, []
        return got

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


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
