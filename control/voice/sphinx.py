"""PocketSphinx streaming recognition of commands: the English recogniser that installs with stemd.

Same interface as the Vosk `CommandRecognizer` (16 kHz float blocks in, final `Utterance`s out), so
the listener, activation and parser path do not care which engine heard the words. The decoder is
restricted to the command grammar (`jsgf.py`): one command sentence with free "garbage" phones
before and after it (the music or noise around a command), or garbage alone, and it hears the mic
over a comfort-noise floor under the voice (`comfort.py`); the checks below read the mic's own
audio, so the floor cannot make a wrong sentence fit. An utterance is
refused when its path is garbage only or has garbage inside the command, when it is not a whole
sentence (the audio ended mid-command), at push-to-talk when something as loud as the command was
said beside it (the garbage took words the first pass could not fit, so the sentence is only part of
what was said), or when a second pass finds that the sentence does not fit its own stretch of audio
better than free phones. That second pass runs ahead of the release, as soon as the running best
path is a whole sentence that has ended, so a release usually finds it done.
`[voice] min_confidence` is Vosk's: without the lattice pass (too costly here) PocketSphinx has no
word posteriors worth a threshold.

Push-to-talk needs no endpointing: the button bounds the utterance. With `endpointing` (wake word,
always-on) PocketSphinx's own voice-activity endpointer cuts the stream into utterances, and one that
runs on past MAX_UTTERANCE_S (music the detector takes for speech) is judged and restarted.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from stemd.control.voice import jsgf
from stemd.control.voice.comfort import FRAME_SAMPLES, ComfortNoise, decibels, frame_power
from stemd.control.voice.recognizer import RATE, Utterance, Word

MODEL = "pocketsphinx en-us (in the pocketsphinx wheel)"
MAX_UTTERANCE_S = 6.0
WORD_INSERTION_PENALTY = 0.05
SEARCH = "command"
VERIFY = "verify"
# The second pass's word insertion penalty: each free phone pays it, so it sets how much better than
# free phones the heard sentence must fit its own stretch of audio (tuned on the tuning set,
# docs/decisions/voice.md). A few frames either side keep the sentence's first and last phones whole.
VERIFY_INSERTION_PENALTY = 0.2
VERIFY_MARGIN_FRAMES = 5
FRAME_BYTES = 2 * FRAME_SAMPLES  # one 10 ms feature frame of 16-bit samples
# The second pass runs ahead, while the button is still held: once the first pass's running best
# path is a whole sentence whose last word ended SETTLE_FRAMES ago, that sentence is verified on its
# stretch of audio, and the release reuses the answer when the final path has the same sentence on
# the same frames. The check runs every CHECK_FRAMES of audio fed.
SETTLE_FRAMES = 15
CHECK_FRAMES = 5
# Speech beside the sentence: the garbage at the edges is meant for the music around a command, but it
# also swallows words the first pass could not fit ("fade out the other [over two bars]" heard as
# "fade out the other", "[mute the vocals and] bring in the bass"). Those words are as loud as the
# sentence; music under a command is quieter than the voice over it. So a path is refused when, outside
# the sentence's frames, a run of BESIDE_FRAMES frames is within BESIDE_DB of the sentence's median
# frame energy (both smoothed over SMOOTH_FRAMES). Tuned on the tuning set (docs/decisions/voice.md).
# Push-to-talk only: with endpointing, the voice-activity detector takes music for speech and joins
# phrases a pause apart into one utterance, which the check would then refuse whole.
BESIDE_DB = 3.0
BESIDE_FRAMES = 20
SMOOTH_FRAMES = 5


@functools.lru_cache(maxsize=4)
def grammar(wake_word: str = "") -> jsgf.Grammar:
    """The command grammar checked against the wheel's en-us dictionary (built once per process)."""
    decoder = _decoder()
    return jsgf.build(decoder.lookup_word, wake_word)


