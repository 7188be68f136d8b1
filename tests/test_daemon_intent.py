"""The intent parser inside the running daemon (real jackd2, dummy backend, oracle separator): it
hears the stems' recent audio from the stem ring, keeps the conversation's pronouns, and reports its
layers in the status."""

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player
from test_daemon_jack import wait_until
from oracle_separator import WEIGHTS
from test_intent_semantic import clap_dir  # noqa: F401 (fixture: a random-weight CLAP checkpoint)

from stemd.cli.status import render
from stemd.control.commands import IntentRejected

pytestmark = pytest.mark.jack


def music(rate, seconds=1.0):
    """Different left and right channels, so a swapped or shifted channel layout shows."""
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([0.4 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 97 * t)]).astype(np.float32)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_the_parser_hears_the_stems_and_follows_the_conversation(jackd, tmp_path, clap_dir):  # noqa: F811
    with running_daemon(jackd, tmp_path, intent={"clap_path": str(clap_dir)}) as daemon:
        assert wait_until(lambda: daemon.jack.path.stats.wet, 10), daemon.stats()
        player = Player(jackd, music(jackd.rate), loop=True)
        try:
            player.connect("stemd:in_L", "stemd:in_R")
            player.play()
            full = round(2.0 * daemon.rate)  # wait until the whole 2 s window holds the tones

            def filled():
                vocals = daemon.recent_stems()[0]["vocals"]
                return vocals.shape[1] == full and rms(vocals[:, :1000]) > 0.05
            assert wait_until(filled, 15)
            audio, rate = daemon.recent_stems()
            assert rate == daemon.rate and list(audio) == list(WEIGHTS)
            for stem, weight in WEIGHTS.items():  # the oracle's stems are weight x input, per channel
                assert audio[stem].shape == (2, round(2.0 * rate))
                assert rms(audio[stem][0]) == pytest.approx(weight * 0.4 / np.sqrt(2), rel=0.03), stem
                assert rms(audio[stem][1]) == pytest.approx(weight * 0.2 / np.sqrt(2), rel=0.03), stem

            # "the piano" is no stem of this model: CLAP (random weights) scores every playing stem's
            # audio, then picks one or honestly says it is not sure
            try:
                applied = daemon.session.intent("mute the piano", source="test")
                assert applied.commands[0].stem in WEIGHTS
            except IntentRejected as exc:
                assert "not sure which stem has the piano" in str(exc)
            assert set(daemon.conversation.parser._router.last_scores) == set(WEIGHTS)
        finally:
            player.close()

        daemon.session.intent("reset", source="test")
        daemon.session.intent("drop the vocals", source="test")
        applied = daemon.session.intent("bring them back", source="test")
        assert [c.to_dict() for c in applied.commands] == [{"action": "unmute", "stem": "vocals"}]
        assert wait_until(lambda: not daemon.session.snapshot()["stems"]["vocals"]["muted"], 2)

        state = daemon.session.snapshot()
    intent = state["intent"]
    assert intent["audio_routing"] == "on (CLAP audio embeddings)"
    assert intent["semantic"].startswith("clap")
    assert intent["pronouns"] == "'it'/'them' = vocals (from 'bring them back')"
    assert "intent     semantic clap" in render(state)


def test_a_dry_daemon_says_why_audio_routing_is_off(jackd, tmp_path):
    with running_daemon(jackd, tmp_path, model="dry") as daemon:
        state = daemon.session.snapshot()
        assert daemon.recent_stems() == ({}, daemon.rate)
    assert state["intent"]["audio_routing"].startswith("off: no audio provider")
    assert state["intent"]["grammar"] == "on"
    assert "audio routing off: no audio provider" in render(state)
