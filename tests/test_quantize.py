"""Beat-quantized commands: a Command's `at` waits for a musical boundary of the heard beat grid and
lands on its exact sample, in the mixer offline, in the real daemon on a real jackd (the output as a
JACK client records it), over OSC (pending list pushed, launch quantize of direct controls) and in
`stemd status`."""

import json
import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player
from osc_harness import osc, surface  # noqa: F401 (fixtures)
from test_daemon_jack import wait_until

from stemd.cli.status import render
from stemd.control.commands import Action, Command, CommandError
from stemd.control.intent import parse
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session

STEMS = ("vocals", "drums", "bass", "other")
BPMS = (84.0, 97.0, 128.0, 152.0)
TAP_TRIES = 3  # bar lines the JACK test may watch per tempo to get one its tap recorded whole


def first_change(out: np.ndarray, steady: float) -> int:
    return int(np.flatnonzero(np.abs(out - steady) > 1e-6)[0])


@pytest.mark.parametrize("bpm", BPMS)
@pytest.mark.parametrize("at,unit_beats", [("bar", 4), ("phrase", 16), ("4 beats", 1)])
def test_a_timed_mute_starts_on_the_boundary_sample(bpm, at, unit_beats):
    sr, block = 48000, 256
    mixer = Mixer(STEMS, sr, max_block=block)
    mixer.apply(Command("tempo", bpm=bpm))
    seconds = 16 * 60.0 / bpm + 1.0
    stems = np.ones((4, 2, int(seconds * sr) // block * block), np.float32)
    out = np.zeros((2, stems.shape[2]), np.float32)
    asked = 7 * block + 3 * block  # some way into a bar
    for lo in range(0, stems.shape[2], block):
        if lo == asked:
            mixer.apply(Command("mute", stem="vocals", at=at))
            landing = mixer.pending()[0]["frame"]
        mixer.process(stems[:, :, lo:lo + block], out[:, lo:lo + block])
    start = first_change(out[0], 4.0)
    assert start == landing  # the ramp's first sample is the boundary's
    beat = mixer.clock.beat_at(start)
    spb = mixer.clock.samples_per_beat
    assert 0 <= (beat - unit_beats * round(beat / unit_beats)) * spb < 1  # the boundary's first sample
    if at == "4 beats":
        assert round(beat) - mixer.clock.beat_at(asked) == pytest.approx(4, abs=1)
    assert mixer.pending() == [] and mixer.snapshot()["stems"]["vocals"]["muted"]


def test_cancel_drops_what_waits_and_timed_loops_and_fades_start_on_the_bar():
    sr, block = 48000, 128
    mixer = Mixer(STEMS, sr, max_block=block)
    mixer.apply(Command("tempo", bpm=120.0))
    mixer.frame = 30_000  # well into the first bar
    mixer.apply(Command("mute", stem="bass", at="bar"))
    mixer.apply(Command("cancel"))
    mixer.apply(Command("fade", stem="drums", direction="out", beats=2, at="bar"))
    mixer.apply(Command("loop", stem="other", beats=1, at="2 bars"))
    assert [p["at"] for p in mixer.pending()] == ["bar", "2 bars"]
    bar, loop_bar = (p["frame"] for p in mixer.pending())
    rng = np.random.default_rng(1)
    stems = rng.standard_normal((4, 2, 5 * sr)).astype(np.float32)
    heard = np.zeros_like(stems)
    out = np.zeros((2, block), np.float32)
    for lo in range(0, stems.shape[2], block):
        mixer.process(stems[:, :, lo:lo + block], out, heard[:, :, lo:lo + block], frame_time=30_000 + lo)
    bar, loop_bar = bar - 30_000, loop_bar - 30_000  # as indices of the arrays
    spb = mixer.clock.samples_per_beat
    assert loop_bar - bar == pytest.approx(4 * spb, abs=1)
    assert np.array_equal(heard[2], stems[2])  # the cancelled mute never happened
    # drums pass the drum-part splitter (float rounding): compare levels; the 2-beat fade is half way
    # one beat after the bar line and had not begun before it
    assert np.allclose(heard[1, :, :bar], stems[1, :, :bar], atol=1e-3)
    mid = bar + round(spb)
    half = heard[1, :, mid - 64:mid + 64] / stems[1, :, mid - 64:mid + 64]
    assert np.median(half) == pytest.approx(0.5, abs=0.01)
    loop_start = int(np.flatnonzero(np.any(heard[3] != stems[3], axis=0))[0])
    assert loop_start == loop_bar


def test_the_session_refuses_timed_commands_without_a_tempo_and_applies_direct_quantize():
    mixer = Mixer(STEMS, 48000)
    session = Session(mixer, parser=lambda text: parse(text, mixer.stems))
    with pytest.raises(CommandError, match="no tempo"):
        session.intent("mute the vocals on the next bar")
    assert mixer.pending() == [] and not mixer.snapshot()["stems"]["vocals"]["muted"]
    session.submit([Command("tempo", bpm=124.0)])
    mixer.frame = 30_000  # into the first bar
    session.intent("drop the vocals at the next phrase")
    session.quantize = "bar"
    session.submit([session.direct(Command("mute", stem="bass"))])
    session.submit([session.direct(Command("gain", stem="drums", db=-6.0, absolute=True))])  # a fader
    pending = mixer.snapshot()["pending"]
    assert [(p["command"]["stem"], p["at"]) for p in pending] == [("bass", "bar"), ("vocals", "phrase")]
    assert mixer.snapshot()["stems"]["drums"]["gain_db"] == -6.0
    assert "pending" in render(session.snapshot()) and "on the phrase" in render(session.snapshot())
    session.intent("never mind")
    assert mixer.pending() == []


@pytest.mark.jack
def test_timed_commands_land_on_the_bar_line_as_heard_at_the_output(jackd, tmp_path):
    """The real daemon (oracle separator) on a real jackd, a constant input: the output, recorded by a
    JACK client after the daemon in each cycle and placed on the mixer's timeline (the heard one, L
    included), changes first on the bar line's sample, at tempi from 84 to 152 BPM."""
    with running_daemon(jackd, tmp_path, transport={"estimate": False}) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 15), daemon.stats()
        player = Player(jackd, np.full((2, jackd.rate), 0.5, np.float32), loop=True)
        tap = jackd.client("tap")
        heard = np.full(60 * jackd.rate, np.nan, np.float32)  # NaN: a cycle the tap did not record
        port = tap.inports.register("in")

        @tap.set_process_callback
        def process(frames):  # runs after stemd in the cycle: this block is the one stemd's callback played
            lo = daemon.jack.rt.cycle()[0]
            if 0 <= lo and lo + frames <= heard.shape[0]:
                heard[lo:lo + frames] = port.get_array()

        tap.activate()
        try:
            player.connect("stemd:in_L", "stemd:in_R")
            tap.connect("stemd:out_L", "tap:in")
            player.play()
            with pytest.raises(CommandError, match="no tempo"):
                daemon.session.intent("mute the vocals on the next bar")
            mixer = daemon.session.mixer
            for bpm in BPMS:
                daemon.session.submit([Command("tempo", bpm=bpm)], "test")
                for _ in range(TAP_TRIES):
                    time.sleep(0.5)  # wet, steady output
                    applied = daemon.session.intent("mute the vocals on the next bar", "test")
                    assert applied.commands[0].at == "bar"
                    assert wait_until(lambda: mixer.pending(), 2)
                    landing = mixer.pending()[0]["frame"]
                    assert wait_until(lambda: mixer.frame > landing + jackd.rate // 10, 6)
                    window = heard[landing - 2000:landing + 200]
                    if not np.isnan(window).any():
                        break
                    # The tap (a Python client) missed a cycle around the bar line: no measurement.
                    daemon.session.submit([Command("unmute", stem="vocals")], "test")
                else:
                    pytest.fail(f"{bpm} BPM: the tap missed a cycle around the bar line in {TAP_TRIES} tries")
                start = landing - 2000 + first_change(window, float(np.median(window[:1500])))
                beat = mixer.clock.beat_at(start)
                spb = mixer.clock.samples_per_beat
                print(f"{bpm} BPM: lands at frame {start}, bar line {landing}, beat {beat:.5f}")
                assert abs(start - landing) <= 1
                assert 0 <= (beat - 4 * round(beat / 4)) * spb < 1  # the bar line's first sample
                daemon.session.submit([Command("unmute", stem="vocals")], "test")
        finally:
            tap.deactivate()
            tap.close()
            player.close()


def test_pending_commands_are_pushed_to_osc_subscribers_and_direct_controls_quantize(osc, surface):  # noqa: F811
    """Over real UDP: a mute button under `quantize = "bar"` waits (the pending list is pushed to the
    subscriber), "never mind" drops it; the refine address takes the stacked mode and feedback echoes it."""
    server = osc(parser=True)
    session = server.session
    session.quantize = "bar"
    refined = []
    session.on(Action.REFINE, refined.append)  # the daemon registers its worker here the same way
    tablet = surface(server)
    tablet.ask("/stemd/subscribe")
    tablet.ask("/stemd/tempo", 120.0)
    assert tablet.ask("/stemd/stem/drums/mute", 1)[0] == "/stemd/ok"
    waiting = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not waiting:
        tablet.collect(0.1)
        waiting = [w for address, args in tablet.pushed if address == "/stemd/pending" for w in json.loads(args[0])]
    assert waiting and waiting[0]["command"] == {"action": "mute", "stem": "drums", "at": "bar"}
    address, args = tablet.ask("/stemd/intent", "never mind")
    assert address == "/stemd/ok" and json.loads(args[0]) == [{"action": "cancel"}]
    assert session.mixer.pending() == [] and not session.mixer.snapshot()["stems"]["drums"]["muted"]
    assert tablet.wait_for("/stemd/pending", ("[]",), timeout=3.0)
    assert tablet.ask("/stemd/stem/vocals/refine", "clean+dereverb")[0] == "/stemd/ok"
    assert refined == [Command("refine", stem="vocals", mode="clean+dereverb")]
    assert tablet.wait_for("/stemd/stem/vocals/refine", ("clean+dereverb",), timeout=3.0)
    address, args = tablet.ask("/stemd/stem/vocals/refine", "louder")
    assert address == "/stemd/error" and "clean+dereverb" in args[0]


@pytest.mark.jack
def test_a_midi_pad_under_launch_quantize_waits_for_the_bar_and_a_fader_does_not(jackd):
    """Real JACK MIDI: a binding whose command carries `at` always waits for it; with `quantize = "bar"`
    every pad waits for the bar line (then lands), a fader on the same controller moves at once."""
    from midi_rig import StemdMidi
    from test_midi_jack import BASS_FADER, MUTE_VOX, send

    drums_on_the_beat = dict(type="note", channel=1, number=37, command={"action": "mute", "stem": "drums", "at": "2 beats"})
    with StemdMidi(jackd, [MUTE_VOX, drums_on_the_beat, dict(BASS_FADER, soft_takeover=False)]) as rig:
        rig.session.submit([Command("tempo", bpm=150.0)])  # a bar is 1.6 s
        pad = rig.pad()
        send(rig, pad, (0x90, 37, 100), (0x90, 36, 100))  # quantize off: the drums pad waits, vocals not
        assert [p["command"] for p in rig.mixer.pending()] == [{"action": "mute", "stem": "drums", "at": "2 beats"}]
        assert rig.stems()["vocals"]["muted"] and not rig.stems()["drums"]["muted"]
        rig.session.quantize = "bar"
        send(rig, pad, (0x90, 36, 100))  # the toggle's second press, now quantized
        assert {"action": "unmute", "stem": "vocals", "at": "bar"} in [p["command"] for p in rig.mixer.pending()]
        assert rig.stems()["vocals"]["muted"]
        send(rig, pad, (0xB0, 7, 64))
        assert rig.stems()["bass"]["gain_db"] < 0  # the fader: at once
        assert wait_until(lambda: not rig.stems()["vocals"]["muted"] and rig.stems()["drums"]["muted"], 4)
        assert rig.mixer.pending() == []