def _decoder(wip: float = WORD_INSERTION_PENALTY) -> Any:
    from pocketsphinx import Decoder

    # No bestpath lattice pass: over this grammar it costs ~50x the search itself. The word insertion
    # penalty (default 0.65) is what keeps the garbage phones from explaining commands too: each
    # garbage phone pays it once, a command word once for all its phones. 0.05 measured best
    # (docs/decisions/voice.md).
    return Decoder(loglevel="FATAL", lm=None, bestpath=False, wip=wip)


class SphinxRecognizer:
    def __init__(self, command_grammar: jsgf.Grammar, endpointing: bool = False) -> None:
        from pocketsphinx import Endpointer

        self.grammar = command_grammar
        self._decoder = _decoder()
        self._verifier = _decoder(VERIFY_INSERTION_PENALTY)
        for decoder in (self._decoder, self._verifier):
            for word, phones in command_grammar.added.items():
                decoder.add_word(word, phones, False)
        self._decoder.add_jsgf_string(SEARCH, command_grammar.to_jsgf())
        self._decoder.activate_search(SEARCH)
        self._endpointer = Endpointer(sample_rate=RATE) if endpointing else None
        self._comfort = ComfortNoise()
        self._pending = b""
        # What the mic gave since start_utt (without the comfort floor the first pass hears over it),
        # for the second pass, the beside check and the floor's level.
        self._utterance = bytearray()
        self._in_utt = False
        self._frames = 0
        self._checked_at = 0  # the decoder frame of the last look ahead
        self._verdict: tuple[tuple[str, int, int], bool] | None = None  # (sentence, span) -> verified
        # Second passes run ahead of the release, those a release reused, those run at the release.
        self.second_passes = {"ahead": 0, "reused": 0, "at_release": 0}

    def accept(self, samples: np.ndarray) -> Utterance | None:
        """Feed float samples at 16 kHz; with endpointing, returns an utterance when its speech ends."""
        if not samples.size:  # the resampler's tail can be empty; the decoder refuses an empty buffer
            return None
        pcm = _pcm(samples)
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
        verdict, self._verdict = self._verdict, None
        heard, span = self._best_path()
        if heard is not None and not heard.rejected and self._endpointer is None \
                and said_beside(self._utterance, span):
            heard = Utterance(heard.words, "more was said than the command heard (as loud, around it)")
        if heard is not None and not heard.rejected:
            if verdict is not None and verdict[0] == (heard.text, *span):
                verified = verdict[1]
                self.second_passes["reused"] += 1
            else:
                verified = self._verified(heard.text, span)
                self.second_passes["at_release"] += 1
            if not verified:
                heard = Utterance(heard.words, "the command did not fit its own audio better than free phones")
        self._comfort.learn(_samples(self._utterance))
        self._utterance = bytearray()
        return heard

    def _best_path(self) -> tuple[Utterance | None, tuple[int, int]]:
        """The decoder's best path so far (or final, after end_utt) judged, and the decoder frames
        [first, last] of its sentence's words (0, 0 when there is no sentence)."""
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return None, (0, 0)
        segments = [s for s in self._decoder.seg() if _is_word(_base(s.word))]
        heard = judge(tuple(Word(_base(s.word), float(s.prob)) for s in segments), self.grammar)
        if heard is None or heard.rejected:
            return heard, (0, 0)
        spoken = [s for s in segments if _base(s.word) not in jsgf.GARBAGE]
        return heard, (spoken[0].start_frame, spoken[-1].end_frame)

    def _look_ahead(self) -> None:
        """Verify the running best path's sentence before the release, once its last word has
        settled, so that the release finds the second pass done (`finish` reuses the verdict when
        the final path keeps that sentence on those frames)."""
        now = self._decoder.n_frames()
        if now - self._checked_at < CHECK_FRAMES:
            return
        self._checked_at = now
        heard, span = self._best_path()
        if heard is None or heard.rejected or now - span[1] < SETTLE_FRAMES:
            return
        key = (heard.text, *span)
        if self._verdict is None or self._verdict[0] != key:
            self._verdict = (key, self._verified(heard.text, span))
            self.second_passes["ahead"] += 1

    def _verified(self, sentence: str, span: tuple[int, int]) -> bool:
        """The second pass: over only the stretch where the sentence was heard (the music or chatter
        around it, which the first pass gave to garbage phones, left out), does the sentence itself
        fit better than free phones? The first pass weighs it against every other sentence and lets
        garbage take the edges, which is what hears commands over music but also lets a short
        command hide in chatter. A one-sentence search, it costs a few percent of the first pass."""
        self._verifier.add_jsgf_string(VERIFY, self.grammar.verifier(sentence))
        self._verifier.activate_search(VERIFY)
        self._verifier.set_cmn(self._decoder.get_cmn())  # the mean the first pass has learnt of this mic
        start = max(0, span[0] - VERIFY_MARGIN_FRAMES) * FRAME_BYTES
        end = (span[1] + 1 + VERIFY_MARGIN_FRAMES) * FRAME_BYTES
        self._verifier.start_utt()
        self._verifier.process_raw(bytes(self._utterance[start:end]), False, False)
        self._verifier.end_utt()
        hyp = self._verifier.hyp()
        return hyp is not None and " ".join(_base(w) for w in hyp.hypstr.split()) == sentence

    def _feed(self, pcm: bytes) -> None:
        if not self._in_utt:
            self._decoder.start_utt()
            self._in_utt, self._checked_at = True, 0
        self._decoder.process_raw(_pcm(self._comfort.add(_samples(pcm))), False, False)
        self._utterance += pcm
        self._frames += len(pcm) // 2
        self._look_ahead()


