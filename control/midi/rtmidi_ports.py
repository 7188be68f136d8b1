"""MIDI ports through python-rtmidi: ALSA sequencer ports of USB controllers on a rig without
a2jmidid (the config's `alsa_in` / `alsa_out`), or any other rtmidi API given explicitly.

rtmidi delivers each input message on its own thread; the callback only stamps and copies it into
an SPSC ring (ring.py), which the controller thread polls like the JACK inbox. Ports are picked by
name substring because ALSA numbers change with every replug.
"""

from __future__ import annotations

import time

import rtmidi

from stemd.control.midi.ring import EventRing

API_ALSA = rtmidi.API_LINUX_ALSA
API_JACK = rtmidi.API_UNIX_JACK


class MidiPortError(RuntimeError):
    """The port cannot be opened; the message says why and lists what exists."""


def _open(port: rtmidi.MidiIn | rtmidi.MidiOut, match: str, port_name: str) -> None:
    names = port.get_ports()
    for index, name in enumerate(names):
        if match in name:
            port.open_port(index, port_name)
            return
    raise MidiPortError(f"no MIDI port matching {match!r}; available: {', '.join(names) or 'none'}")


def _create(cls: type, api: int, client_name: str) -> rtmidi.MidiIn | rtmidi.MidiOut:
    try:
        return cls(api, name=client_name)
    except (rtmidi.RtMidiError, SystemError) as exc:
        raise MidiPortError(f"{rtmidi.get_api_display_name(api)} MIDI is not available: {exc}") from None


class RtMidiPorts:
    """An input matching `in_match` and/or an output matching `out_match` ('' = none)."""

    def __init__(self, api: int = API_ALSA, in_match: str = "", out_match: str = "",
                 client_name: str = "stemd") -> None:
        self.inbox = EventRing()
        self._in: rtmidi.MidiIn | None = None
        self._out: rtmidi.MidiOut | None = None
        try:
            if in_match:
                self._in = _create(rtmidi.MidiIn, api, client_name)
                self._in.ignore_types(sysex=True, timing=False, active_sense=True)
                self._in.set_callback(self._received)
                _open(self._in, in_match, "midi_in")
            if out_match:
                self._out = _create(rtmidi.MidiOut, api, client_name)
                _open(self._out, out_match, "midi_out")
        except BaseException:
            self.close()
            raise

    def _received(self, event: tuple[list[int], float], data: object = None) -> None:
        self.inbox.put(time.monotonic(), bytes(event[0]))

    @property
    def has_output(self) -> bool:
        return self._out is not None

    def send(self, data: bytes) -> None:
        if self._out is not None:
            self._out.send_message(data)

    def close(self) -> None:
        for port in (self._in, self._out):
            if port is not None:
                port.close_port()
                port.delete()
        self._in = self._out = None
