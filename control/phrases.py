"""The performer's phrase buttons: short sentences that a tap sends to the intent parser.

One list serves the web remote (`[web] phrases`) and the generated TouchOSC layout, so a tablet and a
phone offer the same shortcuts. The file is plain text, one sentence a line, `#` for comments.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_PHRASES = Path(__file__).with_name("phrases.txt")
MAX_PHRASES = 24  # the TouchOSC grid and a phone screen both run out of room beyond this
MAX_LENGTH = 80  # characters: a phrase is a button label, not a paragraph


class PhraseError(ValueError):
    """A phrase file that cannot become buttons; the message names the file and line."""


def load_phrases(path: str | Path | None = None) -> list[str]:
    """The sentences in `path` (the shipped list when None or empty), checked for length and count."""
    source = Path(path).expanduser() if path else DEFAULT_PHRASES
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PhraseError(f"{source}: cannot read: {exc.strerror}") from None
    phrases = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) > MAX_LENGTH:
            raise PhraseError(f"{source}:{number}: {len(text)} characters; a phrase has at most {MAX_LENGTH}")
        phrases.append(text)
    if len(phrases) > MAX_PHRASES:
        raise PhraseError(f"{source}: {len(phrases)} phrases; at most {MAX_PHRASES} fit")
    return phrases
