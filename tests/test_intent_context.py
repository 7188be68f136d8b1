"""Pronouns across sentences: "drop the vocals" then "bring them back", through a real Session and
Mixer (and real OSC over UDP for the demo's one-shot clients). The single-sentence cases with a
referent are rows of the evaluation set (category "context"); these are the multi-turn ones."""

import pytest

from osc_harness import osc  # noqa: F401 (fixture)
from stemd.control.commands import STEMS_4, Command, IntentRejected
from stemd.control.intent import IntentParser, parse
from stemd.control.intent.context import Conversation
from stemd.control.osc.client import request
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session


def session(stems=STEMS_4) -> Session:
    s = Session(Mixer(stems, 48000), model_name="test-model")
    Conversation(IntentParser(stems=stems, semantic="off")).attach(s)
    return s


def said(s: Session, text: str) -> list[dict]:
    return [c.to_dict() for c in s.intent(text, source="voice").commands]


def stems(s: Session) -> dict:
    return s.snapshot()["stems"]


def test_the_demo_script_brings_the_vocals_back():
    s = session()
    said(s, "drop the vocals")
    assert stems(s)["vocals"]["muted"]
    assert said(s, "bring them back") == [{"action": "unmute", "stem": "vocals"}]
    assert not stems(s)["vocals"]["muted"]


def test_a_pronoun_before_any_sentence_is_rejected_and_changes_nothing():
    s = session()
    before = s.snapshot()
    with pytest.raises(IntentRejected, match=r"^bring them back\? nothing was changed yet — name a stem"):
        s.intent("bring them back")
    assert s.snapshot() == before
    # gain without a referent keeps its documented meaning: the whole mix
    assert said(s, "turn it up") == [{"action": "gain", "stem": "all", "db": 3.0}]


def test_two_stems_then_them():
    s = session()
    said(s, "drop the vocals and the drums")
    assert said(s, "bring them back in") == [{"action": "unmute", "stem": "vocals"}, {"action": "unmute", "stem": "drums"}]
    assert not any(v["muted"] for v in stems(s).values())


def test_stop_it_after_a_loop_releases_the_loop():
    s = session()
    said(s, "loop the snare")
    assert s.snapshot()["loops"]["drums"]["part"] == "snare"
    assert said(s, "stop it") == [{"action": "unloop", "stem": "drums", "part": "snare"}]
    assert "drums" not in s.snapshot()["loops"]
    said(s, "loop the snare")
    assert said(s, "release it") == [{"action": "unloop", "stem": "drums", "part": "snare"}]


def test_only_the_previous_sentence_counts():
    s = session()
    said(s, "mute the bass")
    said(s, "mute the drums")
    assert said(s, "bring it back") == [{"action": "unmute", "stem": "drums"}]
    assert stems(s)["bass"]["muted"]  # never reached back past the previous sentence
    said(s, "reset")
    with pytest.raises(IntentRejected, match=r"the last command \('reset'\) named no stem"):
        s.intent("mute them")


def test_rejected_sentences_and_faders_leave_the_referent_alone():
    s = session()
    said(s, "drop the vocals")
    with pytest.raises(IntentRejected):
        s.intent("what's the weather")
    s.submit([Command("gain", stem="bass", db=-3.0)], source="osc")  # a fader: no text
    assert said(s, "bring them back") == [{"action": "unmute", "stem": "vocals"}]


def test_the_referent_is_the_stem_the_model_applied():
    """On a 2-stem model "the drums" land on accompaniment; "them" is then accompaniment."""
    s = session(("vocals", "accompaniment"))
    applied = s.intent("drop the drums")
    assert applied.commands == (Command("mute", stem="accompaniment"),)
    assert said(s, "bring them back") == [{"action": "unmute", "stem": "accompaniment"}]


def test_status_says_what_it_refers_to():
    s = session()
    assert "nothing was changed yet" in s.snapshot()["intent"]["pronouns"]
    said(s, "mute the bass")
    intent = s.snapshot()["intent"]
    assert intent["pronouns"] == "'it'/'them' = bass (from 'mute the bass')"
    assert intent["grammar"] == "on" and intent["semantic"].startswith("off")


def test_the_grammar_stays_stateless():
    parser = IntentParser(stems=STEMS_4, semantic="off")
    parser.parse("drop the vocals")
    for p in (parse, parser.parse):
        with pytest.raises(IntentRejected, match=r"unmute 'them'\? name a stem"):
            p("bring them back")


def test_one_shot_osc_clients_share_the_session_context(osc):  # noqa: F811
    """The demo and `stemd send` open a fresh UDP port per line: the context is the session's."""
    server = osc()
    Conversation(IntentParser(stems=server.session.mixer.stems, semantic="off")).attach(server.session)
    host, port = server.address
    assert request(host, port, "/stemd/intent", ["drop the vocals"]).ok
    assert server.session.snapshot()["stems"]["vocals"]["muted"]
    assert request(host, port, "/stemd/intent", ["bring them back"]).ok
    assert not server.session.snapshot()["stems"]["vocals"]["muted"]
