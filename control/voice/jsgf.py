"""The PocketSphinx grammar: command sentences generated from the intent lexicon, as JSGF.

A word loop (what Vosk gets) is too loose for PocketSphinx's small acoustic model: over music, any
sound becomes a string of command words. So the grammar's paths are command sentences: each verb
family from the lexicon with its own target list and only the tails the parser reads for it (an
amount for up/down, a length for fades and loops, a level for set), up to three clauses joined by
"and"/"then". Free garbage phones may come before and after the sentence (the music around a
push-to-talk command) or stand alone (no command; refused). Every phrase comes from
`lexicon.LEXICON` by its token kind and value, so a synonym added there is speakable without
touching this file; only the sentence shapes and the timing words are written here. The same tree
renders as JSGF for the decoder and as a regular expression that tells a complete sentence from the
partial path PocketSphinx returns when the audio ends mid-command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Union

from stemd.control.intent import lexicon, numerals

# Mixing words the CMU dictionary lacks, in its phone set: abbreviations and studio jargon.
SPELLED = {
    "db": "D IY B IY", "dbs": "D IY B IY Z", "bpm": "B IY P IY EH M",
    "unmute": "AH N M Y UW T", "unmuted": "AH N M Y UW T IH D", "unsolo": "AH N S OW L OW",
    "soloed": "S OW L OW D", "unloop": "AH N L UW P", "dereverb": "D IY R IH V ER B",
    "acapella": "AA K AH P EH L AH", "synth": "S IH N TH", "synths": "S IH N TH S",
    "bassline": "B EY S L AY N", "hihat": "HH AY HH AE T", "hihats": "HH AY HH AE T S",
}
# Issue 18's timing and cancel words: in the grammar already, so a parser that learns them is
# speakable at once (the parser refuses them until then, which is a refusal, never a wrong command).
BOUNDARIES = ("beat", "bar", "phrase")
CANCEL = ("cancel", "never mind", "cancel that")
# A search's cost and its confusions grow with the phrases it holds: each family (one token kind and
# value) keeps its first PER_FAMILY speakable phrases (the lexicon lists the usual words first),
# without inflections or extensions of a kept one ("mutes", "soloed", "cut out": commands are short
# imperatives) and without the spellings the lexicon holds only because other recognisers mishear
# commands that way.
PER_FAMILY = 5
# Targets are where the small acoustic model confuses most ("drums" heard as "rhodes", "vocals" as
# "flute"), so each stem, instrument and drum part keeps fewer synonyms, and only the first
# INSTRUMENTS instruments (the lexicon lists the common ones first) are speakable: the others
# still reach the parser by text, OSC or MIDI.
PER_TARGET = 3
THE = "the"
INSTRUMENTS = 4
TARGET_KINDS = frozenset({"stem", "instrument", "part", "all"})
# Spoken English the lexicon lists past PER_FAMILY ("turn up the bass" is how most people say it).
SPOKEN = {"up": ("turn up",), "down": ("turn down",)}
# One-word synonyms this short ("raw", "it") fit any burst of music or speech; a family keeps them
# only as its first, canonical phrase ("up").
MIN_PHONES = 2
MISHEARINGS = frozenset({
    "moot", "so low", "lube", "loup", "base", "base line", "baseline", "un mute", "un solo", "un loop",
    "de reverb", "focals", "trums", "drumbs", "snair", "kik", "geetar", "deebee", "d b", "b p m",
})
# Short phrases the tuning runs heard most often in chatter and music alone ("what is the weather
# like today" -> "unloop"): "stop the loop" and "solo" say the same with more sound to check.
ATTRACTORS = frozenset({"unloop", "release", "only"})
# Families that are a whole command by themselves ("unsolo", "stop the loop", "reset").
STANDALONE = ("unsolo", "unloop", "reset")

# The garbage model: one "word" per phone of the en-us acoustic model, looped. Sound that is no
# sentence of the grammar (chatter, music, a cough) is explained better by free phones than by forced
# command words, so the decoder's best path goes there: around a command it is the music the
# performer spoke over (trimmed), alone or inside a command it means no command (refused: a refusal
# is better than a wrong action).
PHONES = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W "
          "Y Z ZH").split()
GARBAGE = {f"garbage_{p.lower()}": p for p in PHONES}

Node = Union["Alt", "Seq", "Opt", "Repeat", "Ref", str]


@dataclass(frozen=True)
class Alt:
    options: tuple[Node, ...]


@dataclass(frozen=True)
class Seq:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Opt:
    node: Node


@dataclass(frozen=True)
class Repeat:
    """Zero or more: the decoder gets a loop, one copy of the network however many clauses follow."""

    node: Node


@dataclass(frozen=True)
class Ref:
    rule: str


def alt(*options: Node) -> Alt:
    return Alt(tuple(options))


def seq(*parts: Node) -> Seq:
    return Seq(tuple(parts))


GARBAGE_LOOP = Seq((Ref("garbage"), Repeat(Ref("garbage"))))


@dataclass
class Grammar:
    """Rules by name (`command` is the public one: a `sentence` or garbage), the phrases dropped because
    the dictionary cannot spell them, and the words that must be added to the dictionary (SPELLED and
    the garbage phones)."""

    rules: dict[str, Node]
    missing: tuple[str, ...] = ()
    added: dict[str, str] = field(default_factory=dict)
    _pattern: re.Pattern[str] | None = None

    has_unk = False  # no [unk]: out-of-grammar audio goes to the garbage phones instead

    @property
    def entries(self) -> tuple[str, ...]:
        return tuple(sorted(self.words))

    @property
    def words(self) -> set[str]:
        return {w for node in self.rules.values() for w in _words(node)}

    def to_jsgf(self) -> str:
        lines = ["#JSGF V1.0;", "grammar stemd;"]
        for name, node in self.rules.items():
            lines.append(f"{'public ' if name == 'command' else ''}<{name}> = {_jsgf(node)};")
        return "\n".join(lines) + "\n"

    def verifier(self, sentence: str) -> str:
        """JSGF for the second pass: this one sentence or free phones, nothing else (`sphinx.verify`)."""
        return (f"#JSGF V1.0;\ngrammar verify;\n<garbage> = {_jsgf(self.rules['garbage'])};\n"
                f"public <command> = {' '.join(sentence.split())} | {_jsgf(GARBAGE_LOOP)};\n")

    def complete(self, text: str) -> bool:
        """Whether `text` is a whole sentence of the grammar (not garbage, nor a path cut off mid-command)."""
        if self._pattern is None:
            self._pattern = re.compile(_regex(Ref("sentence"), self.rules) + r"\Z")
        return self._pattern.match(" ".join(text.split()) + " ") is not None


def phrases(kind: str, value: object = ..., table: dict[str, lexicon.Entry] | None = None) -> list[str]:
    """The lexicon's phrases of one token kind (and value), in lexicon order."""
    table = lexicon.LEXICON if table is None else table
    return [p for p, e in table.items() if e.kind == kind and (value is ... or e.value == value)]


