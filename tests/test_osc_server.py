"""Every address of the OSC namespace over real UDP on 127.0.0.1, with its answer to the sender."""

import json
import math
import threading
import time

import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import build_msg

from osc_harness import osc, real_parser, surface  # noqa: F401 (fixtures)
from stemd.config import validate
from stemd.control.commands import Action, Command
from stemd.control.osc.fader import db_to_position, position_to_db
from stemd.control.osc.server import OscServer


@pytest.fixture
def server(osc):
    return osc()


@pytest.fixture
def tablet(server, surface):
    return surface(server)


def commands(answer):
    address, args = answer
    assert address == "/stemd/ok", args
    return json.loads(args[0])


def error(answer):
    address, args = answer
    assert address == "/stemd/error", args
    return args[0]


def stems(server):
    return server.session.snapshot()["stems"]


def test_mute_and_solo_take_ints_floats_and_bools(server, tablet):
    assert commands(tablet.ask("/stemd/stem/bass/mute", 1)) == [{"action": "mute", "stem": "bass"}]
    assert stems(server)["bass"]["muted"]
    assert commands(tablet.ask("/stemd/stem/bass/mute", 0.0)) == [{"action": "unmute", "stem": "bass"}]
    assert not stems(server)["bass"]["muted"]
    assert commands(tablet.ask("/stemd/stem/drums/solo", True)) == [{"action": "solo", "stem": "drums"}]
    assert stems(server)["drums"]["soloed"]
    assert commands(tablet.ask("/stemd/stem/drums/solo", 0)) == [{"action": "unsolo", "stem": "drums"}]
    commands(tablet.ask("/stemd/stem/all/mute", 1.0))
    assert all(s["muted"] for s in stems(server).values())


def test_fader_curve_sets_absolute_gain(server, tablet):
    top = server.session.mixer.max_gain_db
    for position, db in [(0.75, 0.0), (1.0, top), (0.375, 40 * math.log10(0.5)), (0.0, -60.0)]:
        (cmd,) = commands(tablet.ask("/stemd/stem/vocals/gain", position))
        assert cmd["action"] == "gain" and cmd["absolute"] is True
        assert cmd["db"] == pytest.approx(db)
        assert stems(server)["vocals"]["gain_db"] == pytest.approx(db)
    for db in (-40.0, -12.0, -3.0, 0.0, 6.0, top):
        assert position_to_db(db_to_position(db, top), top) == pytest.approx(db)
    commands(tablet.ask("/stemd/stem/all/gain", 0.75 / 2))
    assert server.session.snapshot()["master_db"] == pytest.approx(40 * math.log10(0.5))


def test_gain_db_is_absolute_and_bounded(server, tablet):
    (cmd,) = commands(tablet.ask("/stemd/stem/other/gain_db", -6))
    assert cmd == {"action": "gain", "stem": "other", "db": -6.0, "absolute": True}
    commands(tablet.ask("/stemd/stem/other/gain_db", -6.0))
    assert stems(server)["other"]["gain_db"] == -6.0  # absolute: twice -6 is still -6
    assert commands(tablet.ask("/stemd/stem/other/gain_db", -200.0))[0]["db"] == -60.0  # below -60 = silence
    assert "out of range" in error(tablet.ask("/stemd/stem/other/gain_db", 30.0))


def test_loop_and_refine_reach_their_owners(server, tablet):
    assert "refine is not available" in error(tablet.ask("/stemd/stem/vocals/refine", "clean"))
    got = []
    server.session.on(Action.LOOP, got.append)
    server.session.on(Action.UNLOOP, got.append)
    server.session.on(Action.REFINE, got.append)
    assert commands(tablet.ask("/stemd/stem/drums/loop", 4)) == [{"action": "loop", "stem": "drums", "beats": 4.0}]
    assert commands(tablet.ask("/stemd/stem/drums/loop", 0.0)) == [{"action": "unloop", "stem": "drums"}]
    assert commands(tablet.ask("/stemd/stem/vocals/refine", "dereverb")) == [
        {"action": "refine", "stem": "vocals", "mode": "dereverb"}
    ]
    assert got == [
        Command("loop", stem="drums", beats=4.0),
        Command("unloop", stem="drums"),
        Command("refine", stem="vocals", mode="dereverb"),
    ]
    assert "mode must be one of" in error(tablet.ask("/stemd/stem/vocals/refine", "sparkle"))


def test_reset_tempo_and_status(server, tablet):
    tablet.ask("/stemd/stem/vocals/mute", 1)
    assert commands(tablet.ask("/stemd/reset")) == [{"action": "reset"}]
    assert not stems(server)["vocals"]["muted"]
    assert commands(tablet.ask("/stemd/reset", 0.0)) == []  # a push button's release does nothing
    assert commands(tablet.ask("/stemd/tempo", 128)) == [{"action": "tempo", "bpm": 128.0}]
    address, (text,) = tablet.ask("/stemd/status")
    assert address == "/stemd/status.reply"
    status = json.loads(text)
    assert status["bpm"] == 128.0 and status["model"] == "test-model"
    assert set(status["stems"]) == {"vocals", "drums", "bass", "other"}
    assert status["osc"]["received"] >= 4


