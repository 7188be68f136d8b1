"""The compiled JACK process callback (rt_callback.c), seen from Python.

The Python process callback missed JACK's deadline even with no engine at all (`model = "dry"`):
the interpreter needs the GIL every period, and a control thread holding it, a GC pass (up to 5 ms
measured) or an allocation made the JACK thread wait. The compiled callback only copies between the
JACK ports and shared-memory rings (docs/decisions/daemon.md has the numbers); everything that
thinks — the mixer, fades, loops, commands, transport, the MIDI parser — runs in the render thread
(render_ahead.py) and the control threads, as before but never on the JACK thread.

`RtCallback` owns the state the callback runs on (allocated once, zeroed, kept alive as long as the
object) and installs it as a client's process callback. Ports are pointed at again after every
reconnect; rings and counters outlive clients, so a new client goes on at the same frame.
"""

from __future__ import annotations

from typing import Sequence

import cffi
import jack
import numpy as np

from stemd.daemon import rt_build
from stemd.daemon.ring import SpscRing

_ffi = cffi.FFI()
_ffi.cdef(rt_build.SOURCES[1].read_text().replace("#include <stddef.h>\n", "").replace("#include <stdint.h>\n", ""))
_lib = _ffi.dlopen(str(rt_build.library()))

MAX_STEM_PORTS = _lib.MAX_STEM_PORTS
MIDI_SLOT = _lib.MIDI_SLOT
MIDI_DATA = MIDI_SLOT - 8
MIDI_SLOTS = 256  # events per direction per cycle a controller or its LEDs can queue

if _lib.stemd_rt_state_size() != _ffi.sizeof("rt_state"):
    raise ImportError("the compiled callback does not match rt_state.h; rebuild it (python -m stemd.daemon.rt_build)")


def _pointer(obj: jack.Client | jack.Port | None, ctype: str) -> object:
    """A JACK-Client client or port as a pointer of our own cffi instance (NULL for None)."""
    if obj is None:
        return _ffi.NULL
    return _ffi.cast(ctype, int(jack._ffi.cast("uintptr_t", obj._ptr)))


def _ring(ring: SpscRing | None) -> dict[str, object]:
    if ring is None:
        return {"head": _ffi.NULL, "data": _ffi.NULL, "channels": 0, "capacity": 1}
    address = ring.data.ctypes.data
    return {"head": _ffi.cast("uint64_t *", address - 64), "data": _ffi.cast("float *", address),
            "channels": ring.channels, "capacity": ring.capacity}