def build(pronounce: Callable[[str], str | None], wake_word: str = "",
          table: dict[str, lexicon.Entry] | None = None) -> Grammar:
    """The command grammar over `table` (the intent lexicon), keeping only phrases whose every word
    the decoder's dictionary (`pronounce`: word -> its phones, or None) or SPELLED can say.
    `wake_word` may open an utterance."""

    def knows(word: str) -> bool:
        return pronounce(word) is not None

    def phones(word: str) -> int:
        return len((pronounce(word) or SPELLED.get(word, "")).split())

    missing: list[str] = []

    def speakable(candidates: Iterable[str], cap: int = PER_FAMILY) -> tuple[str, ...]:
        kept: list[str] = []
        for phrase in dict.fromkeys(" ".join(c.lower().split()) for c in candidates):
            words = phrase.split()
            if phrase in MISHEARINGS | ATTRACTORS or "it" in words or any(_variant(phrase, k) for k in kept):
                continue
            if not all(w.replace("'", "").isalpha() and (knows(w) or w in SPELLED) for w in words):
                missing.append(phrase)
            elif not (kept and len(words) == 1 and phones(words[0]) <= MIN_PHONES):
                kept.append(phrase)
        return tuple(kept[:cap])

    def words_of(kind: str, value: object = ...) -> Alt:
        """The kind's phrases: PER_TARGET of each value for targets, PER_FAMILY for the rest."""
        values = list(dict.fromkeys(e.value for e in (table or lexicon.LEXICON).values() if e.kind == kind))
        chosen = values[:INSTRUMENTS] if kind == "instrument" else values if value is ... else [value]
        cap = PER_TARGET if kind in TARGET_KINDS else PER_FAMILY
        found = tuple(p for v in chosen for p in speakable(phrases(kind, v, table), cap))
        if not found:
            raise ValueError(f"the dictionary can say none of the lexicon's {kind} {value} phrases")
        return Alt(found)

    def verb_words(value: str) -> Alt:
        usual = speakable(phrases("verb", value, table))
        return Alt(usual + tuple(p for p in speakable(SPOKEN.get(value, ())) if p not in usual))

    # Each verb family gets only the tails the parser reads for it ("turn up the bass a bit", "fade
    # out the vocals over two bars", "set the drums to minus six db"), so a path through the grammar
    # is a command sentence, not "kill the vocals loads" or "loop the bass by six db": every extra
    # path is one more way for the small acoustic model to hear a wrong command. Rules shared by the
    # families (targets, numbers, lengths) are written once; PocketSphinx inlines each reference.
    def family(*values: str) -> Alt:
        return Alt(tuple(verb_words(v) for v in values))

    def over(*words: str) -> Seq:
        return seq(alt(*words), Opt("the"), Opt("next"), Ref("number"), Ref("beats"))

    slow = words_of("slow")
    rules: dict[str, Node] = {
        "digit": Alt(tuple(k for k, v in numerals.UNITS.items() if v > 0 and k != "oh")),
        "number": alt(
            seq(Opt(Alt(tuple(numerals.SIGNS))),
                alt(Ref("digit"), "zero", *numerals.TEENS, seq(Alt(tuple(numerals.TENS)), Opt(Ref("digit")))),
                Opt(alt(seq("point", Ref("digit")), "and a half"))),
            seq(Ref("digit"), Alt(tuple(numerals.TENS)), Opt(Ref("digit"))),  # "one twenty eight" BPM
        ),
        "beats": alt(*dict.fromkeys(("beats", "bars", *speakable(phrases("unit", "beat", table)))),
                     words_of("unit", "bar")),
        "db": seq(Ref("number"), Opt(words_of("unit", "db"))),
        # not "it": a voice command names what it changes; drum parts only loop (the parser says so)
        "target": alt(seq(THE, alt(words_of("stem"), words_of("instrument"))), words_of("all")),
        "part": seq(THE, words_of("part")),
        "timing": alt(seq(alt("on", "at"), "the next", Alt(BOUNDARIES)), "on the one",
                      seq("in", Ref("number"), Ref("beats"))),
        "action": alt(
            seq(family("mute", "unmute"), Ref("target"), Opt(slow)),
            seq(family("solo"), Ref("target")),
            seq(family("up", "down"), Ref("target"), Opt(alt(words_of("mod"), seq("by", Ref("db"))))),
            seq(verb_words("set"), Ref("target"), "to", alt(Ref("db"), words_of("unity"))),
            seq(family("fade_in", "fade_out"), Ref("target"), Opt(over("over", "for")), Opt(slow)),
            seq(verb_words("fade"), Ref("target"), alt("in", "out"), Opt(over("over", "for"))),
            seq(family("loop"), alt(Ref("target"), Ref("part")), Opt(over("for"))),
            seq(family("clean"), Ref("target"),
                Opt(seq(Opt("and"), "no", alt(words_of("reverb"), words_of("bleed"))))),
            seq(family("dereverb", "refine_off"), Ref("target")),
            family(*STANDALONE),
        ),
        "clause": alt(
            seq(Ref("action"), Opt(Ref("timing"))),
            words_of("special"),
            seq(verb_words("tempo"), Opt("to"), Ref("number"), Opt(words_of("unit", "bpm"))),
            Alt(speakable(CANCEL)),
        ),
        "command": seq(Ref("clause"), Opt(seq(words_of("sep"), Ref("clause"),
                                              Opt(seq(words_of("sep"), Ref("clause"))))),
                       Opt("please")),
    }
    if wake_word.strip():
        wake = speakable((wake_word,))
        if not wake:
            raise ValueError(f"[voice] wake_word {wake_word!r}: the dictionary cannot say it")
        rules["utterance"] = rules.pop("command")
        rules["command"] = alt(seq(Opt(wake[0]), Ref("utterance")), wake[0])
    rules["sentence"] = rules.pop("command")
    rules["garbage"] = Alt(tuple(GARBAGE))
    rules["command"] = alt(seq(Repeat(Ref("garbage")), Ref("sentence"), Repeat(Ref("garbage"))), GARBAGE_LOOP)
    grammar = Grammar(rules, tuple(dict.fromkeys(missing)))
    unknown = sorted(w for w in grammar.words if not knows(w) and w not in SPELLED and w not in GARBAGE)
    if unknown:
        raise ValueError(f"the dictionary cannot say the grammar's own words {', '.join(unknown)}")
    grammar.added = {w: SPELLED[w] for w in grammar.words if w in SPELLED and not knows(w)} | GARBAGE
    return grammar


