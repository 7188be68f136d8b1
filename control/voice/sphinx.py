"""PocketSphinx streaming recognition of commands: the English recogniser that installs with stemd.

Same interface as the Vosk `CommandRecognizer` (16 kHz float blocks in, final `Utterance`s out), so
the listener, activation and parser path do not care which engine heard the words. The decoder is
restricted to the command grammar (`jsgf.py`); an utterance is refused when its best path goes
through the grammar's garbage phones (the sound was no command), when it is not a whole sentence
(the audio ended mid-command). `[voice] min_confidence` is Vosk's: without the lattice pass (too
costly here) PocketSphinx has no word posteriors worth a threshold, and the garbage model does the
refusing.

Push-to-talk needs no endpointing: the button bounds the utterance. With `endpointing` (wake word,
always-on) PocketSphinx's own voice-activity endpointer cuts the stream into utterances, and one that
runs on past MAX_UTTERANCE_S (music the detector takes for speech) is judged and restarted.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from stemd.control.voice import jsgf
from stemd.control.voice.recognizer import RATE, Utterance, Word

MODEL = "pocketsphinx en-us (in the pocketsphinx wheel)"
MAX_UTTERANCE_S = 6.0
WORD_INSERTION_PENALTY = 0.05
SEARCH = "command"


@functools.lru_cache(maxsize=4)
def grammar(wake_word: str = "") -> jsgf.Grammar:
    """The command grammar checked against the wheel's en-us dictionary (built once per process)."""
    decoder = _decoder()
    return jsgf.build(decoder.lookup_word, wake_word)


def _decoder() -> Any:
    from pocketsphinx import Decoder

    # No bestpath lattice pass: over this grammar it costs ~50x the search itself. The word insertion
    # penalty (default 0.65) is what keeps the garbage phones from explaining commands too: each
    # garbage phone pays it once, a command word once for all its phones. 0.05 measured best
    # (docs/decisions/voice.md).
    return Decoder(loglevel="FATAL", lm=None, bestpath=False, wip=WORD_INSERTION_PENALTY)


class SphinxRecognizer:
    def __init__(self, command_grammar: jsgf.Grammar, endpointing: bool = False) -> None:
        from pocketsphinx import Endpointer

        self.grammar = command_grammar
        self._decoder = _decoder()
        for word, phones in command_grammar.added.items():
            self._decoder.add_word(word, phones, False)
        self._decoder.add_jsgf_string(SEARCH, command_grammar.to_jsgf())
        self._decoder.activate_search(SEARCH)
        self._endpointer = Endpointer(sample_rate=RATE) if endpointing else None
        self._pending = b""
        self._in_utt = False
        self._frames = 0

    def accept(self, samples: np.ndarray) -> Utterance | None:
        """Feed float samples at 16 kHz; with endpointing, returns an utterance when its speech ends."""
        if not samples.size:  # the resampler's tail can be empty; the decoder refuses an empty buffer
            return None
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
        if self._endpointer is None:
            self._feed(pcm)
            return None
        self._pending += pcm
        step = self._endpointer.frame_bytes
        heard = None
        while len(self._pending) >= step:
            frame, self._pending = self._pending[:step], self._pending[step:]
            speech = self._endpointer.process(frame)
            if speech is not None:
                self._feed(speech)
            if self._in_utt and (not self._endpointer.in_speech or self._frames > MAX_UTTERANCE_S * RATE):
                heard = self.finish() or heard
        return heard

    def finish(self) -> Utterance | None:
        """End the current utterance now (push-to-talk released, or the speech ended) and judge it."""
        if not self._in_utt:
            return None
        self._decoder.end_utt()
        self._in_utt, self._frames = False, 0
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return None
        words = tuple(Word(_base(s.word), float(s.prob)) for s in self._decoder.seg() if _is_word(_base(s.word)))
        return judge(words, self.grammar)

    def _feed(self, pcm: bytes) -> None:
        if not self._in_utt:
            self._decoder.start_utt()
            self._in_utt = True
        self._decoder.process_raw(pcm, False, False)
        self._frames += len(pcm) // 2


def judge(words: tuple[Word, ...], command_grammar: jsgf.Grammar) -> Utterance | None:
    """The Utterance of one decoded path: refused unless it is a whole sentence of the grammar."""
    if not words:
        return None
    if any(w.word in jsgf.GARBAGE for w in words):
        heard = tuple(w for w in words if w.word not in jsgf.GARBAGE)
        return Utterance(heard, "no command heard (the sound fitted no sentence of the command grammar)")
    text = " ".join(w.word for w in words)
    if not command_grammar.complete(text):
        return Utterance(words, "only part of a command was heard (not a whole sentence of the grammar)")
    return Utterance(words)


def _is_word(token: str) -> bool:
    """Decoder tokens that are words, not silence, sentence marks or noise fillers."""
    return bool(token) and not token.startswith(("<", "[", "+"))  # "": a null transition


def _base(token: str) -> str:
    """`the(2)` (the dictionary's second pronunciation) is the word `the`."""
    return token.split("(", 1)[0]
