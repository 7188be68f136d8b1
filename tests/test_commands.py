import json

import pytest

from stemd.control.commands import (
    Action, Command, CommandError, commands_from_json, commands_to_json,
)

EXAMPLES = [
    Command(Action.MUTE, stem="vocals"),
    Command(Action.UNMUTE, stem="all"),
    Command(Action.SOLO, stem="bass"),
    Command(Action.UNSOLO),
    Command(Action.GAIN, stem="drums", db=-3.5),
    Command(Action.GAIN, stem="all", db=-6.0, absolute=True),
    Command(Action.FADE, stem="other", direction="out", beats=8),
    Command(Action.LOOP, stem="drums", part="snare", beats=2),
    Command(Action.UNLOOP, stem="drums"),
    Command(Action.REFINE, stem="vocals", mode="dereverb"),
    Command(Action.RESET),
    Command(Action.TEMPO, bpm=128),
]


@pytest.mark.parametrize("command", EXAMPLES, ids=lambda c: c.action.value)
def test_json_round_trip(command):
    text = command.to_json()
    assert json.loads(text)["action"] == command.action.value
    assert Command.from_json(text) == command
    assert Command.from_json(text).to_json() == text


def test_canonical_form_orders_keys_and_omits_unset():
    assert Command("gain", stem="bass", db=3).to_json() == '{"action":"gain","stem":"bass","db":3.0}'
    assert Command("reset").to_json() == '{"action":"reset"}'


def test_list_round_trip():
    text = commands_to_json(EXAMPLES)
    assert commands_from_json(text) == EXAMPLES


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "mute", "stem": "kazoo"}, "unknown stem 'kazoo'"),
        ({"action": "gain", "stem": "bass", "db": float("nan")}, "finite"),
        ({"action": "gain", "stem": "bass", "db": 90}, "outside"),
        ({"action": "gain", "stem": "bass", "db": "loud"}, "must be a number"),
        ({"action": "gain", "stem": "bass"}, "missing 'db'"),
        ({"action": "loop", "stem": "drums", "beats": -1}, "beats must be > 0"),
        ({"action": "loop", "stem": "bass", "part": "snare"}, "only on the drums"),
        ({"action": "fade", "stem": "bass", "direction": "sideways"}, "direction"),
        ({"action": "refine", "stem": "vocals", "mode": "sparkle"}, "mode"),
        ({"action": "tempo", "bpm": 5}, "bpm"),
        ({"action": "explode"}, "unknown action"),
        ({"action": "reset", "stem": "bass"}, "takes no 'stem'"),
        ({"action": "mute", "stem": "bass", "colour": 1}, "unknown field"),
        ({"stem": "bass"}, "needs an 'action'"),
    ],
)
def test_validation_errors_are_clear(data, message):
    with pytest.raises(CommandError, match=message):
        Command.from_dict(data)


def test_invalid_json_is_a_command_error():
    with pytest.raises(CommandError, match="invalid JSON"):
        commands_from_json("{nope")
