"""The voice service: mic ring → 16 kHz → Vosk → activation → (phrase table) → intent parser → Session.

One non-real-time thread does all of it, so recognition can never stall the JACK callback, and the
button (`listen`) only posts an event, so OSC and MIDI threads never wait on Vosk either. Commands go
through `Session.intent(text, source="voice")` like every other control source, so the mixer, the
OSC state feedback and the MIDI LEDs follow an applied voice command by themselves; every result,
applied or rejected, is also handed to this service's own listeners (for OSC or MIDI feedback) with
what was heard, because a performer needs to know why a spoken command did nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from stemd.control.commands import CommandError
from stemd.control.voice import models
from stemd.control.voice.activation import Activation
from stemd.control.voice import sphinx
from stemd.control.voice.grammar import Grammar, build_grammar
from stemd.control.voice.mic import MicReader
from stemd.control.voice.phrases import PhraseTable
from stemd.control.voice.recognizer import CommandRecognizer, Utterance
from stemd.control.voice.sphinx import SphinxRecognizer
from stemd.daemon.session import Applied, Session
from stemd.daemon.ring import SpscRing

log = logging.getLogger("stemd.voice")
POLL_S = 0.01  # how often the thread looks at the mic ring; adds at most this to the latency


@dataclass(frozen=True)
class VoiceResult:
    """What one utterance did: `heard` (recognised words), `text` (the sentence given to the parser),
    and either `applied` or `error` (the reason, for the performer)."""

    heard: str
    text: str | None = None
    applied: Applied | None = None
    error: str | None = None
    heard_at: float = 0.0  # time.monotonic() when Vosk delivered the final result


class VoiceListener:
    """`session.voice`: `listen(on)` is push-to-talk, `status()` says what voice control is doing."""

    def __init__(
        self,
        session: Session,
        voice_config: SimpleNamespace,
        mic_ring: SpscRing | None,
        mic_rate: int,
        vocabulary: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.session = session
        self.config = voice_config
        self.mic_ring = mic_ring
        self.mic_rate = mic_rate
        self._vocabulary = vocabulary or _parser_vocabulary
        self.activation = Activation("push_to_talk")
        self.phrases: PhraseTable | None = None
        self._listeners: list[Callable[[VoiceResult], None]] = []
        self._events: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state, self._reason = "stopped", None
        self._model_folder: str | None = None
        self._engine: str | None = None
        self._engine_reason: str | None = None
        self._grammar: Grammar | sphinx.jsgf.Grammar | None = None
        self._mic: MicReader | None = None
        self._counts = {"applied": 0, "rejected": 0, "presses": 0}
        self._last: VoiceResult | None = None
        session.voice = self

    # ---- service interface (any thread) ------------------------------------------------------

    def start(self) -> None:
        """Load the model and start listening in the background; a missing model turns voice off."""
        self._stop.clear()
        self._state = "loading"
        self._thread = threading.Thread(target=self._run, name="stemd-voice", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._state != "off":
            self._state = "stopped"

    @property
    def thread_id(self) -> int | None:
        """The listener thread's kernel id (for measuring what recognition costs), None when stopped."""
        return self._thread.native_id if self._thread is not None else None

    def wait_ready(self, timeout: float) -> bool:
        """Block until the model is loaded (or voice turned out to be off); True when listening."""
        deadline = time.monotonic() + timeout
        while self._state == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._state == "listening"

    def listen(self, on: bool) -> None:
        """Push-to-talk: on = the button is held; releasing it ends the utterance immediately."""
        if self._state == "off":
            raise models.VoiceUnavailable(f"voice control is off: {self._reason}")
        self._events.put(bool(on))

    def add_listener(self, listener: Callable[[VoiceResult], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[VoiceResult], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def status(self) -> dict[str, Any]:
        last = self._last
        return {
            "state": self._state,  # loading | listening | off | stopped
            "reason": self._reason,
            "engine": self._engine,  # vosk | pocketsphinx | None (not chosen: voice is off before that)
            "engine_reason": self._engine_reason,
            "model": self._model_folder,
            "activation": self.config.activation,
            "held": self.activation.held,
            "phrase_table": self.phrases.language if self.phrases else None,
            "grammar_entries": len(self._grammar.entries) if self._grammar else 0,
            "grammar_missing": list(self._grammar.missing) if self._grammar else [],
            "unk": self._grammar.has_unk if self._grammar else None,
            "applied": self._counts["applied"],
            "rejected": self._counts["rejected"],
            "presses": self._counts["presses"],  # push-to-talk presses fully handled (released)
            "mic_frames_dropped": self._mic.dropped if self._mic else 0,
            "last": None if last is None else {"heard": last.heard, "text": last.text, "error": last.error},
        }

    # ---- the listener thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            recognizer = self._load()
        except Exception as exc:  # whatever stops voice control must not stop the daemon: say why
            if not isinstance(exc, (CommandError, ValueError)):
                log.exception("voice control failed to start")
            self._state, self._reason = "off", str(exc)
            log.warning("voice control off: %s", exc)
            return
        self._state = "listening"
        log.info("voice control listening (%s, %s, %d grammar words)", self._engine, self.activation.mode,
                 len(self._grammar.entries))
        while not self._stop.is_set():
            self._button(recognizer)
            if not self.activation.hearing:
                self._mic.discard()
            else:
                for block in self._mic.read():
                    self._handle(recognizer.accept(block))
            self._stop.wait(POLL_S)

    def _load(self) -> CommandRecognizer | SphinxRecognizer:
        if not self.config.enabled:
            raise models.VoiceUnavailable("[voice] enabled = false")
        if self.mic_ring is None:
            raise models.VoiceUnavailable("the daemon has no mic input")
        self.activation = Activation(self.config.activation, self.config.wake_word)
        if self.config.phrase_table:
            self.phrases = PhraseTable.load(self.config.phrase_table)
        self._engine, self._engine_reason = models.choose_engine(self.config.engine, self.config.model_path)
        recognizer = self._load_sphinx() if self._engine == "pocketsphinx" else self._load_vosk()
        self._mic = MicReader(self.mic_ring, self.mic_rate)  # reads from now on
        return recognizer

    def _load_vosk(self) -> CommandRecognizer:
        folder = models.resolve(self.config.model_path)
        model = models.load(folder)
        entries = list(self.phrases.phrases) if self.phrases else list(self._vocabulary())
        entries += [" ".join(self.activation.wake)] if self.activation.wake else []
        self._grammar = build_grammar(entries, model)
        wake = " ".join(self.activation.wake)
        if wake in self._grammar.missing:
            raise models.VoiceUnavailable(f"[voice] wake_word {wake!r}: the model has no such word(s)")
        if self._grammar.missing:
            log.warning("voice grammar: the model cannot spell %s", ", ".join(self._grammar.missing))
        self._model_folder = str(folder)
        return CommandRecognizer(model, self._grammar, self.config.min_confidence)

    def _load_sphinx(self) -> SphinxRecognizer:
        if self.phrases:
            raise models.VoiceUnavailable(
                f"[voice] phrase_table {self.config.phrase_table!r} needs a Vosk model of its language; "
                "PocketSphinx here speaks English (the intent parser's own words)")
        self._grammar = sphinx.grammar(" ".join(self.activation.wake))
        self._model_folder = sphinx.MODEL
        return SphinxRecognizer(self._grammar, endpointing=self.activation.mode != "push_to_talk")

    def _button(self, recognizer: CommandRecognizer) -> None:
        while True:
            try:
                on = self._events.get_nowait()
            except queue.Empty:
                return
            if on == self.activation.held:
                continue
            if on:
                if not self.activation.hearing:
                    self._mic.discard()  # the utterance starts at the press, not before
                self.activation.held = True
                continue
            for block in self._mic.read():  # what was said up to the release
                self._handle(recognizer.accept(block))
            self._handle(recognizer.accept(self._mic.flush()))
            self._handle(recognizer.finish())
            self.activation.held = False
            self._counts["presses"] += 1

    def _handle(self, utterance: Utterance | None) -> None:
        if utterance is None:
            return
        heard_at = time.monotonic()
        text = self.activation.command_text(tuple(w.word for w in utterance.words), heard_at)
        if text is None:
            log.debug("voice: heard %r, not addressed to stemd", utterance.text)
            return
        if utterance.rejected:
            self._report(VoiceResult(utterance.text, error=utterance.rejected, heard_at=heard_at))
            return
        sentence = None
        try:
            sentence = self.phrases.translate(text) if self.phrases else text
            applied = self.session.intent(sentence, source="voice")
        except Exception as exc:  # rejected, queue full, or a Session listener failed: the thread goes on
            if not isinstance(exc, CommandError):
                log.exception("voice: applying %r failed", sentence)
            self._report(VoiceResult(utterance.text, sentence, error=str(exc), heard_at=heard_at))
            return
        self._report(VoiceResult(utterance.text, sentence, applied=applied, heard_at=heard_at))

    def _report(self, result: VoiceResult) -> None:
        self._last = result
        self._counts["applied" if result.applied else "rejected"] += 1
        log.info("voice: heard %r -> %s", result.heard, "applied" if result.applied else result.error)
        for listener in list(self._listeners):
            try:
                listener(result)
            except Exception:  # one broken feedback path must not silence the others or the listener
                log.exception("voice: a result listener failed")


def _parser_vocabulary() -> Iterable[str]:
    from stemd.control.intent import IntentParser

    return IntentParser().vocabulary()


def describe(status: dict[str, Any] | None) -> str:
    """One line for `stemd status` from `VoiceListener.status()` (None: the daemon has no voice service)."""
    if status is None:
        return "off: this daemon was started without voice control"
    if status["state"] == "off":
        return f"off: {status['reason']}"
    line = f"{status['state']} ({status['engine']}, {status['activation'].replace('_', '-')}"
    line += f", {status['phrase_table']} phrases" if status["phrase_table"] else ""
    line += f"); {status['applied']} applied, {status['rejected']} rejected"
    last = status["last"]
    line += f"; {status['engine_reason']}" if status.get("engine_reason") else ""
    if last:
        line += f"; last heard {last['heard']!r} -> {last['error'] or last['text']}"
    return line
