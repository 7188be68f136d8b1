"""MIDI mappings: config validation that names the entry, fader law, shipped maps, learn file."""

import json

import pytest

from stemd.config import ConfigError, load_config
from stemd.control.commands import Command
from stemd.control.midi.learn import LearnStore
from stemd.control.midi.mapping import (MAPS_DIR, MIDI_MAP_DOC, Binding, MappingError, binding_from_entry,
                                        bindings_from_entries, load_map_file, opposite)

# The example documented in config.toml's [midi] section, uncommented: it must stay valid.
GOOD = "\n[midi]\nclock = false\n\n" + MIDI_MAP_DOC.split("Example:\n", 1)[1]


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_config_entries_load_into_bindings(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    mute, fader, words = bindings_from_entries(cfg.midi.map, "c.toml")
    assert (mute.key, mute.mode, mute.led) == (("note", 1, 36), "toggle", True)
    assert mute.command == Command("mute", stem="vocals")
    assert (fader.key, fader.mode, fader.command.stem, fader.max_db) == (("cc", 1, 7), "fader", "bass", 6.0)
    assert (words.mode, words.intent) == ("trigger", "loop the snare for 2 beats")


@pytest.mark.parametrize(
    "entry, expected",
    [
        ('type = "pad"\nchannel = 1\nnumber = 1\ncommand = {action = "reset"}', "'type' must be"),
        ('type = "note"\nchannel = 17\nnumber = 1\ncommand = {action = "reset"}', "'channel' must be an integer 1-16"),
        ('type = "note"\nchannel = 1\nnumber = 128\ncommand = {action = "reset"}', "'number' must be an integer 0-127"),
        ('type = "note"\nchannel = 1\nnumber = 1', "give exactly one of 'command'"),
        ('type = "note"\nchannel = 1\nnumber = 1\nmode = "hold"\ncommand = {action = "reset"}', "'mode' must be one of"),
        ('type = "note"\nchannel = 1\nnumber = 1\ncommand = {action = "mute", stem = "kazoo"}', "unknown stem 'kazoo'"),
        ('type = "note"\nchannel = 1\nnumber = 1\ncommand = {action = "reset"}', "needs a command with an opposite"),
        ('type = "note"\nchannel = 1\nnumber = 1\nmode = "toggle"\nintent = "drop it"', "mode must be \"trigger\""),
        ('type = "note"\nchannel = 1\nnumber = 1\nmode = "fader"\ncommand = {action = "gain", stem = "bass"}',
         "a fader must be a cc"),
        ('type = "cc"\nchannel = 1\nnumber = 1\nmode = "fader"\ncommand = {action = "gain", stem = "bass", db = 3}',
         "without db"),
        ('type = "cc"\nchannel = 1\nnumber = 1\nmode = "fader"\ncommand = {action = "gain", stem = "bass"}\n'
         'min_db = 0\nmax_db = -6', "'min_db' (0) must be below 'max_db' (-6)"),
        ('type = "cc"\nchannel = 1\nnumber = 1\nmode = "fader"\ncommand = {action = "gain", stem = "bass"}\n'
         'curve = "log"', "'curve' must be one of db, amplitude"),
        ('type = "note"\nchannel = 1\nnumber = 1\ncommand = {action = "mute", stem = "bass"}\ncurve = "db"',
         "only apply to mode = \"fader\""),
        ('type = "note"\nchannel = 1\nnumber = 1\nmode = "trigger"\ncommand = {action = "reset"}\nled = true',
         "a trigger has none"),
        ('type = "note"\nchannel = 1\nnumber = 1\ncommand = "mute the bass"', "for words use intent"),
        ('type = "note"\nchannel = 1\nnumber = 1\ncommand = {action = "mute", stem = "bass"}\nvelocity = 3',
         "unknown key(s) velocity"),
        ('type = "note"\nchannel = 1\nnumber = 1\nmode = "toggle"\nvoice = "listen"',
         "voice = \"listen\" listens while the button is held, so mode must be \"momentary\", not 'toggle'"),
        ('type = "cc"\nchannel = 1\nnumber = 1\nmode = "fader"\nvoice = "listen"', "mode must be \"momentary\""),
        ('type = "note"\nchannel = 1\nnumber = 1\nvoice = "speak"', "'voice' must be one of listen, got 'speak'"),
        ('type = "note"\nchannel = 1\nnumber = 1\nvoice = "listen"\nintent = "drop it"', "give exactly one of"),
        ('type = "note"\nchannel = 1\nnumber = 1\nvoice = "listen"\nled = true', "a push-to-talk button has none"),
    ],
)
def test_invalid_entries_are_config_errors_naming_the_entry_and_its_line(tmp_path, entry, expected):
    text = GOOD + "\n[[midi.map]]\n" + entry + "\n"
    line = len(GOOD.splitlines()) + 2  # the fourth [[midi.map]] header
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert f"c.toml:{line}: [midi] map: entry 4: " in str(err.value)
    assert expected in str(err.value)


def test_two_entries_for_one_control_are_refused():
    entry = {"type": "cc", "channel": 2, "number": 9, "mode": "trigger", "command": {"action": "reset"}}
    with pytest.raises(MappingError, match="entries 1 and 2 both map cc 9 on channel 2"):
        bindings_from_entries([entry, dict(entry)], "x")


def test_fader_laws_and_their_inverse():
    db = Binding("cc", 1, 7, "fader", Command("gain", stem="bass", db=0.0, absolute=True))
    assert db.value_to_db(0) == -60.0 and db.value_to_db(127) == 6.0
    assert db.value_to_db(64) == pytest.approx(-60 + 64 / 127 * 66)
    amp = Binding("cc", 1, 7, "fader", db.command, curve="amplitude", max_db=0.0)
    assert amp.value_to_db(127) == 0.0 and amp.value_to_db(64) == pytest.approx(-6.0, abs=0.1)
    for b in (db, amp):
        for value in (1, 30, 64, 100, 127):
            assert b.db_to_value(b.value_to_db(value)) == pytest.approx(value)
    assert db.fader_command(127) == Command("gain", stem="bass", db=6.0, absolute=True)


def test_opposites():
    assert opposite(Command("mute", stem="bass")) == Command("unmute", stem="bass")
    assert opposite(Command("fade", stem="all", direction="out", beats=8)).direction == "in"
    assert opposite(Command("loop", stem="drums", part="snare", beats=2)) == Command("unloop", stem="drums", part="snare")
    assert opposite(Command("refine", stem="vocals", mode="clean")).mode == "off"
    assert opposite(Command("reset")) is None and opposite(Command("tempo", bpm=120)) is None


@pytest.mark.parametrize("path", sorted(MAPS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_maps_validate_and_load_through_config(tmp_path, path):
    loaded = load_map_file(path.stem)
    assert loaded and len({b.key for b in loaded}) == len(loaded)
    cfg = load_config(write(tmp_path, f'[midi]\nmap_files = ["{path.stem}"]\n'))
    assert cfg.midi.map_files == [path.stem]


def test_generic_layout_has_8_buttons_4_faders_and_push_to_talk():
    loaded = load_map_file("generic-8x4")
    talk = [b for b in loaded if b.voice is not None]
    assert [(b.key, b.mode, b.voice) for b in talk] == [(("note", 1, 44), "momentary", "listen")]
    assert sum(b.type == "note" for b in loaded) == 8 + 1 and sum(b.mode == "fader" for b in loaded) == 4
    assert binding_from_entry(talk[0].to_entry()) == talk[0]
    assert binding_from_entry({"type": "note", "channel": 1, "number": 1, "voice": "listen"}).mode == "momentary"


def test_a_bad_map_file_is_a_config_error(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text('[[midi.map]]\ntype = "cc"\nchannel = 1\nnumber = 300\ncommand = {action = "reset"}\n')
    with pytest.raises(ConfigError, match=r"map_files: .*mine.toml: \[\[midi.map\]\] entry 1: 'number'"):
        load_config(write(tmp_path, f'[midi]\nmap_files = ["{bad}"]\n'))
    with pytest.raises(ConfigError, match="cannot read.*shipped maps: akai-apc-mini"):
        load_config(write(tmp_path, '[midi]\nmap_files = ["no-such-map"]\n'))


def test_learn_store_round_trip_and_damaged_file(tmp_path):
    store = LearnStore(tmp_path / "state")
    learned = [binding_from_entry({"type": "cc", "channel": 3, "number": 1, "mode": "fader",
                                   "command": {"action": "gain", "stem": "vocals"}}),
               binding_from_entry({"type": "note", "channel": 1, "number": 5,
                                   "command": {"action": "solo", "stem": "bass"}, "led": True})]
    store.save(learned)
    assert store.load() == learned
    assert json.loads(store.path.read_text())["map"][0]["command"] == {"action": "gain", "stem": "vocals"}
    assert [p.name for p in store.path.parent.iterdir()] == ["midi-learn.json"]  # no temp file left
    store.path.write_text("{not json")
    assert store.load() == []
    assert LearnStore(tmp_path / "nowhere").load() == []
