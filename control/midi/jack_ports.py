"""JACK MIDI ports `midi_in` / `midi_out` on the stemd client.

The daemon's JACK client calls `register(client, rt)` at every (re)connect before activating. Its
process callback is compiled (daemon/rt_callback.c): it copies incoming events, stamped with their
exact JACK frame time (which the MIDI clock needs), into a slot ring, and queued outgoing LED
messages from another into the port buffer. `pump()`, once per cycle on the render thread, moves
them between those slot rings and `inbox` / `outbox` (preallocated SPSC rings, ring.py). A host
whose process callback is Python (the MIDI test rigs) calls `process(frames)` there instead, which
does the same with the port buffers directly. Connections named in config are made from the
controller thread, which retries them (`connect_pending`), because a controller can be plugged in
after the daemon starts.

The controller thread never calls into libjack about a client whose server may be gone (that can
crash the process): the callback itself publishes how many ports midi_out feeds (`listeners`, a
read of the graph that is safe in the callback) and when it last ran, and connections are only
attempted while the callback is running (`running`).
"""

from __future__ import annotations

import errno
import logging
import time
from typing import Sequence

import jack

from stemd.control.midi.ring import EventRing
from stemd.daemon.rt_callback import MIDI_DATA, RtCallback

log = logging.getLogger("stemd.midi")


class JackMidiPorts:
    def __init__(self, connect_in: Sequence[str] = (), connect_out: Sequence[str] = ()) -> None:
        self.inbox = EventRing()
        self.outbox = EventRing(capacity=1 << 14, max_event=MIDI_DATA)  # what one slot of the callback holds
        self.generation = 0  # bumped by every register(); the controller then re-sends all LEDs
        self.listeners = 0  # ports midi_out feeds, as of the last cycle
        self.last_cycle = 0.0  # time.monotonic() of the last cycle
        self._connect_in = tuple(connect_in)
        self._connect_out = tuple(connect_out)
        self._pending: list[tuple[str, str]] = []
        self._warned: set[str] = set()
        self._client: jack.Client | None = None
        self._in: jack.MidiPort | None = None
        self._out: jack.MidiPort | None = None
        self._rate = 48000.0
        self._rt: RtCallback | None = None

    def register(self, client: jack.Client, rt: RtCallback | None = None) -> None:
        """Create the ports on a (new) client; called before `client.activate()`. With `rt` (the
        compiled callback) the ports are its to copy, and `pump` moves the events."""
        self._in = None
        self.last_cycle = 0.0
        self.listeners = 0
        midi_in = client.midi_inports.register("midi_in")
        midi_out = client.midi_outports.register("midi_out")
        self._rate = float(client.samplerate)
        self._client = client
        self._out = midi_out
        self._in = midi_in
        self._rt = rt
        if rt is not None:
            rt.attach_midi(midi_in, midi_out)
        self.outbox.clear()  # stale LED states from before a server restart; a full refresh follows
        self._pending = [(p, midi_in.name) for p in self._connect_in] + [
            (midi_out.name, p) for p in self._connect_out]
        self.generation += 1

    def process(self, frames: int) -> None:
        """RT: move this cycle's MIDI in and out. Safe to call before register (does nothing)."""
        midi_in, midi_out = self._in, self._out
        if midi_in is None:
            return
        self.last_cycle = time.monotonic()
        self.listeners = midi_out.number_of_connections
        base = self._client.last_frame_time
        rate = self._rate
        inbox = self.inbox
        for offset, data in midi_in.incoming_midi_events():
            inbox.put((base + offset) / rate, data)
        midi_out.clear_buffer()
        outbox = self.outbox
        event = outbox.peek()
        while event is not None:
            data = event[1]
            space = midi_out.reserve_midi_event(0, len(data))
            if not space:
                return  # port buffer full: the rest goes out next cycle
            space[:] = data
            outbox.commit()
            event = outbox.peek()

    def pump(self, frame: int, frames: int) -> None:
        """Render thread, once per cycle of the compiled callback: its MIDI in, our MIDI out."""
        rt = self._rt
        if rt is None:
            return
        self.last_cycle = rt.cycle_time
        self.listeners = rt.midi_listeners
        rate, inbox, slots = self._rate, self.inbox, rt.midi_inbox
        event_in = slots.get()
        while event_in is not None:
            inbox.put(event_in[0] / rate, event_in[1])
            event_in = slots.get()
        outbox, slots = self.outbox, rt.midi_outbox
        event = outbox.peek()
        while event is not None and slots.put(event[1]):
            outbox.commit()
            event = outbox.peek()

    def send(self, data: bytes) -> None:
        """Queue one message for midi_out (controller thread)."""
        self.outbox.put(0.0, data)

    def running(self, within_s: float = 0.1) -> bool:
        """Whether the process callback ran lately, i.e. the client is active and its server alive."""
        return time.monotonic() - self.last_cycle < within_s

    def connect_pending(self) -> None:
        """Make the configured connections that are not made yet (controller thread, while running)."""
        client = self._client
        if client is None or not self._pending or not self.running():
            return
        still = []
        for source, dest in self._pending:
            try:
                client.connect(source, dest)
            except jack.JackErrorCode as exc:
                if exc.code != errno.EEXIST:
                    still.append((source, dest))
                    self._warn(source, dest, exc)
            except jack.JackError as exc:
                still.append((source, dest))
                self._warn(source, dest, exc)
        self._pending = still

    def _warn(self, source: str, dest: str, exc: Exception) -> None:
        name = f"{source} -> {dest}"
        if name not in self._warned:
            self._warned.add(name)
            log.warning("MIDI: cannot connect %s yet (%s); retrying while it is missing", name, exc)