def said_beside(pcm: bytes | bytearray, span: tuple[int, int]) -> bool:
    """Whether the 16-bit `pcm` of an utterance holds, outside the decoder frames `span` = [first, last]
    of its sentence, BESIDE_FRAMES frames in a row about as loud as the sentence (module comment)."""
    power = frame_power(_samples(pcm))
    if span[0] >= power.size:
        return False
    level = decibels(np.convolve(power, np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES, mode="same"))
    loud = level > np.median(level[span[0]:span[1] + 1]) - BESIDE_DB
    loud[span[0]:span[1] + 1] = False
    edges = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(np.int8), [0]))))
    return bool(edges.size) and int(np.max(edges[1::2] - edges[::2])) >= BESIDE_FRAMES


def _pcm(samples: np.ndarray) -> bytes:
    """Float samples (full scale = 1, clipped there) as the decoder's 16-bit pcm."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


def _samples(pcm: bytes | bytearray) -> np.ndarray:
    """16-bit `pcm` (read in place) as float samples, full scale = 1."""
    return np.frombuffer(pcm, np.int16, len(pcm) // 2).astype(np.float32) / 32768.0


def judge(words: tuple[Word, ...], command_grammar: jsgf.Grammar) -> Utterance | None:
    """The Utterance of one decoded path: refused unless, past the garbage phones the grammar allows
    before and after a command (the music or noise around it), it is a whole sentence of the grammar."""
    if not words:
        return None
    words = _trim(words)
    if any(w.word in jsgf.GARBAGE for w in words):
        heard = tuple(w for w in words if w.word not in jsgf.GARBAGE)
        return Utterance(heard, "no command heard (the sound fitted no sentence of the command grammar)")
    text = " ".join(w.word for w in words)
    if not command_grammar.complete(text):
        return Utterance(words, "only part of a command was heard (not a whole sentence of the grammar)")
    return Utterance(words)


def _trim(words: tuple[Word, ...]) -> tuple[Word, ...]:
    """The path without the garbage phones at its edges (all of it when it is garbage only)."""
    inner = [i for i, w in enumerate(words) if w.word not in jsgf.GARBAGE]
    return words[inner[0]:inner[-1] + 1] if inner else words


def _is_word(token: str) -> bool:
    """Decoder tokens that are words, not silence, sentence marks or noise fillers."""
    return bool(token) and not token.startswith(("<", "[", "+"))  # "": a null transition


def _base(token: str) -> str:
    """`the(2)` (the dictionary's second pronunciation) is the word `the`."""
    return token.split("(", 1)[0]
