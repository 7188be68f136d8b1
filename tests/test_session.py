import pytest

from stemd.control.commands import Command, CommandError, IntentRejected
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session


def make(**kw):
    return Session(Mixer(("vocals", "accompaniment"), 48000), model_name="spleeter2", **kw)


def test_batch_is_all_or_nothing():
    s = make()
    with pytest.raises(CommandError, match="snare cannot be isolated"):
        s.submit([Command("mute", stem="vocals"), Command("loop", stem="drums", part="snare")])
    assert not s.snapshot()["stems"]["vocals"]["muted"]


def test_notes_and_listeners():
    s = make()
    seen = []
    s.add_listener(seen.append)
    applied = s.submit([Command("mute", stem="drums")], source="osc")
    assert applied.commands == (Command("mute", stem="accompaniment"),)
    assert "no separate drums" in applied.notes[0]
    assert seen == [applied] and s.snapshot()["stems"]["accompaniment"]["muted"]


def test_realtime_mode_queues_for_the_audio_thread():
    s = make(realtime=True)
    s.submit([Command("mute", stem="vocals")])
    assert len(s.mixer.commands) == 1 and not s.snapshot()["stems"]["vocals"]["muted"]


def test_unowned_action_without_a_route_is_refused():
    s = make()
    with pytest.raises(CommandError, match="refine is not available"):
        s.submit([Command("refine", stem="vocals", mode="clean")])
    got = []
    s.on(Command("refine", stem="vocals", mode="clean").action, got.append)
    s.submit([Command("refine", stem="vocals", mode="clean")])
    assert got and got[0].mode == "clean"


def test_intent_without_parser_is_rejected_with_reason():
    with pytest.raises(IntentRejected, match="not available"):
        make().intent("drop the vocals")
