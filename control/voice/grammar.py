"""The Vosk grammar: recognition restricted to the words (or phrases) commands are made of.

A Vosk grammar is a loop over its entries, so any sound is forced onto them; `[unk]` gives
out-of-vocabulary speech somewhere else to go, and models without it (the Korean demo model) rely on
the confidence filter and the parser's reject path alone. Entries the model cannot spell are
dropped and listed, because Vosk would drop them silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

UNK = "[unk]"


@dataclass(frozen=True)
class Grammar:
    entries: tuple[str, ...]
    missing: tuple[str, ...]  # entries with a word the model does not know
    has_unk: bool

    def to_json(self) -> str:
        return json.dumps(list(self.entries) + ([UNK] if self.has_unk else []), ensure_ascii=False)


def knows(model: Any, word: str) -> bool:
    return model.vosk_model_find_word(word) >= 0


def build_grammar(entries: Iterable[str], model: Any) -> Grammar:
    """Grammar of `entries` (words or whole phrases, lowercased, deduplicated) that `model` can spell."""
    kept: list[str] = []
    missing: list[str] = []
    for entry in dict.fromkeys(" ".join(e.lower().split()) for e in entries):
        if not entry:
            continue
        (kept if all(knows(model, w) for w in entry.split()) else missing).append(entry)
    if not kept:
        raise ValueError(f"the model knows none of the command words ({', '.join(missing[:10])} ...)")
    return Grammar(tuple(kept), tuple(missing), knows(model, UNK))
