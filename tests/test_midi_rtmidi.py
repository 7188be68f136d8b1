"""rtmidi ports (ALSA where it exists, JACK through rtmidi here) and the daemon's MIDI service from config."""

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import rtmidi

from midi_rig import Received, connected, wait_for
from stemd.config import validate
from stemd.control.commands import STEMS_4
from stemd.control.midi.controller import MidiController
from stemd.control.midi.mapping import binding_from_entry
from stemd.control.midi.rtmidi_ports import API_ALSA, API_JACK, MidiPortError, RtMidiPorts
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session

MUTE_VOX = {"type": "note", "channel": 1, "number": 36, "command": {"action": "mute", "stem": "vocals"},
            "led": True}
NO_ALSA = not Path("/dev/snd/seq").exists()


def offline_session() -> Session:
    return Session(Mixer(STEMS_4, 48000))  # no audio thread: commands apply at once


def drive(port: rtmidi.MidiOut, session: Session) -> None:
    """A press mutes the vocals, a second press unmutes them; the LED output follows."""
    port.send_message([0x90, 36, 127])
    assert wait_for(lambda: session.snapshot()["stems"]["vocals"]["muted"])
    port.send_message([0x90, 36, 127])
    assert wait_for(lambda: not session.snapshot()["stems"]["vocals"]["muted"])


@pytest.mark.skipif(NO_ALSA, reason="no ALSA sequencer (/dev/snd/seq is absent in this container), so rtmidi's "
                                    "ALSA API cannot open a client; the same class is tested over rtmidi's JACK API")
def test_alsa_sequencer_ports():
    controller_port = rtmidi.MidiOut(API_ALSA, name="stemd-test-pad")
    controller_port.open_virtual_port("pad")
    session = offline_session()
    ports = RtMidiPorts(API_ALSA, in_match="stemd-test-pad")
    midi = MidiController(session, [binding_from_entry(MUTE_VOX)])
    midi.attach_rtmidi(ports)
    midi.start()
    try:
        time.sleep(0.1)
        drive(controller_port, session)
    finally:
        midi.stop()
        controller_port.delete()


def test_rtmidi_ports_over_jack_carry_control_and_leds(jackd):
    pad = rtmidi.MidiOut(API_JACK, name="pad")
    pad.open_virtual_port("out")
    leds = Received(None, name="padleds")
    session = offline_session()
    ports = RtMidiPorts(API_JACK, in_match="pad:out", out_match="padleds:in", client_name="stemd-rt")
    midi = MidiController(session, [binding_from_entry(MUTE_VOX)])
    midi.attach_rtmidi(ports)
    midi.start()
    probe = jackd.client("probe")
    try:
        connected(probe, "pad:out")
        connected(probe, "padleds:in")
        drive(pad, session)
        assert wait_for(lambda: (0x90, 36, 0) in leds.messages and (0x90, 36, 127) in leds.messages)
    finally:
        probe.close()
        midi.stop()
        pad.delete()
        leds.close()


def test_missing_port_names_what_exists(jackd):
    with pytest.raises(MidiPortError, match="no MIDI port matching 'nothing-here'"):
        RtMidiPorts(API_JACK, in_match="nothing-here")


def test_service_from_config_wires_maps_learn_jack_and_survives_missing_alsa(jackd, tmp_path, caplog):
    sender = jackd.client("pad")
    pad_out = sender.midi_outports.register("out")
    queued = []

    @sender.set_process_callback
    def process(frames):
        pad_out.clear_buffer()
        while queued:
            pad_out.write_midi_event(0, queued.pop(0))

    sender.activate()
    cfg = validate({
        "midi": {"map_files": ["generic-8x4"], "connect_in": ["pad:out"], "alsa_in": "no-such-controller",
                 "map": [{"type": "note", "channel": 1, "number": 36, "command": {"action": "solo", "stem": "bass"}}]},
        "state": {"dir": str(tmp_path / "state")},
    })
    session = Session(Mixer(STEMS_4, jackd.rate, max_block=jackd.period), realtime=True)
    with caplog.at_level(logging.WARNING, logger="stemd.midi"):
        midi = MidiController.from_config(cfg, session)
    assert session.midi is midi and "ALSA ports not opened" in caplog.text
    assert len(midi.bindings) == 13 and midi.bindings[("note", 1, 36)].command.action.value == "solo"  # 8+1+4

    client = jackd.client("stemd")
    midi.jack_hook.register(client)  # as the daemon's JACK client does before activating
    stems = np.zeros((4, 2, jackd.period), dtype=np.float32)
    out = np.zeros((2, jackd.period), dtype=np.float32)

    @client.set_process_callback
    def stemd_process(frames):
        midi.jack_hook.process(frames)
        session.mixer.process(stems[:, :, :frames], out[:, :frames])

    client.activate()
    midi.start()
    try:
        connected(client, "stemd:midi_in")  # made by the controller thread from connect_in
        queued.append(b"\x90\x24\x7f")  # config entry wins over the map file: solo bass
        queued.append(b"\x90\x25\x7f")  # from the map file: mute drums
        assert wait_for(lambda: session.snapshot()["stems"]["bass"]["soloed"])
        assert wait_for(lambda: session.snapshot()["stems"]["drums"]["muted"])
    finally:
        midi.stop()
        client.deactivate()
        client.close()
        sender.close()