class MidiSlots:
    """One direction of JACK MIDI between the callback and Python: fixed 256-byte slots (JACK frame
    time, length, data), one writer per counter, so neither side waits or allocates."""

    def __init__(self, ring: object) -> None:
        self._buf = np.zeros(MIDI_SLOTS * MIDI_SLOT, np.uint8)
        self._ring = ring
        ring.data = _ffi.cast("unsigned char *", self._buf.ctypes.data)
        ring.slots = MIDI_SLOTS
        self._heads = self._buf.view(np.uint32).reshape(MIDI_SLOTS, MIDI_SLOT // 4)

    @property
    def dropped(self) -> int:
        return int(self._ring.dropped)

    def get(self) -> tuple[int, bytes] | None:
        """Consumer: the oldest event as (JACK frame time, bytes), or None."""
        ring = self._ring
        if ring.read == ring.written:
            return None
        slot = ring.read % MIDI_SLOTS
        frame, length = int(self._heads[slot, 0]), int(self._heads[slot, 1])
        at = slot * MIDI_SLOT + 8
        data = self._buf[at:at + length].tobytes()
        ring.read += 1
        return frame, data

    def put(self, data: bytes | memoryview) -> bool:
        """Producer: queue one event; False when it is too long or the ring is full."""
        ring = self._ring
        n = len(data)
        if not 0 < n <= MIDI_DATA or ring.written - ring.read >= MIDI_SLOTS:
            return False
        slot = ring.written % MIDI_SLOTS
        self._heads[slot, 0], self._heads[slot, 1] = 0, n
        at = slot * MIDI_SLOT + 8
        self._buf[at:at + n] = np.frombuffer(data, np.uint8)
        ring.written += 1
        return True


class RtCallback:
    """The callback's state: input, mic and output rings, L, the crossfade, counters, MIDI slots."""

    def __init__(self, in_ring: SpscRing, mic_ring: SpscRing | None, latency: int, crossfade: int) -> None:
        self._state = _ffi.new("rt_state *")
        self._rings = [in_ring, mic_ring]  # kept alive: the callback holds raw pointers into them
        s = self._state
        for name, ring in (("in_ring", in_ring), ("mic_ring", mic_ring), ("out_ring", None)):
            for key, value in _ring(ring).items():
                setattr(getattr(s, name), key, value)
        s.latency = latency
        s.crossfade = max(1, crossfade)
        self.crossfade = s.crossfade
        self.midi_inbox = MidiSlots(s.midi_inbox)
        self.midi_outbox = MidiSlots(s.midi_outbox)

    def render_into(self, out_ring: SpscRing, dry_gain: float) -> None:
        """From now on the output is `out_ring`'s blocks (rendered ahead by render_ahead.py)."""
        self._rings.append(out_ring)
        for key, value in _ring(out_ring).items():
            setattr(self._state.out_ring, key, value)
        self._state.dry_gain = dry_gain
        self._state.rendering = 1

    def install(self, client: jack.Client, inputs: Sequence[jack.Port], outputs: Sequence[jack.Port],
                mic: jack.Port | None, stem_ports: Sequence[jack.Port]) -> None:
        """Point the callback at a (new) client's ports and make it the process callback (before
        `activate`); JACK MIDI ports come from `attach_midi`, after this."""
        if len(stem_ports) > MAX_STEM_PORTS:
            raise ValueError(f"at most {MAX_STEM_PORTS} stem ports, got {len(stem_ports)}")
        s = self._state
        s.client = _pointer(client, "jack_client_t *")
        for i, port in enumerate(inputs):
            getattr(s, "in")[i] = _pointer(port, "jack_port_t *")
        for i, port in enumerate(outputs):
            s.out[i] = _pointer(port, "jack_port_t *")
        s.mic = _pointer(mic, "jack_port_t *")
        for i, port in enumerate(stem_ports):
            s.stem_out[i] = _pointer(port, "jack_port_t *")
        s.n_stem_ports = len(stem_ports)
        self.attach_midi(None, None)
        if _lib.stemd_rt_install(s) != 0:
            raise jack.JackError("jack_set_process_callback failed")

    def attach_midi(self, midi_in: jack.MidiPort | None, midi_out: jack.MidiPort | None) -> None:
        """Copy JACK MIDI between these ports and `midi_inbox` / `midi_outbox` (before `activate`)."""
        self._state.midi_in = _pointer(midi_in, "jack_port_t *")
        self._state.midi_out = _pointer(midi_out, "jack_port_t *")

    # ---- what the callback publishes (any thread) ---------------------------------------------

    def cycle(self) -> tuple[int, int, float]:
        """The latest cycle: (first frame, frames, monotonic start time); frames 0 before the first.
        Read frame last-written-first, so a cycle that lands meanwhile is caught by the re-read."""
        s = self._state
        while True:
            frame = s.frame
            n, at = s.nframes, s.cycle_time
            if s.frame == frame:
                return int(frame), int(n), float(at)

    def set_dry_gain(self, gain: float) -> None:
        self._state.dry_gain = gain

    @property
    def periods(self) -> int:
        return int(self._state.periods)

    @property
    def late(self) -> int:
        """Periods that played dry because no rendered block was there (or not enough behind it)."""
        return int(self._state.late)

    @property
    def hard_switches(self) -> int:
        return int(self._state.hard_switches)

    @property
    def on_rendered(self) -> bool:
        return bool(self._state.on_rendered)

    @property
    def midi_listeners(self) -> int:
        return int(self._state.midi_listeners)

    @property
    def cycle_time(self) -> float:
        return float(self._state.cycle_time)
