"""The phrase-button list: the shipped file loads, and a bad one is refused naming its file and line."""

import pytest

from stemd.config import ConfigError, validate
from stemd.control.phrases import MAX_LENGTH, PhraseError, load_phrases


def test_shipped_phrases_skip_comments_and_blank_lines():
    phrases = load_phrases()
    assert phrases[0] == "drop the vocals" and all(p and not p.startswith("#") for p in phrases)


def test_a_phrase_too_long_names_its_line(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("# mine\nsolo the drums\n" + "x" * (MAX_LENGTH + 1) + "\n", encoding="utf-8")
    with pytest.raises(PhraseError, match=r"mine.txt:3: 81 characters"):
        load_phrases(path)


def test_config_refuses_a_missing_phrase_file(tmp_path):
    with pytest.raises(ConfigError, match=r"\[web\] phrases: .*cannot read"):
        validate({"web": {"phrases": str(tmp_path / "nope.txt")}})
