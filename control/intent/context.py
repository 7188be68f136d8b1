"""Conversational context: what "it"/"them"/"those"/"that" mean in the next sentence.

A performer says "drop the vocals", then "bring them back". The grammar stays a pure function of its
input (parse(text, referent=...)); this module keeps the one piece of history it may use, the stems
the previous sentence acted on, and turns it into a grammar `Referent`.

Decisions (also in docs/decisions/intent.md):
- One context per Session, not per control source: OSC one-shot clients (`stemd send`, the demo, most
  scripts) send every line from a fresh UDP port, so a per-client context would forget between two
  lines of the same performer; voice, OSC text and a MIDI binding's sentence are one conversation.
- Only sentences move it (an Applied with text): faders, buttons and JSON commands do not, so a
  fader sweep never changes what "them" means.
- Only the previous sentence counts, as applied (after stem mapping, so an instrument aimed at
  "other" is "other" next time): a rejected sentence leaves it as it was; a sentence that named no
  stem (reset, tempo) or both everything and single stems leaves nothing to refer to, and a pronoun
  is then rejected with that reason rather than guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from stemd.control.commands import ALL, Action, Command
from stemd.control.intent.grammar import Referent, Token
from stemd.control.intent.parser import IntentParser

if TYPE_CHECKING:
    from stemd.daemon.session import Applied, Session


def referent_after(commands: Sequence[Command], text: str) -> Referent:
    """The Referent a sentence leaves: the distinct stems (or drum parts) its commands acted on."""
    targets: list[Token] = []
    for c in commands:
        if c.stem is None:
            continue
        if c.part is not None:
            token = Token("part", c.part, c.part)
        elif c.stem == ALL:
            token = Token("all", None, "everything")
        else:
            token = Token("stem", c.stem, c.stem)
        if token not in targets:
            targets.append(token)
    if not targets:
        return Referent(missing=f"the last command ({text!r}) named no stem")
    if len(targets) > 1 and any(t.kind == "all" for t in targets):
        named = [t for t in targets if t.kind != "all"]
        return Referent(missing=f"after {text!r} that could mean everything or {_names(named)}")
    return Referent(tuple(targets), stop=_stop(commands))


def _stop(commands: Sequence[Command]) -> str | None:
    """"stop it" after a loop releases it, after a refiner turns it off; otherwise it mutes. After a
    sentence that also did something else, it is not guessed."""
    actions = {c.action for c in commands}
    started = {Action.LOOP: "unloop", Action.REFINE: "refine_off"}
    stoppable = [a for a in actions if a in started and not (a is Action.REFINE and _all_off(commands))]
    if not stoppable:
        return None
    return started[stoppable[0]] if len(actions) == 1 else "unclear"


def _all_off(commands: Sequence[Command]) -> bool:
    return all(c.mode == "off" for c in commands if c.action is Action.REFINE)


class Conversation:
    """A Session's parser with pronouns: each sentence is read with the stems of the last sentence the
    Session applied. Threads: sources parse and apply concurrently; the referent and its sentence are
    one tuple swapped whole, so a reader sees the old pair or the new one, never half of each."""

    def __init__(self, parser: IntentParser) -> None:
        self.parser = parser
        self.last: tuple[Referent, str | None] = (Referent(), None)  # and the sentence it came from

    def parse(self, text: str) -> list[Command]:
        return self.parser.parse(text, self.last[0])

    def applied(self, applied: "Applied") -> None:
        """Session listener: remember what a sentence did."""
        if applied.text is not None:
            self.last = (referent_after(applied.commands, applied.text), applied.text)

    def attach(self, session: "Session") -> "Conversation":
        """Become `session`'s parser and hear what it applies."""
        session.parser = self.parse
        session.parser_status = self.status
        session.add_listener(self.applied)
        return self

    def status(self) -> dict[str, Any]:
        status = self.parser.status()
        referent, said = self.last
        if referent.targets:
            status["pronouns"] = f"'it'/'them' = {_names(referent.targets)} (from {said!r})"
        else:
            status["pronouns"] = f"'it'/'them' refer to nothing: {referent.missing}"
        return status


def _names(targets: Sequence[Token]) -> str:
    names = [t.text if t.kind != "stem" else str(t.value) for t in targets]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