def _variant(phrase: str, kept: str) -> bool:
    """Whether `phrase` is an inflection ("fades in" of "fade in") or an extension ("cut out" of
    "cut") of a phrase already kept: commands are short imperatives."""
    if phrase.startswith(kept + " "):
        return True
    a, b = phrase.split(), kept.split()
    return len(a) == len(b) and a != b and all(x == y or x in (y + "s", y + "d", y + "ed", y + "ing")
                                               for x, y in zip(a, b))


def _jsgf(node: Node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, Ref):
        return f"<{node.rule}>"
    if isinstance(node, Opt):
        return f"[{_jsgf(node.node)}]"
    if isinstance(node, Repeat):
        return f"({_jsgf(node.node)})*"
    if isinstance(node, Seq):
        return " ".join(_jsgf(p) for p in node.parts)
    return "(" + " | ".join(_jsgf(o) for o in node.options) + ")"


def _regex(node: Node, rules: dict[str, Node]) -> str:
    """Each word is matched with its trailing space, so optional parts compose without fuss."""
    if isinstance(node, str):
        return "".join(re.escape(w) + " " for w in node.split())
    if isinstance(node, Ref):
        return _regex(rules[node.rule], rules)
    if isinstance(node, (Opt, Repeat)):
        return f"(?:{_regex(node.node, rules)}){'?' if isinstance(node, Opt) else '*'}"
    if isinstance(node, Seq):
        return "".join(_regex(p, rules) for p in node.parts)
    return "(?:" + "|".join(_regex(o, rules) for o in node.options) + ")"


def _words(node: Node) -> Iterable[str]:
    if isinstance(node, str):
        yield from node.split()
    elif isinstance(node, (Opt, Repeat)):
        yield from _words(node.node)
    elif isinstance(node, Seq):
        for p in node.parts:
            yield from _words(p)
    elif isinstance(node, Alt):
        for o in node.options:
            yield from _words(o)

