"""The deterministic grammar: phrases -> canonical Commands, and the reasons it refuses."""

import json

import pytest

from stemd.control.commands import IntentRejected, commands_to_json
from stemd.control.intent import IntentParser, parse


def canon(text, **kw):
    return json.loads(commands_to_json(parse(text, **kw)))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("drop the vocals, bring in the bass, loop the snare",
         [{"action": "mute", "stem": "vocals"}, {"action": "unmute", "stem": "bass"},
          {"action": "loop", "stem": "drums", "part": "snare"}]),
        ("drop the vocals bring in the bass loop the snare",  # speech: no commas
         [{"action": "mute", "stem": "vocals"}, {"action": "unmute", "stem": "bass"},
          {"action": "loop", "stem": "drums", "part": "snare"}]),
        ("just bass and drums", [{"action": "solo", "stem": "bass"}, {"action": "solo", "stem": "drums"}]),
        ("mute everything except the drums", [{"action": "solo", "stem": "drums"}]),
        ("everything but the vocals", [{"action": "mute", "stem": "vocals"}]),
        ("bring back everything except the vocals",
         [{"action": "reset"}, {"action": "mute", "stem": "vocals"}]),
        ("louder drums", [{"action": "gain", "stem": "drums", "db": 3.0}]),
        ("Turn the BASE down by six dB!", [{"action": "gain", "stem": "bass", "db": -6.0}]),
        ("vocals up drums down",
         [{"action": "gain", "stem": "vocals", "db": 3.0}, {"action": "gain", "stem": "drums", "db": -3.0}]),
        ("set vocals to minus 6 db", [{"action": "gain", "stem": "vocals", "db": -6.0, "absolute": True}]),
        ("fade out the vox over two bars", [{"action": "fade", "stem": "vocals", "direction": "out", "beats": 8.0}]),
        ("loop the kick for half a bar", [{"action": "loop", "stem": "drums", "part": "kick", "beats": 2.0}]),
        ("set the tempo to one twenty eight", [{"action": "tempo", "bpm": 128.0}]),
        ("instrumental please", [{"action": "mute", "stem": "vocals"}]),
        ("acapella", [{"action": "solo", "stem": "vocals"}]),
        ("bring it all back", [{"action": "reset"}]),
        ("remove the reverb from the singer", [{"action": "refine", "stem": "vocals", "mode": "dereverb"}]),
        ("release the loop", [{"action": "unloop", "stem": "all"}]),
        ("stop soloing", [{"action": "unsolo"}]),
    ],
)
def test_phrases(text, expected):
    assert canon(text) == expected


def test_bars_follow_the_meter():
    assert canon("loop the drums for two bars", beats_per_bar=3) == [
        {"action": "loop", "stem": "drums", "beats": 6.0}]


def test_default_step_comes_from_the_mixer_config():
    parser = IntentParser(stems=("vocals", "drums", "bass", "other"), default_step_db=2.0, semantic="off")
    assert [c.db for c in parser.parse("louder drums, a lot quieter vocals")] == [2.0, -4.0]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("what's the weather", "question"),
        ("are the vocals muted", "question"),
        ("make it heavier", "heavier"),
        ("drop the beat", "drop the beat"),
        ("mute", "mute what"),
        ("mute the kick", "only be looped"),
        ("fade the vocals", "in or out"),
        ("", "nothing to do"),
        ("please thank you", "nothing to do"),
    ],
)
def test_rejects_with_a_reason(text, reason):
    with pytest.raises(IntentRejected, match=reason):
        parse(text)


def test_instruments_go_to_the_stem_demucs_files_them_under_without_audio():
    four = IntentParser(stems=("vocals", "drums", "bass", "other"), semantic="off")
    six = IntentParser(stems=("vocals", "drums", "bass", "other", "guitar", "piano"), semantic="off")
    assert four.parse("mute the piano")[0].stem == "other"
    assert six.parse("mute the keys")[0].stem == "piano"
    assert six.parse("loop the strings")[0].stem == "other"


def test_vocabulary_covers_every_word_of_a_known_phrase():
    vocab = set(IntentParser(semantic="off").vocabulary())
    for word in "drop the vocals bring in base loop snare twenty eight bars minus db".split():
        assert word in vocab


def test_stemd_parse_prints_canonical_json_or_the_reason(capsys):
    from stemd.cli import main

    assert main(["parse", "drop the vocals, loop the snare", "--json", "--grammar"]) == 0
    assert capsys.readouterr().out.strip() == (
        '[{"action":"mute","stem":"vocals"},{"action":"loop","stem":"drums","part":"snare"}]')
    assert main(["parse", "mute the piano", "--stems", "vocals,drums,bass,other", "--grammar"]) == 0
    assert capsys.readouterr().out.strip() == '{"action":"mute","stem":"other"}'
    assert main(["parse", "drop the beat", "--grammar"]) == 1
    assert "drop the beat" in capsys.readouterr().err
