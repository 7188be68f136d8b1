"""When a command waits for a musical boundary: the `at` field of a Command ("bar", "4 beats", ...).

A DJ drops the vocals *on the one*, not 37 ms after saying so. `at` names the boundary the change
lands on, counted on the beat clock's grid as the performer hears it (the mixer's output timeline,
latency L included): "beat", "bar" and "phrase" are the next such boundary; "4 beats", "2 bars" are
the 4th beat onset (2nd bar line) from now. A phrase is `phrase_bars` bars (4 unless configured),
counted from the grid's downbeat 0. The canonical form is the unit alone for one, else
"<count> <unit>s", so a Command's JSON has one spelling per timing.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

UNITS = ("beat", "bar", "phrase")
QUANTIZE_OFF = "off"
MAX_COUNT = 64
_FORM = re.compile(r"^\s*(?:(\d+)\s+)?(beat|bar|phrase)s?\s*$")


class TimingError(ValueError):
    """An `at` value outside the vocabulary; the message is meant for the performer."""


class Timing(NamedTuple):
    count: int
    unit: str

    def __str__(self) -> str:
        return self.unit if self.count == 1 else f"{self.count} {self.unit}s"

    def beats(self, beats_per_bar: int, phrase_bars: int) -> int:
        """Length of one unit in beats (called on the RT thread: no container is built)."""
        if self.unit == "beat":
            return 1
        return beats_per_bar if self.unit == "bar" else beats_per_bar * phrase_bars


def _form_error(text: object) -> TimingError:
    return TimingError(f"'at' must be beat, bar, phrase or '<n> beats|bars|phrases', got {text!r}")


def parse_timing(text: str) -> Timing:
    """"bar", "2 bars", "4 beats", "phrase" -> Timing; anything else raises TimingError."""
    if not isinstance(text, str):
        raise _form_error(text)
    return _parse(text)


@lru_cache(maxsize=256)
def _parse(text: str) -> Timing:
    """Cached: the mixer reads a timed Command's Timing on the RT thread, where it must be a lookup,
    not a regex parse."""
    match = _FORM.match(text)
    if match is None:
        raise _form_error(text)
    count = int(match.group(1) or 1)
    if not 1 <= count <= MAX_COUNT:
        raise TimingError(f"'at' counts 1..{MAX_COUNT} {match.group(2)}s, got {count}")
    return Timing(count, match.group(2))


def canonical_timing(text: str) -> str:
    """The one spelling of a timing; parsed here, on the control thread, so the RT side's
    `parse_timing(canonical)` finds it in the cache."""
    canonical = str(parse_timing(text))
    parse_timing(canonical)
    return canonical


def check_quantize(value: str) -> str | None:
    """Config check for a launch-quantize key: "off" or a timing."""
    if value == QUANTIZE_OFF:
        return None
    try:
        parse_timing(value)
    except TimingError as exc:
        return f"{exc} (or 'off')"
    return None

