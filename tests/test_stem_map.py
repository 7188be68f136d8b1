import pytest

from stemd.control.commands import Command, CommandError
from stemd.daemon.stem_map import route

FOUR = ("vocals", "drums", "bass", "other")
TWO = ("vocals", "accompaniment")


def test_own_stems_and_all_pass_through():
    for c in (Command("mute", stem="bass"), Command("reset"), Command("mute", stem="all")):
        assert route(c, FOUR).command == c and route(c, FOUR).note is None


def test_two_stem_model_routes_instruments_to_accompaniment_and_says_so():
    r = route(Command("solo", stem="drums"), TWO, "spleeter2")
    assert r.command == Command("solo", stem="accompaniment")
    assert "spleeter2 has no separate drums" in r.note


def test_missing_stem_is_refused_with_the_model_stems():
    with pytest.raises(CommandError, match="has no piano stem .stems: vocals, drums, bass, other"):
        route(Command("mute", stem="piano"), FOUR)
    with pytest.raises(CommandError, match="snare cannot be isolated"):
        route(Command("loop", stem="drums", part="snare"), TWO)