def test_services_absent_are_explained(server, tablet):
    assert "beat clock" in error(tablet.ask("/stemd/tap"))
    assert "voice control is not available" in error(tablet.ask("/stemd/voice/listen", 1))
    assert "MIDI control is not available" in error(tablet.ask("/stemd/midi/learn", '{"action":"mute","stem":"bass"}'))


def test_tap_uses_the_beat_clock(server, tablet):
    transport = pytest.importorskip("stemd.daemon.transport")
    server.session.beat_clock = transport.BeatClock(48000, bpm=100.0)
    assert tablet.ask("/stemd/tap") == ("/stemd/ok", ("[]",))
    time.sleep(0.3)
    address, args = tablet.ask("/stemd/tap", 1.0)
    assert address == "/stemd/ok" and args[1].startswith("tap tempo: ")
    assert server.session.beat_clock.bpm == pytest.approx(200.0, rel=0.2)


class Recorder:
    """Stands in for the voice and MIDI services' call surface only (they have their own tests)."""

    def __init__(self):
        self.calls = []

    def listen(self, on):
        self.calls.append(("listen", on))

    def learn(self, command):
        self.calls.append(("learn", command))


def test_voice_listen_and_midi_learn_reach_their_services(server, tablet):
    server.session.voice = server.session.midi = service = Recorder()
    assert commands(tablet.ask("/stemd/voice/listen", 1)) == []
    assert commands(tablet.ask("/stemd/voice/listen", 0.0)) == []
    learned = commands(tablet.ask("/stemd/midi/learn", '{"action":"mute","stem":"bass"}'))
    assert learned == [{"action": "mute", "stem": "bass"}]
    assert "one command" in error(tablet.ask("/stemd/midi/learn", '[{"action":"reset"},{"action":"reset"}]'))
    assert "unknown field" in error(tablet.ask("/stemd/midi/learn", '{"action":"mute","stem":"bass","x":1}'))
    assert service.calls == [("listen", True), ("listen", False), ("learn", Command("mute", stem="bass"))]


def test_intent_without_a_parser_is_refused_with_the_reason(tablet):
    assert "intent parser is not available" in error(tablet.ask("/stemd/intent", "drop the vocals"))


def test_intent_text_is_parsed_applied_and_answered(osc, surface):
    if real_parser(("vocals",)) is None:
        pytest.skip("the intent parser (stemd.control.intent) is not built yet")
    server = osc(parser=True)
    tablet = surface(server)
    assert commands(tablet.ask("/stemd/intent", "drop the vocals")) == [{"action": "mute", "stem": "vocals"}]
    assert stems(server)["vocals"]["muted"]
    reason = error(tablet.ask("/stemd/intent", "make me a sandwich"))
    assert reason and not stems(server)["drums"]["muted"]
    server.session.midi = service = Recorder()
    assert commands(tablet.ask("/stemd/midi/learn", "mute the bass")) == [{"action": "mute", "stem": "bass"}]
    assert service.calls == [("learn", Command("mute", stem="bass"))]


def test_a_slow_parse_never_holds_up_direct_controls(server, tablet):
    parse = real_parser(server.session.mixer.stems)
    if parse is None:
        pytest.skip("the intent parser (stemd.control.intent) is not built yet")
    parsing, gate = threading.Event(), threading.Event()

    def slow_parse(text):  # the real parser, held the way a first semantic-model load holds it
        parsing.set()
        gate.wait(10.0)
        return parse(text)

    server.session.parser = slow_parse
    tablet.send("/stemd/intent", "drop the vocals")
    assert commands(tablet.ask("/stemd/stem/bass/mute", 1)) == [{"action": "mute", "stem": "bass"}]
    assert parsing.wait(5.0)
    for _ in range(70):  # 64 wait behind the sentence being parsed, the rest are refused at once
        tablet.send("/stemd/intent", "drop the drums")
    busy = tablet.answers(6)
    assert len(busy) == 6 and all("busy, 64 sentences already pending" in a[1][0] for a in busy)
    gate.set()
    assert commands(tablet.answer()) == [{"action": "mute", "stem": "vocals"}]
    assert len(tablet.answers(64, timeout=10.0)) == 64


def test_address_patterns_over_stem_controls_apply_as_one_batch(server, tablet):
    assert commands(tablet.ask("/stemd/stem/{vocals,bass}/mute", 1)) == [
        {"action": "mute", "stem": "vocals"}, {"action": "mute", "stem": "bass"}]
    assert [s["muted"] for s in stems(server).values()] == [True, False, True, False]
    assert [c["stem"] for c in commands(tablet.ask("/stemd/stem/[!v]*/solo", 1.0))] == ["drums", "bass", "other"]
    assert len(commands(tablet.ask("/stemd/stem/*/gain", 0.375))) == 4
    assert all(s["gain_db"] == pytest.approx(-12.04, abs=0.01) for s in stems(server).values())
    assert "expects a string" in error(tablet.ask("/stemd/stem/*/*", 1))  # refine takes text: nothing applied
    assert all(s["gain_db"] == pytest.approx(-12.04, abs=0.01) for s in stems(server).values())
    assert "matches no address" in error(tablet.ask("/stemd/stem/kazoo*/mute", 1))
    assert "too complex" in error(tablet.ask("/stemd/stem/" + "*x" * 40 + "/mute", 1))


