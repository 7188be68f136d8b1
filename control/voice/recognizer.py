"""Vosk streaming recognition of commands: 16 kHz mono, grammar-restricted, final results only.

Partial results are never acted on (they change while the performer is still speaking). `[unk]`
(speech outside the vocabulary) around a command is breath or chatter and is trimmed; inside it, the
command is not what was said, and the utterance is rejected. A final result
whose words are not all heard with at least `min_confidence` is rejected as a whole: in a grammar
every sound becomes some command word, so a doubtful word is the usual sign of music or crowd noise
forced onto the vocabulary, and half a command is worse than none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from stemd.control.voice.grammar import UNK, Grammar

RATE = 16000


@dataclass(frozen=True)
class Word:
    word: str
    conf: float


@dataclass(frozen=True)
class Utterance:
    """One final result: the words Vosk heard and, if the confidence filter refused it, why."""

    words: tuple[Word, ...]
    rejected: str | None = None

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)


class CommandRecognizer:
    def __init__(self, model: Any, grammar: Grammar, min_confidence: float) -> None:
        import vosk

        self._vosk = vosk.KaldiRecognizer(model, RATE, grammar.to_json())
        self._vosk.SetWords(True)
        self.min_confidence = min_confidence

    def accept(self, samples: np.ndarray) -> Utterance | None:
        """Feed float samples at 16 kHz; returns an utterance when Vosk detects its end (silence)."""
        if self._vosk.AcceptWaveform(self._to_pcm(samples)):
            return utterance(self._vosk.Result(), self.min_confidence)
        return None

    def finish(self) -> Utterance | None:
        """End the current utterance now (push-to-talk released) and start afresh."""
        return utterance(self._vosk.FinalResult(), self.min_confidence)

    @staticmethod
    def _to_pcm(samples: np.ndarray) -> bytes:
        return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


def utterance(result_json: str, min_confidence: float) -> Utterance | None:
    """The Utterance of one Vosk final result (None when it holds no words), judged as above."""
    words = [Word(w["word"], float(w["conf"])) for w in json.loads(result_json).get("result", [])]
    while words and words[0].word == UNK:
        words.pop(0)
    while words and words[-1].word == UNK:
        words.pop()
    if not words:
        return None
    if any(w.word == UNK for w in words):
        return Utterance(tuple(words), "words outside the command vocabulary in the middle of the command")
    return Utterance(tuple(words), doubt(words, min_confidence))


def doubt(words: list[Word] | tuple[Word, ...], min_confidence: float) -> str | None:
    """Why an utterance is refused for its confidence, or None when every word is sure enough."""
    doubtful = [w for w in words if w.conf < min_confidence]
    if not doubtful:
        return None
    heard = ", ".join(f"{w.word} {w.conf:.2f}" for w in doubtful)
    return f"not sure what was said (confidence {heard} < {min_confidence:g})"
