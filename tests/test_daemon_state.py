"""Mixer state persisted atomically and restored through the same commands every control uses."""

from stemd.control.commands import ALL, Action, Command
from stemd.daemon import mixer_state
from stemd.daemon.mixer import Mixer

STEMS = ("vocals", "drums", "bass", "other")


def test_saved_state_restores_the_same_snapshot(tmp_path):
    mixer = Mixer(STEMS, 48000)
    for c in [Command(Action.SOLO, stem="drums"), Command(Action.SOLO, stem="bass"),
              Command(Action.MUTE, stem="bass"), Command(Action.GAIN, stem="vocals", db=-4.5),
              Command(Action.GAIN, stem=ALL, db=2.0), Command(Action.TEMPO, bpm=128.0)]:
        mixer.apply(c)
    mixer_state.save(tmp_path, mixer)
    assert not list(tmp_path.glob("*.tmp"))

    again = Mixer(STEMS, 48000)
    assert mixer_state.restore(tmp_path, again) > 0
    want, got = mixer.snapshot(), again.snapshot()
    for s in STEMS:
        for key in ("gain_db", "muted", "soloed"):
            assert got["stems"][s][key] == want["stems"][s][key], (s, key)
    assert got["master_db"] == want["master_db"] and got["bpm"] == 128.0


def test_a_stem_the_new_model_lacks_is_skipped_and_garbage_is_ignored(tmp_path):
    mixer = Mixer(STEMS, 48000)
    mixer.apply(Command(Action.MUTE, stem="drums"))
    mixer.apply(Command(Action.MUTE, stem="vocals"))
    mixer_state.save(tmp_path, mixer)
    two = Mixer(("vocals", "accompaniment"), 48000)
    mixer_state.restore(tmp_path, two)
    assert two.snapshot()["stems"]["vocals"]["muted"]

    (tmp_path / mixer_state.FILE).write_text("{not json")
    assert mixer_state.restore(tmp_path, Mixer(STEMS, 48000)) == 0


def test_only_a_hand_set_tempo_is_restored(tmp_path):
    """An estimated or MIDI tempo must not come back as a hand-set one, which would outrank the
    estimate for the whole next show."""
    mixer = Mixer(STEMS, 48000)
    mixer.clock.set_tempo(97.0, "estimate")
    mixer_state.save(tmp_path, mixer)
    again = Mixer(STEMS, 48000, bpm=120.0)
    mixer_state.restore(tmp_path, again)
    assert again.snapshot()["bpm"] == 120.0 and again.snapshot()["transport"]["source"] == "default"
