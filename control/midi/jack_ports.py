"""JACK MIDI ports `midi_in` / `midi_out` on the stemd client: the hook its process callback calls.

The daemon's JACK client calls `register(client)` at every (re)connect before activating, and
`process(frames)` from its process callback. `process` only copies bytes: incoming events (stamped
with their exact JACK frame time, which the MIDI clock needs) into `inbox`, and queued outgoing LED
messages from `outbox` into the port buffer. Both are preallocated SPSC rings (ring.py): no lock,
no wait, no log, no numpy. Connections named in config are made from the controller thread, which
retries them (`connect_pending`), because a controller can be plugged in after the daemon starts.

The controller thread never calls into libjack about a client whose server may be gone (that can
crash the process): `process` itself publishes how many ports midi_out feeds (`listeners`, a read of
the graph that is safe in the callback) and when it last ran, and connections are only attempted
while the callback is running (`running`).
"""

from __future__ import annotations

import errno
import logging
import time
from typing import Sequence

import jack

from stemd.control.midi.ring import EventRing

log = logging.getLogger("stemd.midi")


class JackMidiPorts:
    def __init__(self, connect_in: Sequence[str] = (), connect_out: Sequence[str] = ()) -> None:
        self.inbox = EventRing()
        self.outbox = EventRing(capacity=1 << 14, max_event=256)
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

    def register(self, client: jack.Client) -> None:
        """Create the ports on a (new) client; called before `client.activate()`."""
        self._in = None
        self.last_cycle = 0.0
        self.listeners = 0
        midi_in = client.midi_inports.register("midi_in")
        midi_out = client.midi_outports.register("midi_out")
        self._rate = float(client.samplerate)
        self._client = client
        self._out = midi_out
        self._in = midi_in
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
