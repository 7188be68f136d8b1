"""Voice control in the running daemon: Korean speech played by a JACK client into `stemd:mic` on a
real jackd (dummy backend), push-to-talk through `session.voice`, the command reaching the mixer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from daemon_harness import running_daemon
from jack_probe import Player

from stemd.control.voice import speech
from stemd.benchmarks.voice import korean_model

pytestmark = pytest.mark.jack


def test_a_command_spoken_into_the_mic_port_mutes_the_stem(jackd, tmp_path):
    voice, end = speech.mix(speech.speak("드럼 빼줘", jackd.rate), None, None, 0.4, 0.3, jackd.rate)
    settings = {"enabled": True, "model_path": str(korean_model()), "phrase_table": "ko"}
    with running_daemon(jackd, tmp_path, voice=settings) as daemon:
        listener = daemon.session.voice
        assert listener is not None and listener.wait_ready(60), listener and listener.status()
        player = Player(jackd, np.stack([voice, voice]), name="singer")
        try:
            player.connect("stemd:mic")
            listener.listen(True)
            player.play()
            deadline = time.monotonic() + 10
            while not player.done and time.monotonic() < deadline:
                time.sleep(0.01)
            listener.listen(False)
            deadline = time.monotonic() + 5
            while listener.status()["presses"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            player.close()
        status = listener.status()
        muted = daemon.session.snapshot()["stems"]["drums"]["muted"]
    assert status["last"] and status["last"]["heard"] == "드럼 빼줘", status
    assert muted and status["applied"] == 1
