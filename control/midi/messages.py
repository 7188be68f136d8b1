"""MIDI 1.0 byte-stream parsing for control input.

JACK promises normalised events, but a2jmidid bridges, rtmidi and sloppy hardware do not, so the
parser takes any byte stream: running status, realtime bytes (clock, start, stop) interleaved anywhere
(even inside another message or a sysex dump), system common messages that cancel running status,
sysex of any length (skipped: nothing in the control vocabulary uses it), and stray or undefined bytes
(dropped). It keeps no per-message buffers beyond two data bytes, so a sysex flood costs only time.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

NOTE_OFF, NOTE_ON, POLY_PRESSURE, CONTROL_CHANGE = 0x80, 0x90, 0xA0, 0xB0
PROGRAM_CHANGE, CHANNEL_PRESSURE, PITCH_BEND = 0xC0, 0xD0, 0xE0
SYSEX, SYSEX_END = 0xF0, 0xF7
CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC

_CHANNEL_DATA = {NOTE_OFF: 2, NOTE_ON: 2, POLY_PRESSURE: 2, CONTROL_CHANGE: 2,
                 PROGRAM_CHANGE: 1, CHANNEL_PRESSURE: 1, PITCH_BEND: 2}
# System common: MTC quarter frame, song position, song select, tune request. F4/F5 are undefined.
_COMMON_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}


class Message(NamedTuple):
    """One complete message; `status` includes the channel nibble for channel messages."""

    status: int
    data1: int = 0
    data2: int = 0

    @property
    def kind(self) -> int:
        """Status without the channel (0x90 for a note-on on any channel); the byte itself for system."""
        return self.status & 0xF0 if self.status < 0xF0 else self.status

    @property
    def channel(self) -> int:
        """1-16 for channel messages, 0 for system messages."""
        return (self.status & 0x0F) + 1 if self.status < 0xF0 else 0

    def to_bytes(self) -> bytes:
        n = _CHANNEL_DATA.get(self.kind, _COMMON_DATA.get(self.status, 0))
        return bytes((self.status, self.data1, self.data2)[: n + 1])


class Parser:
    """Stateful stream parser: feed chunks in arrival order, get complete messages back."""

    def __init__(self) -> None:
        self.ignored = 0  # bytes that belonged to no message we could complete (garbage, sysex)
        self.reset()

    def reset(self) -> None:
        """Forget running status and any partial message (after a gap in the stream)."""
        self._status = 0
        self._need = 0
        self._have = 0
        self._data1 = 0
        self._sysex = False

    def feed(self, data: Iterable[int]) -> list[Message]:
        out: list[Message] = []
        for byte in data:
            if byte >= CLOCK:  # realtime: one byte, anywhere, leaves all other state alone
                if byte not in (0xF9, 0xFD):
                    out.append(Message(byte))
                continue
            if byte >= 0x80:
                self._status_byte(byte, out)
                continue
            if self._sysex or not self._status:
                self.ignored += 1
                continue
            if self._have == 0 and self._need == 2:
                self._data1 = byte
                self._have = 1
                continue
            out.append(Message(self._status, self._data1 if self._need == 2 else byte,
                               byte if self._need == 2 else 0))
            self._have = 0
            if self._status >= SYSEX:  # system common messages never set running status
                self._status = 0
        return out

    def _status_byte(self, byte: int, out: list[Message]) -> None:
        if self._have or self._sysex:
            self.ignored += 1  # a message cut short by a new status byte
        self._have = 0
        self._sysex = byte == SYSEX
        if byte < SYSEX:
            self._status, self._need = byte, _CHANNEL_DATA[byte & 0xF0]
        elif byte in _COMMON_DATA and _COMMON_DATA[byte]:
            self._status, self._need = byte, _COMMON_DATA[byte]
        else:  # sysex start/end, tune request, undefined F4/F5: no data follows under this status
            self._status = 0
            if byte in _COMMON_DATA:
                out.append(Message(byte))
