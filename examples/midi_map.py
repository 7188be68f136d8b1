"""A MIDI map: bind pads and a fader to Commands, with LEDs that follow the mixer.

    .venv/bin/python examples/midi_map.py

The same `[[midi.map]]` entries go into config.toml (or a map file in control/midi/maps/). Here the
controller's input is an EventRing — the lock-free ring the JACK process callback fills from
`stemd:midi_in` in the daemon — so the example needs no JACK server: it writes the bytes a pad
sends, lets the controller thread's `poll()` turn them into Commands through the Session, and prints
the mixer state and the LED bytes the controller would send back to `stemd:midi_out`.
"""

from __future__ import annotations

import tomllib

from stemd.control.commands import STEMS_4
from stemd.control.midi.controller import MidiController
from stemd.control.midi.mapping import bindings_from_entries
from stemd.control.midi.ring import EventRing
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session

MAP = """
[[midi.map]]            # pad 36 on channel 1 toggles the vocals, its LED shows the mute
type = "note"
channel = 1
number = 36
command = { action = "mute", stem = "vocals" }
led = true

[[midi.map]]            # CC 7 is the bass fader: dB curve, soft takeover
type = "cc"
channel = 1
number = 7
mode = "fader"
command = { action = "gain", stem = "bass" }

[[midi.map]]            # pad 37 speaks plain words
type = "note"
channel = 1
number = 37
intent = "loop the snare for 2 beats"
"""

NOTE_ON, CC = 0x90, 0xB0


def main() -> None:
    bindings = bindings_from_entries(tomllib.loads(MAP)["midi"]["map"], "examples/midi_map.py")
    for binding in bindings:
        print(f"bound: {binding.describe()} ({binding.mode}) -> {binding.intent or binding.command}")

    mixer = Mixer(STEMS_4, 48000)
    session = Session(mixer)  # no JACK callback here, so the Session applies to the mixer directly
    controller = MidiController(session, bindings)
    ring = EventRing()
    controller.add_input(ring)
    leds: list[bytes] = []
    controller.add_output(leds.append)

    def send(*data: int) -> None:
        ring.put(0.0, bytes(data))
        controller.poll()

    controller.poll()  # the first poll sends every LED its current state
    send(NOTE_ON, 36, 127)  # press: vocals muted
    send(NOTE_ON, 36, 0)  # release: a toggle ignores it
    print("after pad 36:", {s: mixer.snapshot()["stems"][s]["muted"] for s in ("vocals", "bass")})
    fader = bindings[1]
    print(f"bass is at 0 dB = fader value {fader.db_to_value(0.0):.0f}; the fader sits at 0")
    send(CC, 7, 20)  # soft takeover: far below the level, nothing jumps
    print("bass after the fader moved to 20:", round(mixer.snapshot()["stems"]["bass"]["gain_db"], 2), "dB")
    for value in range(30, 121, 10):  # the fader passes the level, picks it up and follows
        send(CC, 7, value)
    print("bass after the fader moved up to 120:", round(mixer.snapshot()["stems"]["bass"]["gain_db"], 2), "dB")
    send(NOTE_ON, 36, 127)  # press again: vocals back
    print("LED bytes sent:", [m.hex(" ") for m in leds])


if __name__ == "__main__":
    main()