def test_two_stem_model_notes_ride_along(osc, surface):
    tablet = surface(osc(stems=("vocals", "accompaniment")))
    address, args = tablet.ask("/stemd/stem/drums/mute", 1)
    assert address == "/stemd/ok" and json.loads(args[0]) == [{"action": "mute", "stem": "accompaniment"}]
    assert "no separate drums" in args[1]


@pytest.mark.parametrize(
    "address,args,reason",
    [
        ("/stemd/nothing", [], "unknown address"),
        ("/stemd/stem/bass/pan", [0.5], "unknown address"),
        ("/stemd/stem/bass/mute/x", [1], "unknown address"),
        ("/stemd/stem/kazoo/mute", [1], "unknown stem"),
        ("/stemd/stem/bass/mute", [], "takes one"),
        ("/stemd/stem/bass/mute", [1, 1], "takes one"),
        ("/stemd/stem/bass/mute", [2], "expects 0 or 1"),
        ("/stemd/stem/bass/mute", ["on"], "expects 0 or 1"),
        ("/stemd/stem/bass/gain", [1.5], "out of range"),
        ("/stemd/stem/bass/gain", [-0.1], "out of range"),
        ("/stemd/stem/bass/gain", ["loud"], "expects a number"),
        ("/stemd/stem/bass/gain", [float("nan")], "out of range"),
        ("/stemd/stem/bass/gain", [b"\x00\x01"], "expects a number"),
        ("/stemd/stem/bass/loop", [-4], "out of range"),
        ("/stemd/stem/bass/loop", [1000], "beats must be"),
        ("/stemd/stem/bass/refine", [1], "expects a string"),
        ("/stemd/tempo", [1000.0], "bpm must be between"),
        ("/stemd/tempo", ["fast"], "expects a number"),
        ("/stemd/status", [1], "takes no arguments"),
        ("/stemd/reset", ["now"], "button value"),
        ("/stemd/subscribe", [70000], "out of range"),
        ("/stemd/subscribe", [9000.5], "whole number"),
        ("/stemd/intent", [""], "empty text"),
        ("/stemd/intent", [3], "expects a string"),
        ("/stemd/intent", ["x" * 20000], "the limit is"),
    ],
)
def test_bad_messages_get_a_reason(server, tablet, address, args, reason):
    answer = error(tablet.ask(address, *args))
    assert reason in answer and len(answer) < 400  # a huge input is never echoed back whole


def test_future_time_tag_applies_at_its_time_without_blocking(server, tablet):
    at = time.time() + 0.6
    bundle = OscBundleBuilder(at)
    bundle.add_content(build_msg("/stemd/stem/vocals/mute", [1]))
    tablet.send_raw(bundle.build().dgram)
    # The server keeps answering while the bundle waits.
    assert commands(tablet.ask("/stemd/stem/bass/solo", 1)) == [{"action": "solo", "stem": "bass"}]
    assert not stems(server)["vocals"]["muted"]
    assert commands(tablet.answer(timeout=3.0)) == [{"action": "mute", "stem": "vocals"}]
    assert time.time() >= at - 0.01
    assert stems(server)["vocals"]["muted"]


def test_immediate_bundle_applies_every_message_in_order(server, tablet):
    bundle = OscBundleBuilder(0)  # OSC "immediately"
    for address, value in [("/stemd/stem/other/mute", 1), ("/stemd/stem/other/mute", 0), ("/stemd/stem/bass/mute", 1)]:
        bundle.add_content(build_msg(address, [value]))
    tablet.send_raw(bundle.build().dgram)
    answers = [commands(tablet.answer()) for _ in range(3)]
    assert [a[0]["action"] for a in answers] == ["mute", "unmute", "mute"]
    assert not stems(server)["other"]["muted"] and stems(server)["bass"]["muted"]


def test_time_tag_too_far_ahead_is_refused(tablet):
    bundle = OscBundleBuilder(time.time() + 10 * 86400)
    bundle.add_content(build_msg("/stemd/reset", []))
    tablet.send_raw(bundle.build().dgram)
    assert "ahead" in error(tablet.answer())


def test_a_taken_port_is_an_error_for_the_daemon_to_report(server, tablet, tmp_path):
    config = validate({"osc": {"port": server.address[1]}}).osc
    with pytest.raises(OSError):
        OscServer(server.session, config, tmp_path).start()
    assert commands(tablet.ask("/stemd/stem/vocals/mute", 1))  # the first server is unharmed
