"""Voice control parts: activation rules, the phrase table, the grammar against the real Korean model,
model resolution and the reasons voice control gives for being off, the mic reader's resampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import vosk

from stemd.config import load_config
from stemd.control.commands import STEMS_4, IntentRejected
from stemd.control.intent import IntentParser
from stemd.control.voice import VoiceListener, VoiceUnavailable, describe, models
from stemd.control.voice.activation import ARMED_S, Activation
from stemd.benchmarks.voice import korean_model
from stemd.control.voice.grammar import build_grammar
from stemd.control.voice.mic import MicReader
from stemd.control.voice.phrases import PhraseTable
from stemd.control.voice.recognizer import RATE, utterance
from stemd.daemon.mixer import Mixer
from stemd.daemon.ring import SpscRing
from stemd.daemon.session import Session


@pytest.fixture(scope="module")
def ko_model():
    return models.load(korean_model())


# ---- activation ---------------------------------------------------------------------------------

def test_push_to_talk_hears_only_while_held():
    a = Activation("push_to_talk")
    assert not a.hearing and a.command_text(("drop", "the", "vocals")) is None
    a.held = True
    assert a.hearing and a.command_text(("drop", "the", "vocals")) == "drop the vocals"


def test_wake_word_opens_or_arms_the_command():
    a = Activation("wake_word", "Hey Stem")
    assert a.hearing
    assert a.command_text(("hey", "stem", "drop", "the", "bass"), now=0.0) == "drop the bass"
    assert a.command_text(("drop", "the", "bass"), now=0.0) is None
    assert a.command_text(("hey", "stem"), now=10.0) is None  # armed
    assert a.command_text(("reset",), now=10.0 + ARMED_S / 2) == "reset"
    assert a.command_text(("reset",), now=10.0 + ARMED_S / 2) is None  # one command per wake word
    assert a.command_text(("hey", "stem"), now=20.0) is None
    assert a.command_text(("reset",), now=20.0 + ARMED_S + 0.1) is None  # expired


def test_activation_settings_are_checked():
    with pytest.raises(ValueError, match="activation must be one of"):
        Activation("sometimes")
    with pytest.raises(ValueError, match="needs a \\[voice\\] wake_word"):
        Activation("wake_word", "  ")
    assert Activation("always").command_text(("reset",)) == "reset"


# ---- phrase table and grammar -------------------------------------------------------------------

def test_every_korean_phrase_is_a_command_and_nothing_else_is():
    table = PhraseTable.load("ko")
    parser = IntentParser(stems=STEMS_4, semantic="off")
    assert len(table.phrases) >= 10
    for phrase, sentence in table.phrases.items():
        assert parser.parse(sentence), phrase
    assert table.translate("  드럼   빼줘 ") == "drop the drums"
    with pytest.raises(IntentRejected, match="not a phrase of the ko phrase table"):
        table.translate("드럼 빼줘 드럼")


def test_a_broken_phrase_table_names_the_problem(tmp_path):
    path = tmp_path / "fr.toml"
    path.write_text('language = "fr"\n[phrases]\n"coupe la voix" = 3\n', encoding="utf-8")
    with pytest.raises(ValueError, match="needs a non-empty \\[phrases\\] table"):
        PhraseTable.load(str(path))
    with pytest.raises(ValueError, match="phrase_table"):
        PhraseTable.load(str(tmp_path / "missing.toml"))


def test_grammar_keeps_what_the_model_can_spell(ko_model):
    grammar = build_grammar(["목소리 빼줘", "드럼 살려", "Drums", "초기화", "드럼 살려"], ko_model)
    assert grammar.entries == ("목소리 빼줘", "드럼 살려", "초기화")
    assert grammar.missing == ("drums",)
    assert not grammar.has_unk  # the Korean model has no [unk]: the reject path does that job
    assert "[unk]" not in grammar.to_json()


def test_english_vocabulary_on_the_korean_model_is_refused(ko_model):
    words = IntentParser(semantic="off").vocabulary()
    assert {"drop", "vocals", "bass", "loop"} <= set(words)
    with pytest.raises(ValueError, match="knows none of the command words"):
        build_grammar(words, ko_model)


def _result(*words: tuple[str, float]) -> str:
    return json.dumps({"result": [{"word": w, "conf": c, "start": 0.0, "end": 0.1} for w, c in words]})


def test_final_results_are_judged_word_by_word():
    sure = utterance(_result(("drop", 1.0), ("the", 0.9), ("vocals", 0.8)), 0.6)
    assert sure.text == "drop the vocals" and sure.rejected is None
    doubtful = utterance(_result(("drop", 1.0), ("the", 0.9), ("bass", 0.41)), 0.6)
    assert doubtful.rejected == "not sure what was said (confidence bass 0.41 < 0.6)"
    trimmed = utterance(_result(("[unk]", 1.0), ("drop", 1.0), ("vocals", 1.0), ("[unk]", 0.3)), 0.6)
    assert trimmed.text == "drop vocals" and trimmed.rejected is None  # breath and chatter around it
    inside = utterance(_result(("drop", 1.0), ("[unk]", 1.0), ("vocals", 1.0)), 0.6)
    assert "outside the command vocabulary" in inside.rejected  # "drop (not) the vocals"
    assert utterance(_result(("[unk]", 1.0)), 0.6) is None
    assert utterance(json.dumps({"text": ""}), 0.6) is None


# ---- models and the reasons voice is off --------------------------------------------------------

def test_model_resolution(tmp_path, monkeypatch):
    assert models.resolve(str(korean_model())) == korean_model()
    with pytest.raises(VoiceUnavailable, match="no such folder"):
        models.resolve(str(tmp_path / "nope"))
    with pytest.raises(VoiceUnavailable, match="not a Vosk model folder"):
        models.resolve(str(tmp_path))
    monkeypatch.setattr(vosk, "MODEL_DIRS", [str(tmp_path)])
    with pytest.raises(VoiceUnavailable, match="stemd models fetch vosk"):
        models.resolve("")
    installed = tmp_path / f"{models.DEFAULT_MODEL}"
    for marker in ("am/final.mdl", "conf/model.conf"):
        (installed / marker).parent.mkdir(parents=True, exist_ok=True)
        (installed / marker).write_text("")
    assert models.resolve("") == installed


def test_stemd_models_lists_and_fetches_the_voice_model(tmp_path, monkeypatch, capsys):
    from stemd.cli import main

    monkeypatch.setattr(vosk, "MODEL_DIRS", [str(tmp_path)])
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "vosk           missing model" in listing
    assert "voice engine now: pocketsphinx - auto: no Vosk model installed" in listing
    installed = tmp_path / models.DEFAULT_MODEL
    for marker in ("am/final.mdl", "conf/model.conf"):
        (installed / marker).parent.mkdir(parents=True, exist_ok=True)
        (installed / marker).write_text("")
    assert main(["models", "fetch", "vosk"]) == 0  # present: nothing to download
    assert capsys.readouterr().out.strip() == f"ok   {installed}"
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert f"vosk           ready (voice control)\n    ok   {installed}" in listing
    assert "voice engine now: vosk - auto: Vosk model" in listing


def _listener(ring, **voice):
    config = load_config().voice
    for key, value in voice.items():
        setattr(config, key, value)
    listener = VoiceListener(Session(Mixer(STEMS_4, 48000)), config, ring, 48000)
    listener.start()
    listener.wait_ready(30.0)
    listener.stop()
    return listener


@pytest.mark.parametrize("ring, voice, reason", [
    (True, {"enabled": False}, "enabled = false"),
    (False, {}, "no mic input"),
    (True, {"model_path": "/nonexistent/vosk"}, "no such folder"),
    (True, {"model_path": str(korean_model())}, "knows none of the command words"),  # English words
    (True, {"model_path": str(korean_model()), "phrase_table": "/nonexistent.toml"}, "phrase_table"),
    (True, {"model_path": str(korean_model()), "phrase_table": "ko", "activation": "wake_word",
            "wake_word": "stem"}, "wake_word 'stem': the model has no such word"),
])
def test_voice_off_says_why(ring, voice, reason):
    mic = SpscRing.create(1, 48000) if ring else None
    try:
        listener = _listener(mic, **voice)
    finally:
        if mic is not None:
            mic.close()
    status = listener.status()
    assert status["state"] == "off" and reason in status["reason"]
    assert describe(status) == f"off: {status['reason']}"  # the `stemd status` line
    assert listener.session.voice is listener
    with pytest.raises(VoiceUnavailable, match="voice control is off"):
        listener.listen(True)


# ---- mic reader ---------------------------------------------------------------------------------

def test_mic_reader_resamples_jack_periods_to_16k():
    ring = SpscRing.create(1, 48000)
    try:
        reader = MicReader(ring, 48000)
        t = np.arange(48000) / 48000
        tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
        out = []
        for at in range(0, tone.size, 256):
            ring.write(tone[np.newaxis, at:at + 256])
            if at % 4096 == 0:
                out += reader.read()
        out += reader.read()
        out.append(reader.flush())
        audio = np.concatenate(out)
        assert abs(audio.size - RATE) <= 2
        spectrum = np.abs(np.fft.rfft(audio[2000:14000]))
        assert abs(np.argmax(spectrum) * RATE / 12000 - 1000) < 2
        assert reader.dropped == 0
        for _ in range(3):  # fall more than a whole ring behind
            ring.write(np.zeros((1, 40000), np.float32))
        assert sum(b.size for b in reader.read()) <= RATE and reader.dropped > 0
    finally:
        ring.close()
