"""Timing words: "on the next bar", "on the one", "in 4 beats", "at the next phrase" -> a Command's `at`.

Read on the normalized words before numbers and the lexicon (tokenize calls `read_timing` at every
position), because "one" in "on the one" is the downbeat, not a number, and "4 beats" after "in" is
when the change lands, not a loop's or fade's length. A boundary needs its preposition ("on", "at",
"from", "by", "come", or "in"/"after" with a count): "loop the vocals for the next bar" stays a
length. "the one" / "the downbeat" / "the top of the bar" is the next bar line.
"""

from __future__ import annotations

from stemd.control.intent.numerals import read_number
from stemd.control.timing import MAX_COUNT, Timing

_AT = ("on", "at", "from", "by", "come", "with", "till", "until")
_COUNTING = ("in", "after", "within")
_ARTICLES = ("the", "a", "this", "that")
_NEXT = ("next", "very next", "following", "coming")
_UNIT_WORDS = {
    "beat": "beat", "beats": "beat", "bar": "bar", "bars": "bar", "measure": "bar", "measures": "bar",
    "phrase": "phrase", "phrases": "phrase", "downbeat": "bar", "one": "bar", "1": "bar",
    "bar line": "bar", "top of the bar": "bar",
}
_START_OF = ("start of the", "beginning of the", "top of the", "start of", "top of")
_COUNT_UNITS = ("beat", "bar", "phrase")
# Every word a timing phrase may use, for the voice grammar (IntentParser.vocabulary).
WORDS = tuple(sorted({w for group in (_AT, _COUNTING, _ARTICLES, _NEXT, tuple(_UNIT_WORDS), _START_OF,
                                       ("another", "time", "from now", "a couple of"))
                      for phrase in group for w in phrase.split() if w.isalpha()}))


def read_timing(words: list[str], i: int) -> tuple[str, int] | None:
    """(canonical `at`, index after the phrase) when a timing phrase starts at `words[i]`. After a
    fade verb "in 8 beats" is the fade's length ("fade the vocals in 8 beats"), not a wait."""
    word = words[i]
    if word in _AT:
        return _boundary(words, i + 1)
    if word in _COUNTING and not (word == "in" and _after_fade(words, i)):
        return _count(words, i + 1)
    return None


def _after_fade(words: list[str], i: int) -> bool:
    for word in reversed(words[:i]):
        if word == ",":
            return False
        if word in ("fade", "fades", "faded"):
            return True
    return False


def _boundary(words: list[str], j: int) -> tuple[str, int] | None:
    j = _skip(words, j, _ARTICLES)
    j = _skip(words, j, _START_OF)  # "at the start of the next bar"
    after_next = _skip(words, j, _NEXT)
    for length in (4, 2, 1):
        phrase = " ".join(words[after_next:after_next + length])
        unit = _UNIT_WORDS.get(phrase)
        if unit is None or len(words[after_next:after_next + length]) < length:
            continue
        if phrase == "beat" and after_next == j and j > 0 and words[j - 1] not in _ARTICLES:
            return None  # "on beat" alone is not a boundary someone says
        return str(Timing(1, unit)), after_next + length
    return None


def _count(words: list[str], j: int) -> tuple[str, int] | None:
    j = _skip(words, j, ("another", "the next"))
    couple = _skip(words, j, ("a couple of", "a couple", "couple of"))
    number = (2.0, couple) if couple != j else read_number(words, j)
    if number is None:
        if j < len(words) and words[j] in ("a", "one"):
            value, j = 1.0, j + 1
        else:
            return None
    else:
        value, j = number
    unit = _UNIT_WORDS.get(words[j]) if j < len(words) else None
    if unit not in _COUNT_UNITS or words[j] in ("one", "1", "downbeat"):
        return None
    if value != int(value) or not 1 <= value <= MAX_COUNT:
        return None
    end = _skip(words, j + 1, ("time", "from now"))  # "in four beats time"
    return str(Timing(int(value), unit)), end


def _skip(words: list[str], j: int, phrases: tuple[str, ...]) -> int:
    for phrase in phrases:
        n = len(phrase.split())
        if " ".join(words[j:j + n]) == phrase:
            return j + n
    return j
