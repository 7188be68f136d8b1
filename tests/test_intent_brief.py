"""Every example sentence of the product brief, as a new user types it (`stemd parse --json`): the
commands a DJ means, or a refusal with the reason for a wish no mixer can grant."""

import json
import subprocess
import sys

import pytest

from stemd.control.commands import IntentRejected
from stemd.control.intent import parse


def cmd(action, **fields):
    return {"action": action, **fields}


BRIEF = {
    "vocals only": [cmd("solo", stem="vocals")],
    "bass and drums": [cmd("solo", stem="bass"), cmd("solo", stem="drums")],  # the multi-stem pass
    "clean vocals, no reverb": [cmd("refine", stem="vocals", mode="clean+dereverb")],
    "mute bass": [cmd("mute", stem="bass")],
    "loop snare": [cmd("loop", stem="drums", part="snare")],
    "isolate the bass, keep the vocal reverb": [cmd("solo", stem="bass"), cmd("refine", stem="vocals", mode="off")],
    "drop the vocals, bring in the bass, loop the snare": [
        cmd("mute", stem="vocals"), cmd("unmute", stem="bass"), cmd("loop", stem="drums", part="snare")],
    "Drop the vocals, bring in the bass, loop the snare": [
        cmd("mute", stem="vocals"), cmd("unmute", stem="bass"), cmd("loop", stem="drums", part="snare")],
    # beat-quantized commands
    "bring the drums in on the next bar": [cmd("unmute", stem="drums", at="bar")],
    "mute the vocals on the one": [cmd("mute", stem="vocals", at="bar")],
    "solo the bass in 4 beats": [cmd("solo", stem="bass", at="4 beats")],
    "drop the vocals at the next phrase": [cmd("mute", stem="vocals", at="phrase")],
    "cancel": [cmd("cancel")],
    "never mind": [cmd("cancel")],
}

REFUSED = {
    "make it heavier": "heavier",
    "make the drums punchier": "punchier",
    "more reverb on the vocals": "not add it",
    "add some echo to the bass": "not add it",
    "tempo 128 on the next bar": "cannot wait",
    "clean the vocals on the next bar": "cannot wait",
}


@pytest.mark.parametrize("text", list(BRIEF))
def test_the_brief_phrases_map_to_what_a_dj_means(text):
    assert [c.to_dict() for c in parse(text)] == BRIEF[text]


@pytest.mark.parametrize("text", list(REFUSED))
def test_wishes_a_mixer_cannot_grant_are_refused_with_the_reason(text):
    with pytest.raises(IntentRejected, match=REFUSED[text]):
        parse(text)


def test_stemd_parse_json_prints_the_canonical_commands_timing_included():
    """The CLI a new user tries first: the `at` field is part of the canonical JSON."""
    out = subprocess.run([sys.executable, "-m", "stemd", "parse", "--json", "mute the vocals on the one"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out) == [cmd("mute", stem="vocals", at="bar")]
