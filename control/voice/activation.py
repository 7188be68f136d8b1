"""When speech becomes commands: push-to-talk, wake word, or always.

Push-to-talk is the default because a live rig is loud: only what is said while the button is held
(OSC `/stemd/voice/listen 1`, or a mapped MIDI button) reaches the recogniser, and releasing the button
ends the utterance at once instead of waiting for Vosk to hear silence that a PA never gives. The
button works in every mode. With a wake word, an utterance must begin with it ("stem drop the vocals"),
or be the wake word alone, which arms the next utterance for a few seconds.
"""

from __future__ import annotations

import time

MODES = ("push_to_talk", "wake_word", "always")
ARMED_S = 5.0  # how long a bare wake word waits for its command


class Activation:
    def __init__(self, mode: str, wake_word: str = "") -> None:
        if mode not in MODES:
            raise ValueError(f"[voice] activation must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "wake_word" and not wake_word.strip():
            raise ValueError("[voice] activation = wake_word needs a [voice] wake_word")
        self.mode = mode
        self.wake = tuple(wake_word.lower().split()) if mode == "wake_word" else ()
        self.held = False
        self._armed_until = 0.0

    @property
    def hearing(self) -> bool:
        """Whether mic audio should reach the recogniser now."""
        return self.held or self.mode != "push_to_talk"

    def command_text(self, words: tuple[str, ...], now: float | None = None) -> str | None:
        """The part of a final utterance that is a command, or None when it is not addressed to us."""
        now = time.monotonic() if now is None else now
        if self.held or self.mode == "always":
            return " ".join(words)
        if self.mode != "wake_word":
            return None
        n = len(self.wake)
        if words[:n] == self.wake:
            if len(words) == n:
                self._armed_until = now + ARMED_S
                return None
            return " ".join(words[n:])
        if now < self._armed_until:
            self._armed_until = 0.0
            return " ".join(words)
        return None
