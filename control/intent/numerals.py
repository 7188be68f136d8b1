"""Numbers in digits or words, as people say them to a mixer: "3", "-6", "one twenty eight",
"a hundred and twenty", "two and a half", "minus six", "three point five".

Runs before clause splitting, because "and" inside "a hundred and twenty" or "two and a half" is part
of the number, not a clause separator.
"""

from __future__ import annotations

import re

UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
}
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}
SIGNS = {"minus": -1.0, "negative": -1.0, "plus": 1.0, "positive": 1.0}
WORDS = tuple(UNITS) + tuple(TEENS) + tuple(TENS) + ("hundred", "half", "point", "quarter") + tuple(SIGNS)

_DIGITS = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _below_hundred(words: list[str], i: int) -> tuple[int, int] | None:
    """Parse 0..99 at words[i]; return (value, next index) or None."""
    w = words[i] if i < len(words) else ""
    if w in TEENS:
        return TEENS[w], i + 1
    if w in TENS:
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if nxt in UNITS and UNITS[nxt] > 0:
            return TENS[w] + UNITS[nxt], i + 2
        return TENS[w], i + 1
    if w in UNITS and w != "oh":
        return UNITS[w], i + 1
    return None


def _integer(words: list[str], i: int) -> tuple[int, int] | None:
    """Integers up to 999, including "a hundred and five" and the DJ's "one twenty eight"."""
    first = words[i] if i < len(words) else ""
    if first in ("a", "one") and i + 1 < len(words) and words[i + 1] == "hundred":
        head, j = 1, i + 1
    else:
        got = _below_hundred(words, i)
        if got is None:
            return None
        head, j = got
        if 1 <= head <= 9 and j < len(words) and words[j] in TENS | TEENS:
            rest = _below_hundred(words, j)
            if rest is not None:
                return head * 100 + rest[0], rest[1]
    if j < len(words) and words[j] == "hundred":
        j += 1
        k = j + 1 if j < len(words) and words[j] == "and" else j
        rest = _below_hundred(words, k)
        if rest is not None:
            return head * 100 + rest[0], rest[1]
        return head * 100, j
    return head, j


def _fraction(words: list[str], i: int) -> tuple[float, int]:
    """Trailing "point five" / "and a half" / "and a quarter"; (0, i) when none."""
    if i + 1 < len(words) and words[i] == "point":
        digits = []
        j = i + 1
        while j < len(words) and words[j] in UNITS:
            digits.append(str(UNITS[words[j]]))
            j += 1
        if digits:
            return float("0." + "".join(digits)), j
    if words[i:i + 3] in (["and", "a", "half"], ["and", "a", "quarter"]):
        return (0.5 if words[i + 2] == "half" else 0.25), i + 3
    return 0.0, i


def read_number(words: list[str], i: int) -> tuple[float, int] | None:
    """The number starting at words[i] (sign included) as (value, next index), or None."""
    sign = 1.0
    j = i
    if j < len(words) and words[j] in SIGNS and j + 1 < len(words):
        sign, j = SIGNS[words[j]], j + 1
    w = words[j] if j < len(words) else ""
    if _DIGITS.fullmatch(w):
        value, k = float(w), j + 1
    elif w == "half":
        value, k = 0.5, j + 1
    elif w in ("a", "one") and words[j + 1:j + 2] == ["half"]:
        value, k = 0.5, j + 2
    elif w in ("a", "one") and words[j + 1:j + 2] == ["quarter"]:
        value, k = 0.25, j + 2
    else:
        got = _integer(words, j)
        if got is None:
            return None
        value, k = float(got[0]), got[1]
    frac, k = _fraction(words, k)
    return sign * (value + frac), k
