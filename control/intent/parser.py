"""IntentParser: the grammar, then the semantic layer for clauses with words the grammar does not know,
then audio-aware routing for instruments the loaded model has no stem for.

Every layer may only narrow, never invent: the semantic layer picks the action of a clause whose stems
and numbers the grammar already read; audio routing picks one of the model's stems. Whatever stays
uncertain is rejected with the reason, and a sentence is all or nothing (one unclear clause rejects
it), matching Session.submit.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

from stemd.control.commands import Command, CommandError, IntentRejected
from stemd.control.intent import lexicon, numerals, timing_words
from stemd.control.intent.grammar import (
    Intent, Referent, Settings, Unclear, interpret_with_action, masked_text, parse_clauses,
)
from stemd.control.intent.semantic import SemanticChoice

AudioProvider = Callable[[], tuple[dict[str, np.ndarray], int]]


def parse(
    text: str, stems: Sequence[str] | None = None, beats_per_bar: int = 4, referent: Referent | None = None,
) -> list[Command]:
    """The grammar alone (no model loads, well under a millisecond): Commands or IntentRejected.
    Stateless: what "it"/"them" mean comes in as `referent` (context.referent_after)."""
    return IntentParser(stems=stems, beats_per_bar=beats_per_bar, semantic="off").parse(text, referent)


class IntentParser:
    """Parse sentences for one daemon: its model's stems, its config, its live audio.

    `semantic`: "auto" (CLAP when [intent] clap_path or the fetched checkpoint exists, else the MiniLM
    sentence model when installed, else off), "clap", "minilm", "off", or a ready SemanticLayer.
    The semantic model loads on the first clause the grammar does not know, not at start.
    """

    def __init__(
        self,
        config_intent_section: SimpleNamespace | None = None,
        stems: Sequence[str] | None = None,
        audio_provider: AudioProvider | None = None,
        *,
        default_step_db: float = 3.0,
        beats_per_bar: int = 4,
        semantic: Any = "auto",
    ) -> None:
        self.stems = tuple(stems) if stems else None
        self.settings = Settings(default_step_db=default_step_db, beats_per_bar=beats_per_bar)
        self.config = config_intent_section
        self.audio_provider = audio_provider
        self._semantic = SemanticChoice(config_intent_section, semantic)
        self._router = None
        self._router_reason = "no audio provider" if audio_provider is None else ""

    @classmethod
    def from_config(
        cls, config: SimpleNamespace, stems: Sequence[str] | None = None,
        audio_provider: AudioProvider | None = None, semantic: Any = "auto",
    ) -> "IntentParser":
        """The parser a daemon runs with: [intent], the [mixer] default step, the [transport] meter."""
        return cls(
            config.intent, stems, audio_provider, default_step_db=config.mixer.default_step_db,
            beats_per_bar=config.transport.beats_per_bar, semantic=semantic,
        )

    def parse(self, text: str, referent: Referent | None = None) -> list[Command]:
        """Commands for `text`, or IntentRejected with the reason. The parser keeps no history: a
        pronoun in the first clause means `referent` (see context.Conversation for a Session's)."""
        results = parse_clauses(text, self.settings, referent)
        if not results:
            raise IntentRejected(f"nothing to do in {text.strip()!r}: name an action and a stem")
        intents: list[Intent] = []
        for index, r in enumerate(results):
            if r.unclear is None:
                intents += r.intents
            elif r.unclear.unknown_words and self._semantic.available():
                intents += self._semantic_clause(r.tokens, r.unclear, referent if index == 0 else None)
            else:
                raise IntentRejected(_reason(r.unclear, len(results)))
        try:
            return [self._resolve(i) for i in intents]
        except CommandError as exc:
            raise IntentRejected(str(exc)) from None

    def _semantic_clause(self, tokens, unclear: Unclear, referent: Referent | None) -> list[Intent]:
        try:
            layer = self._semantic.layer()
        except Exception as exc:  # a broken checkpoint must not take the control surface down
            raise IntentRejected(f"{unclear.reason} in {unclear.text!r}; semantic layer unavailable: {exc}") from None
        masked = masked_text(tokens)
        match = layer.classify(masked)
        if match.action is None:
            raise IntentRejected(f"{unclear.reason} in {unclear.text!r}; {match.explain()}")
        try:
            return interpret_with_action(tokens, match.action, self.settings, referent)
        except Unclear as exc:
            raise IntentRejected(f"{exc.reason} (understood {unclear.text!r} as {match.action})") from None

    def _resolve(self, intent: Intent) -> Command:
        """Aim an instrument word at a model stem: the stem of that name, else the stems' audio, else
        the stem Demucs files that instrument under ("other" for most) when the model has it."""
        command, instrument = intent.command, intent.instrument
        if instrument is None or self.stems is None or instrument in self.stems:
            if instrument is not None and self.stems is not None:
                return _restem(command, instrument)
            return command
        router = self._audio_router()
        if router is not None:
            return _restem(command, router.route(instrument, self.stems))
        home = lexicon.INSTRUMENT_HOME[instrument]
        if home in self.stems:
            return _restem(command, home)
        if "other" in self.stems:
            return _restem(command, "other")
        return command  # stem_map routes it (accompaniment on 2-stem models) or says why not

    def _audio_router(self):
        if self._router is None and not self._router_reason:
            from stemd.control.intent.audio_routing import AudioRouter

            if self.config is not None and not getattr(self.config, "audio_routing", True):
                self._router_reason = "disabled in config ([intent] audio_routing)"
                return None
            try:
                clap, why = self._semantic.clap_model()
            except Exception as exc:
                clap, why = None, f"CLAP failed to load: {exc}"
            if clap is None:
                self._router_reason = why or "no CLAP model"
            else:
                self._router = AudioRouter(clap, self.audio_provider)
        return self._router

    def vocabulary(self) -> list[str]:
        """Every word the grammar knows (for a restricted speech-recognition grammar)."""
        words = {w for phrase in lexicon.LEXICON for w in phrase.split()}
        words.update(numerals.WORDS)
        words.update(timing_words.WORDS)
        words.update(("and", "a"))
        return sorted(w for w in words if w.isascii() and w.replace("'", "").isalpha())

    def status(self) -> dict[str, Any]:
        status = {"grammar": "on", "semantic": self._semantic.describe()}
        if self.audio_provider is None:
            status["audio_routing"] = "off: no audio provider (instruments go to the stem Demucs files them under)"
        elif self._router_reason:
            status["audio_routing"] = f"off: {self._router_reason}"
        elif self.config is not None and not getattr(self.config, "audio_routing", True):
            status["audio_routing"] = "off: disabled in config ([intent] audio_routing)"
        else:
            clap, why = self._semantic.clap_model(load=False)
            status["audio_routing"] = "on (CLAP audio embeddings)" if why is None else f"off: {why}"
        return status


def _restem(command: Command, stem: str) -> Command:
    data = command.to_dict()
    data["stem"] = stem
    return Command.from_dict(data)


def _reason(unclear: Unclear, clauses: int) -> str:
    if clauses > 1 and unclear.text:
        return f"{unclear.reason} (in {unclear.text!r})"
    return unclear.reason
