"""The deterministic grammar: a sentence in plain words -> Commands, or a reason it is not understood.

Three passes, all table-driven (see lexicon.py for the words):
1. tokens: lower-case words; numbers in digits or words are read first (numerals.py), then the longest
   phrase the lexicon knows at each position ("bring it all back" before "bring").
2. clauses: split on commas, "and", "then", and also where a new action starts without punctuation,
   as speech recognisers write it ("drop the vocals bring in the bass", "vocals up drums down").
3. one clause -> Commands: the action from its verbs, stems from its targets, numbers with units. A
   clause with targets but no verb repeats the previous clause's action ("mute the vocals and drums").

Nothing is guessed: an unknown word, two actions in one clause, a verb without a target, or a known
ambiguous phrase makes the clause Unclear with a reason. The parser (parser.py) may then ask the
semantic layer; parse() alone rejects.

Decisions, documented in docs/decisions/intent.md:
- "everything except X" states what should be heard: with mute ("mute everything but the drums") it
  solos X; without a verb, with solo/just/keep ("everything but the vocals"), it mutes X; with bring
  back/unmute it unmutes all, then mutes X.
- "bring it all back" / "full mix" = reset (every stem audible at 0 dB, loops released); "unmute
  everything" only unmutes.
- "instrumental"/"karaoke" = mute vocals; "acapella" = solo vocals.
- "louder"/"quieter" without a number = the default step ([mixer] default_step_db); "a bit" halves it,
  "a lot" doubles it; without a stem, or with "it", gain acts on the whole mix (master).
- A verb that removes ("drop", "cut") with a dB amount is a gain cut ("cut the bass by 3 dB").
- Drum parts (kick/snare/hats) exist only for loop/unloop; "mute the kick" is rejected with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from stemd.control.commands import ALL, TIMED_ACTIONS, Command, CommandError
from stemd.control.intent.lexicon import INSTRUMENT_HOME, LEXICON, MAX_PHRASE
from stemd.control.intent.numerals import read_number
from stemd.control.intent.timing_words import read_timing


class Unclear(Exception):
    """One clause the grammar cannot turn into Commands; `args[0]` is the reason for the performer."""

    def __init__(self, reason: str, text: str = "", unknown_words: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text
        self.unknown_words = unknown_words  # only these may go to the semantic layer (see parser.py)


@dataclass(frozen=True)
class Token:
    kind: str
    value: object
    text: str


@dataclass(frozen=True)
class Intent:
    """A Command plus the instrument word its stem came from, when that word is not a stem name."""

    command: Command
    instrument: str | None = None


@dataclass(frozen=True)
class Settings:
    default_step_db: float = 3.0
    beats_per_bar: int = 4


@dataclass(frozen=True)
class Referent:
    """What "it"/"them"/"those" in a sentence's first clause mean: the stems the previous sentence acted
    on (control/intent/context.py keeps it per Session). No `targets`: `missing` says why, and a pronoun
    is rejected with that reason (gain verbs excepted: "turn it up" then means the whole mix)."""

    targets: tuple[Token, ...] = ()
    missing: str = "nothing was changed yet"
    # What "stop it" does after that sentence: "unloop" a loop, "refine_off" a refiner, None mute, or
    # "unclear" when that sentence did several things one of which "stop" could end.
    stop: str | None = None


@dataclass
class Clause:
    tokens: list[Token]

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.tokens)


@dataclass
class ClauseResult:
    text: str
    tokens: list[Token]
    intents: list[Intent] = field(default_factory=list)
    unclear: Unclear | None = None


_TARGETS = ("stem", "instrument", "part", "all", "it")
_VERBS = ("verb", "weak", "special")
# Weak particles that fix a fade's direction or clash with a strong verb of the opposite sense.
_IN_PARTICLES = ("in", "back", "on", "back in")
_OUT_PARTICLES = ("out", "off", "away")
_KEEP_PARTICLES = ("keep", "back", "back in")
_QUESTION_OPENERS = ("is", "are", "was", "were", "did", "does", "am", "has", "have")
_REMOVING = {"mute", "down", "dereverb", "clean", "clean+dereverb", "refine_off"}
_RESTORING = ("restore", "return", "restores", "restored")  # the whole mix restored is a reset
_REFINE_STACK = {"clean", "dereverb", "clean+dereverb"}
_REFINE_VERBS = ("clean", "dereverb")
_CLEAN_NUMBERS = re.compile(r"(?<![a-z0-9.])([+-]?\d+(?:\.\d+)?)\s*(db|dbs|bpm|beats?|bars?)\b")


def normalize(text: str) -> list[str]:
    """Lower-case words, numbers and ',' separators; punctuation other than clause breaks is dropped."""
    text = text.lower().replace("’", "'").replace("&", " and ")
    text = _CLEAN_NUMBERS.sub(r"\1 \2", text)
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    text = re.sub(r"(?<!\d)[.](?!\d)|[;:!?]", " , ", text)
    return re.findall(r"(?<![a-z0-9])[+-]?\d+(?:\.\d+)?|[a-z0-9']+|,", text)


def tokenize(text: str) -> list[Token]:
    words = normalize(text)
    tokens: list[Token] = []
    i = 0
    while i < len(words):
        if words[i] == ",":
            tokens.append(Token("sep", None, ","))
            i += 1
            continue
        timing = read_timing(words, i)
        if timing is not None:
            tokens.append(Token("timing", timing[0], " ".join(words[i:timing[1]])))
            i = timing[1]
            continue
        number = read_number(words, i)
        if number is not None:
            tokens.append(Token("num", number[0], " ".join(words[i:number[1]])))
            i = number[1]
            continue
        for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            entry = LEXICON.get(phrase)
            if entry is not None and "," not in words[i:i + n]:
                tokens.append(_in_context(Token(entry.kind, entry.value, phrase), tokens))
                i += n
                break
        else:
            tokens.append(Token("unknown", None, words[i]))
            i += 1
    return tokens


def _in_context(token: Token, before: list[Token]) -> Token:
    """Words whose meaning depends on the word before: "beat" (drums or a unit), "but", "without"."""
    prev = next((t for t in reversed(before) if t.kind != "filler" or t.text in ("a", "an")), None)
    if not before and token.text in _QUESTION_OPENERS:
        return Token("question", None, token.text)
    if token.text in ("beat", "beats"):
        if token.text == "beats" or prev is not None and (prev.kind == "num" or prev.text in ("a", "an")):
            return Token("unit", "beat", token.text)
        return Token("stem", "drums", token.text)
    if token.kind == "except" and (prev is None or prev.kind != "all" and prev.value != "reset"):
        return Token("sep", None, token.text) if token.text == "but" else token
    if token.text == "on" and prev is not None and prev.kind in ("reverb", "bleed", "refiner"):
        return Token("filler", None, token.text)  # "the bleed on the vocals": a preposition, not "bring on"
    if token.text == "without" and prev is not None and (prev.kind == "all" or prev.value == "reset"):
        return Token("except", None, token.text)
    return token


def split_clauses(tokens: Sequence[Token]) -> list[Clause]:
    """Split at separators, and where a new action begins without one (speech has no commas)."""
    clauses: list[Clause] = []
    cur: list[Token] = []

    def close() -> None:
        if cur:
            clauses.append(Clause(list(cur)))
            cur.clear()

    for index, tok in enumerate(tokens):
        if tok.kind == "sep":
            close()
            continue
        if _loop_noun(tokens, index):
            cur.append(tok)  # "release the drum loop": the loop is the object, not a new action
            continue
        content = [t for t in cur if t.kind != "filler"]
        roles = [_role(t) for t in content]
        if "T" in roles and "X" not in roles:
            first_t = roles.index("T")
            leading = "V" in roles[:first_t]
            trailing = "V" in roles[first_t:]
            if tok.kind in _TARGETS and trailing and roles[-1] != "T":
                close()  # "vocals up | drums down"
            elif tok.kind == "verb" and tok.value not in ("set", "up", "down") and (leading or trailing):
                close()  # "drop the vocals | bring in the bass"
        cur.append(tok)
    close()
    return _merge_lists(clauses)


def _merge_lists(clauses: list[Clause]) -> list[Clause]:
    """Join a clause without a verb to the one before: "mute the vocals and the drums", "fade out the
    vocals and the drums over 4 beats" (the length belongs to both). Kept apart when both carry
    numbers ("vocals up 3 dB and bass 2 dB"): the second then repeats the action with its own amount."""
    merged: list[Clause] = []
    clauses = _lead_refiners(_lead_lists(clauses))
    for clause in clauses:
        roles = {_role(t) for t in clause.tokens if t.kind != "filler"}
        has_num = any(t.kind == "num" for t in clause.tokens)
        if not roles and not has_num:
            continue  # filler only ("the.", "please,")
        unknown = any(t.kind == "unknown" for t in clause.tokens)  # stays whole for the semantic layer
        if merged and "V" not in roles and "X" not in roles and not unknown:
            prev = merged[-1]
            if not (has_num and any(t.kind == "num" for t in prev.tokens)):
                prev.tokens.extend(clause.tokens)
                continue
        merged.append(clause)
    return merged


def _loop_noun(tokens: Sequence[Token], index: int) -> bool:
    """A "loop" right after a stem that ends its clause ("stop the vocal loop") names the loop."""
    tok = tokens[index]
    if tok.kind != "verb" or tok.value != "loop" or not index or tokens[index - 1].kind not in _TARGETS:
        return False
    rest = next((t for t in tokens[index + 1:] if t.kind != "filler"), None)
    return rest is None or rest.kind == "sep"


def _lead_refiners(clauses: list[Clause]) -> list[Clause]:
    """A clause that is only a refine verb joins the next clause ("dereverb and clean the vocals")."""
    out: list[Clause] = []
    for clause in clauses:
        if out and all(t.kind == "filler" or t.kind == "verb" and t.value in _REFINE_VERBS for t in out[-1].tokens):
            out[-1] = Clause(out[-1].tokens + clause.tokens)
        else:
            out.append(clause)
    return out


def _lead_lists(clauses: list[Clause]) -> list[Clause]:
    """A sentence that opens with stems and says the verb after them ("the vocals and bass only",
    "vocals and drums up"): the opening stems join the first clause whose verb follows its stems."""
    lead: list[Token] = []
    for index, clause in enumerate(clauses):
        roles = [_role(t) for t in clause.tokens if t.kind != "filler"]
        if roles and set(roles) == {"T"}:
            lead.extend(clause.tokens)
            continue
        if lead and roles and roles[0] == "T" and "V" in roles and "X" not in roles:
            return [Clause(lead + clause.tokens)] + clauses[index + 1:]
        return clauses
    return clauses


def _role(tok: Token) -> str:
    if tok.kind in _TARGETS:
        return "T"
    if tok.kind in _VERBS:
        return "V"
    if tok.kind == "except":
        return "X"
    return "O"


def parse_clauses(text: str, settings: Settings = Settings(), referent: Referent | None = None) -> list[ClauseResult]:
    """Every clause of `text` with its Intents or the reason it is unclear. `referent` (the previous
    sentence's stems) is what a pronoun in the first clause means; later clauses refer to the clause
    before them. Without it, a pronoun that needs a stem is rejected."""
    results: list[ClauseResult] = []
    previous: _Template | None = None
    for index, clause in enumerate(split_clauses(tokenize(text))):
        try:
            intents, previous = _interpret(clause.tokens, previous, settings, referent if index == 0 else None)
            results.append(ClauseResult(clause.text, clause.tokens, intents))
        except Unclear as exc:
            exc.text = clause.text
            results.append(ClauseResult(clause.text, clause.tokens, unclear=exc))
            previous = None
        except CommandError as exc:
            results.append(ClauseResult(clause.text, clause.tokens, unclear=Unclear(str(exc), clause.text)))
            previous = None
    _sentence_timing(results)
    _stack_refiners(results)
    return results


def parse_grammar(text: str, settings: Settings = Settings()) -> list[Intent]:
    """All Intents of `text`; raise Unclear for the first clause the grammar does not understand."""
    results = parse_clauses(text, settings)
    if not results:
        raise Unclear(f"nothing to do in {text.strip()!r}: name an action and a stem", text)
    for r in results:
        if r.unclear is not None:
            raise r.unclear
    return [i for r in results for i in r.intents]


@dataclass(frozen=True)
class _Template:
    """The action of the last clause, reused by a clause that only names stems."""

    action: str  # the clause's action ("up"), which may differ from the command's ("gain")
    command: str
    fields: tuple[tuple[str, object], ...]
    targets: tuple[Token, ...] = ()  # what "it"/"them" in the next clause refers to


@dataclass
class _Parts:
    strong: list[str]
    weak: list[Token]
    targets: list[Token]
    excluded: list[Token]
    numbers: list[tuple[float, str | None]]  # (value, unit or None)
    absolute: bool
    multiplier: float
    objects: set[str]
    special: list[str]
    all_tokens: list[Token]
    slow: bool = False


def _collect(tokens: Sequence[Token]) -> _Parts:
    content = [t for t in tokens if t.kind != "filler"]
    for t in content:
        if t.kind == "ambiguous":
            raise Unclear(str(t.value))
        if t.kind == "question":
            raise Unclear("that sounds like a question; stemd takes commands (\"mute the vocals\")")
    unknown = [t.text for t in content if t.kind == "unknown"]
    if unknown:
        raise Unclear(f"I don't know {', '.join(repr(u) for u in unknown)}", unknown_words=True)
    parts = _Parts([], [], [], [], [], False, 1.0, set(), [], list(tokens))
    seen_except = False
    for idx, t in enumerate(content):
        if t.kind == "verb":
            if t.value not in parts.strong:
                parts.strong.append(str(t.value))
        elif t.kind == "weak":
            parts.weak.append(t)
        elif t.kind == "special":
            parts.special.append(str(t.value))
        elif t.kind in _TARGETS:
            (parts.excluded if seen_except else parts.targets).append(t)
        elif t.kind == "except":
            if seen_except or not (any(x.kind == "all" for x in parts.targets) or "reset" in parts.strong):
                raise Unclear(f"{t.text!r} needs 'everything' before it (\"mute everything except the drums\")")
            seen_except = True
        elif t.kind == "num":
            nxt = content[idx + 1] if idx + 1 < len(content) else None
            unit = str(nxt.value) if nxt is not None and nxt.kind == "unit" else None
            parts.numbers.append((float(t.value), unit))  # type: ignore[arg-type]
        elif t.kind == "unit":
            prev = content[idx - 1] if idx else None
            if prev is None or prev.kind != "num":
                if t.value == "db" or t.text.endswith("s") and t.value != "bpm" and t.text != "beats per minute":
                    raise Unclear(f"how many {t.text}? say a number")
                if t.value != "bpm":
                    parts.numbers.append((1.0, str(t.value)))
                elif "tempo" not in parts.strong:
                    parts.strong.append("tempo")
        elif t.kind in ("to", "unity"):
            parts.absolute = True
            if t.kind == "unity":
                parts.numbers.append((0.0, "db"))
        elif t.kind == "mod":
            parts.multiplier *= float(t.value)  # type: ignore[arg-type]
        elif t.kind in ("reverb", "bleed", "refiner"):
            parts.objects.add(t.kind)
        elif t.kind == "slow":
            parts.slow = True
    if any(u == "bpm" for _, u in parts.numbers) and "tempo" not in parts.strong:
        parts.strong.append("tempo")
    return parts


def _action(p: _Parts, previous: _Template | None) -> str:
    """The one action of a clause, after the combinations that make two words one action."""
    strong = set(p.strong)
    particles = {t.text for t in p.weak}
    weak_in = particles & set(_IN_PARTICLES)
    weak_out = particles & set(_OUT_PARTICLES)
    if "tempo" in strong:
        strong -= {"set", "up", "down"}
    if "set" in strong:
        strong -= {"up", "down"}
    if "fade" in strong:
        strong.discard("fade")
        first = next((t.text for t in p.weak if t.text in _IN_PARTICLES + _OUT_PARTICLES), None)
        if "up" in strong or first in _IN_PARTICLES:
            strong = (strong - {"up"}) | {"fade_in"}
        elif "down" in strong or first in _OUT_PARTICLES:
            strong = (strong - {"down"}) | {"fade_out"}
        else:
            raise Unclear("fade in or out? say \"fade in the drums\" or \"fade out the vocals\"")
    if "reverb" in p.objects or "bleed" in p.objects:
        # "no reverb on the vocals" removes it; "keep / put back the vocal reverb" means the stem as
        # separated (refiner off); "more reverb" asks for something stemd cannot make.
        removing = bool(strong & _REMOVING) or bool(weak_out) or "no" in particles
        keeping = "unmute" in strong or bool(particles & set(_KEEP_PARTICLES))
        if keeping and not removing and strong <= {"unmute"}:
            return "refine_off"
        adding = strong & {"up", "unmute"} or particles & {"add", "give me"}
        if adding or not strong <= _REMOVING or not removing:
            raise Unclear("stemd can remove reverb or bleed from a stem, not add it")
        if "reverb" in p.objects and ("bleed" in p.objects or "clean" in strong):
            return "clean+dereverb"  # "clean the vocals, no reverb" in one breath
        return "dereverb" if "reverb" in p.objects else "clean"
    if "refiner" in p.objects:
        if strong <= {"mute", "refine_off"} and (strong or weak_out):
            return "refine_off"
        raise Unclear("which refiner mode? say \"clean up the vocals\" or \"dereverb the vocals\"")
    if len(strong) > 1 and strong <= {"mute", "down"} and any(u == "db" for _, u in p.numbers):
        strong = {"down"}
    if "loop" in strong and len(strong) == 2 and strong & {"unloop", "mute"}:
        strong = {"unloop"}  # "release the drum loop", "stop the vocal loop": the loop is the object
    if strong == {"clean", "dereverb"}:
        strong = {"clean+dereverb"}  # "dereverb and clean the vocals"
    if "reset" in strong and strong <= {"reset", "unmute"}:
        strong = {"reset"}  # "bring back the full mix", "restore the original mix"
    restoring = any(t.kind == "verb" and t.text in _RESTORING for t in p.all_tokens)
    if strong == {"unmute"} and restoring and p.targets and all(t.kind == "all" for t in p.targets):
        strong = {"reset"}  # "restore the mix", "return the whole track": the mix as it was
    if len(strong) > 1:
        raise Unclear(f"two actions in one phrase ({' and '.join(sorted(strong))}); separate them with 'and'")
    if strong:
        action = strong.pop()
        if action == "mute" and weak_in or action == "unmute" and weak_out:
            raise Unclear("that says both in and out; say mute or bring in")
        return action
    kinds = {str(t.value) for t in p.weak}
    if len(kinds) > 1:
        raise Unclear(f"that mixes {' and '.join(sorted(t.text for t in p.weak))}; say mute, solo or bring in")
    if kinds:
        return kinds.pop()
    if p.excluded:
        return "keep"
    if previous is not None and p.targets:
        return previous.action
    if p.targets and p.numbers and all(u in ("db", None) for _, u in p.numbers):
        return "nudge"  # "drums -3 dB", "bass +2"
    if p.targets and not p.numbers and _only_stems(p):
        return "solo"  # "bass and drums": the stems to hear, the brief's multi-stem pass
    words = [t for t in p.all_tokens if t.kind == "filler"]
    raise Unclear("no action: say what to do (mute, solo, bring in, louder, loop, fade ...)",
                  unknown_words=len(words) >= 2)  # "let me hear the bass again": words the grammar skips


_BARE_LIST_WORDS = ("the", "a", "please", "now", "okay", "ok", "just a", "right now")


def _only_stems(p: _Parts) -> bool:
    """A clause that is nothing but stem names ("bass and drums", "the vocals please"): any other word
    ("the vocals need to go") leaves the meaning to the semantic layer, never to a guess."""
    return all(t.kind in ("stem", "instrument") for t in p.targets) and all(
        t.kind in ("stem", "instrument", "timing") or t.kind == "filler" and t.text in _BARE_LIST_WORDS
        for t in p.all_tokens)


def _interpret(
    tokens: list[Token], previous: _Template | None, s: Settings, referent: Referent | None = None,
) -> tuple[list[Intent], _Template | None]:
    """The clause's Intents, each waiting for the clause's timing words when it has some."""
    intents, template = _interpret_untimed(tokens, previous, s, referent)
    return _clause_timing(intents, tokens), template


def _clause_timing(intents: list[Intent], tokens: Sequence[Token]) -> list[Intent]:
    """The clause's Intents under its timing words, if it has any (one timing per clause)."""
    timings = {str(t.value) for t in tokens if t.kind == "timing"}
    if len(timings) > 1:
        raise Unclear(f"two timings in one phrase ({' and '.join(sorted(timings))}); say one")
    return _timed(intents, timings.pop(), strict=True) if timings else intents


def _timed(intents: list[Intent], at: str, strict: bool) -> list[Intent]:
    """Intents waiting for `at`; one that cannot wait is refused (`strict`) or left immediate."""
    out: list[Intent] = []
    for i in intents:
        if i.command.action not in TIMED_ACTIONS:
            if strict:
                raise Unclear(f"{i.command.action.value} cannot wait for a {at}: it applies at once; "
                              "say it without the timing")
            out.append(i)
        else:
            out.append(Intent(i.command if i.command.at else i.command.timed(at), i.instrument))
    return out


def _sentence_timing(results: list[ClauseResult]) -> None:
    """One timing in a sentence times all of it ("drop the vocals, bring in the bass on the next bar");
    with several, each clause keeps its own and the others apply at once."""
    timed = [r for r in results if any(t.kind == "timing" for t in r.tokens)]
    if len(timed) != 1 or timed[0].unclear is not None:
        return
    at = next(str(t.value) for t in timed[0].tokens if t.kind == "timing")
    for r in results:
        if r is not timed[0] and r.unclear is None:
            r.intents = _timed(r.intents, at, strict=False)


def _stack_refiners(results: list[ClauseResult]) -> None:
    """Clean-up and dereverb asked for the same stem in one sentence stack into "clean+dereverb" (the
    refiner runs both), in the first clause's place; a later "off" or a repeat simply follows."""
    first: dict[str, tuple[ClauseResult, int]] = {}
    for r in results:
        if r.unclear is not None:
            continue
        kept: list[Intent] = []
        for i in r.intents:
            c = i.command
            if c.action.value != "refine" or c.mode not in _REFINE_STACK:
                kept.append(i)
                continue
            if c.stem not in first:
                first[c.stem] = (r, len(kept))
                kept.append(i)
                continue
            owner, at = first[c.stem]
            earlier = owner.intents[at] if owner is not r else kept[at]
            modes = set(earlier.command.mode.split("+")) | set(c.mode.split("+"))
            mode = "clean+dereverb" if modes == {"clean", "dereverb"} else c.mode
            stacked = Intent(Command("refine", stem=c.stem, mode=mode), earlier.instrument)
            if owner is r:
                kept[at] = stacked
            else:
                owner.intents[at] = stacked
        r.intents = kept


def _interpret_untimed(
    tokens: list[Token], previous: _Template | None, s: Settings, referent: Referent | None = None,
) -> tuple[list[Intent], _Template | None]:
    p = _collect(tokens)
    if previous is not None and previous.targets and any(t.kind == "it" for t in p.targets):
        p.targets = [x for t in p.targets for x in (previous.targets if t.kind == "it" else (t,))]
    if p.special:
        if p.strong or p.targets or p.numbers or len(set(p.special)) > 1:
            said = " ".join(t.text for t in tokens if t.kind != "filler")
            raise Unclear(f"{said!r} mixes a mode with other words; say it alone")
        action = "mute" if p.special[0] == "instrumental" else "solo"
        vocals = Token("stem", "vocals", "vocals")
        return [Intent(Command(action, stem="vocals"))], _Template(action, action, (), (vocals,))
    action = _action(p, previous)
    if action in _REFINE_STACK and not p.targets and previous is not None and previous.command == "refine":
        p.targets = list(previous.targets)  # "clean the vocals, no reverb": the same stems
    if referent is not None:
        action = _refer(p, referent, action, tokens)
    repeats = previous is not None and action == previous.action and not (p.strong or p.weak or p.objects)
    if repeats and not p.numbers and not p.excluded and previous is not None:
        return _build(previous.command, dict(previous.fields), p.targets), previous
    return _dispatch(action, p, s)


_MIX_WITHOUT_REFERENT = ("up", "down", "set", "nudge", "unsolo")  # "turn it up", "unsolo it": the mix


def _refer(p: _Parts, referent: Referent, action: str, tokens: Sequence[Token]) -> str:
    """Put the previous sentence's stems where the clause says "it"/"them"; return the action ("stop it"
    ends a loop or a refiner the previous sentence started). Never reaches further back than that."""
    if action == "reset" or not any(t.kind == "it" for t in p.targets):
        return action  # "reset it" is the whole mix
    if not referent.targets:
        if action in _MIX_WITHOUT_REFERENT:
            return action  # "turn it up" with nothing before it: the whole mix, as without a referent
        said = " ".join(t.text for t in tokens)
        raise Unclear(f"{said}? {referent.missing} — name a stem (vocals, drums, bass, other)")
    targets: list[Token] = []
    for t in p.targets:
        for x in referent.targets if t.kind == "it" else (t,):
            if x not in targets:
                targets.append(x)
    p.targets = targets
    if action == "mute" and referent.stop and any(t.text == "stop" for t in tokens):
        if referent.stop == "unclear":
            raise Unclear("stop what? the last command did more than one thing; say \"release them\", "
                          "\"stop cleaning them\" or \"mute them\"")
        return referent.stop
    return action


def _dispatch(action: str, p: _Parts, s: Settings) -> tuple[list[Intent], _Template | None]:
    if p.excluded:
        return _except(action, p), None
    if p.slow and action in ("mute", "unmute"):
        action = "fade_out" if action == "mute" else "fade_in"  # "slowly take the drums out"
    if action in ("mute", "unmute", "solo") and any(u == "db" for _, u in p.numbers):
        action = "down" if action == "mute" else "up" if action == "unmute" else action
    if action in ("mute", "unmute", "solo"):
        _no_numbers(p, action)
        return _with_template(action, action, {}, _need_targets(p, action))
    if action in ("up", "down", "set", "nudge"):
        return _gain(action, p, s)
    if action in ("fade_in", "fade_out"):
        fields = {"direction": action[5:]}
        beats = _beats(p, s)
        if beats is not None:
            fields["beats"] = beats
        return _with_template(action, "fade", fields, _need_targets(p, "fade", whole_mix=beats is not None))
    if action == "loop":
        beats = _beats(p, s)
        targets = _need_targets(p, "loop", whole_mix=beats is not None)
        return _with_template(action, "loop", {"beats": beats} if beats else {}, targets)
    if action == "unloop":
        _no_numbers(p, "release")
        targets = p.targets or [Token("all", None, "everything")]
        return _with_template(action, "unloop", {}, targets)
    if action == "unsolo":
        _no_numbers(p, "unsolo")
        if not p.targets or all(t.kind in ("all", "it") for t in p.targets):
            return [Intent(Command("unsolo"))], None
        return _with_template(action, "unsolo", {}, _need_targets(p, "unsolo"))
    if action in ("clean", "dereverb", "clean+dereverb", "refine_off"):
        _no_numbers(p, "refine")
        mode = "off" if action == "refine_off" else action
        return _with_template(action, "refine", {"mode": mode}, _need_targets(p, "refine"))
    if action == "reset":
        _no_numbers(p, "reset")
        if any(t.kind not in ("all", "it") for t in p.targets):
            raise Unclear("reset acts on the whole mix; to restore one stem say \"unmute the drums\"")
        return [Intent(Command("reset"))], None
    if action == "cancel":
        if any(t.kind != "it" for t in p.targets) or p.numbers:  # "never mind that" is still all of it
            raise Unclear("cancel drops every command still waiting for its beat; say \"cancel\" alone")
        return [Intent(Command("cancel"))], None
    if action == "tempo":
        bpms = [n for n, u in p.numbers if u in (None, "bpm")]
        if len(bpms) != 1 or p.targets:
            raise Unclear("tempo needs one number: \"tempo 128\"")
        return [Intent(Command("tempo", bpm=bpms[0]))], None
    raise Unclear(f"{action} does not fit here")


def _with_template(clause_action: str, action: str, fields: dict, targets: list[Token]) -> tuple[list[Intent], _Template]:
    return _build(action, fields, targets), _Template(clause_action, action, tuple(fields.items()), tuple(targets))


def _build(action: str, fields: dict, targets: list[Token]) -> list[Intent]:
    out: list[Intent] = []
    for t in targets:
        stem, instrument, part = _target(t, action)
        extra = dict(fields)
        if part is not None:
            extra["part"] = part
        out.append(Intent(Command(action, stem=stem, **extra), instrument))
    return out


def _target(t: Token, action: str) -> tuple[str, str | None, str | None]:
    if t.kind == "stem":
        return str(t.value), None, None
    if t.kind == "instrument":
        return INSTRUMENT_HOME[str(t.value)], str(t.value), None
    if t.kind == "part":
        if action not in ("loop", "unloop"):
            raise Unclear(f"the {t.value} is part of the drums and can only be looped; say \"{action} the drums\"")
        return "drums", None, str(t.value)
    if t.kind == "all":
        return ALL, None, None
    raise Unclear(f"{action} {t.text!r}? name a stem (vocals, drums, bass, other)")


def _need_targets(p: _Parts, action: str, whole_mix: bool = False) -> list[Token]:
    """The clause's stems; with none named, `whole_mix` (a length was given: "loop the last 2 bars")
    means the whole mix, otherwise the performer is asked which stem."""
    if not p.targets and whole_mix:
        return [Token("all", None, "everything")]
    if not p.targets:
        raise Unclear(f"{action} what? name a stem (vocals, drums, bass, other)")
    for t in p.targets:
        if t.kind == "it":
            raise Unclear(f"{action} {t.text!r}? name a stem (vocals, drums, bass, other)")
    return p.targets


def _no_numbers(p: _Parts, action: str) -> None:
    if p.numbers:
        raise Unclear(f"{action} takes no number here; for a timed change say \"fade out the vocals over 8 beats\"")


def _beats(p: _Parts, s: Settings) -> float | None:
    beats: list[float] = []
    for n, unit in p.numbers:
        if unit == "bar":
            beats.append(n * s.beats_per_bar)
        elif unit in ("beat", None):
            beats.append(n)
        else:
            raise Unclear(f"a length is in beats or bars, not {unit}")
    if len(beats) > 1:
        raise Unclear("more than one length given")
    return beats[0] if beats else None


def _gain(action: str, p: _Parts, s: Settings) -> tuple[list[Intent], _Template | None]:
    amounts = [(n, u) for n, u in p.numbers if u in ("db", None)]
    if len(amounts) != len(p.numbers) or len(amounts) > 1:
        raise Unclear("a gain change takes one amount in dB: \"vocals up 3 dB\"")
    targets = [t for t in p.targets if t.kind != "it"] or [Token("all", None, "everything")]
    if amounts and (p.absolute or action == "set"):
        fields = {"db": amounts[0][0], "absolute": True}
    elif action == "set":
        raise Unclear("set to what level? say \"set the vocals to minus 6 dB\"")
    else:
        size = abs(amounts[0][0]) if amounts else s.default_step_db * p.multiplier
        fields = {"db": amounts[0][0] if action == "nudge" else size if action == "up" else -size}
    return _with_template(action, "gain", fields, targets)


def _except(action: str, p: _Parts) -> list[Intent]:
    if p.numbers:
        raise Unclear("'except' works with mute, solo and bring back, without numbers")
    for t in p.excluded:
        if t.kind in ("part", "it", "all"):
            raise Unclear(f"everything except {t.text!r}? name a stem")
    if action == "mute":
        return _build("solo", {}, p.excluded)
    if action == "reset":
        return [Intent(Command("reset"))] + _build("mute", {}, p.excluded)
    if action == "unmute" and not any(t.text in ("keep", "play", "give me", "add") for t in p.weak):
        return [Intent(Command("unmute", stem=ALL))] + _build("mute", {}, p.excluded)
    if action in ("solo", "keep", "unmute"):
        return _build("mute", {}, p.excluded)
    raise Unclear("'except' works with mute, solo and bring back")


def interpret_with_action(
    content: Sequence[Token], action: str, settings: Settings = Settings(), referent: Referent | None = None,
) -> list[Intent]:
    """Commands for a clause whose action came from elsewhere (the semantic layer): the clause's own
    stems and numbers (or the previous sentence's, for a pronoun) still come from the grammar, so a
    paraphrase never invents a stem."""
    known = [t for t in content if t.kind not in ("unknown", "verb", "weak", "filler")]
    p = _collect(known)
    if referent is not None:
        action = _refer(p, referent, action, content)
    if not [t for t in p.targets if t.kind != "it"] and action not in ("reset", "unsolo", "unloop"):
        raise Unclear(f"{action} what? name a stem (vocals, drums, bass, other)")
    p.strong = [action]
    return _clause_timing(_dispatch(action, p, settings)[0], content)  # "make the vocals vanish on the one"


def masked_text(content: Sequence[Token]) -> str:
    """The clause with its stems replaced by "it", as the semantic layer's prototypes are written."""
    words: list[str] = []
    masked = False
    for t in content:
        if t.kind in ("stem", "instrument", "part", "all") and not masked:
            if words and words[-1] in ("the", "a"):
                words.pop()
            words.append("it")
            masked = True
        elif t.kind in ("stem", "instrument", "part", "all"):
            words.append(t.text)
        elif t.kind not in ("num", "unit"):
            words.append(t.text)
    return " ".join(words)
