"""Scoring a parser against eval_set.jsonl: the regression gate (tests) and the benchmark share it.

Each row: {"text", "expect": [canonical command dicts] or null (must be rejected), "category",
"layer": "grammar" (the grammar alone must get it) or "semantic" (needs the semantic layer)}, and
optionally "after": the sentence said just before, whose stems "it"/"them" in "text" refer to (parsed
by the same parser, outside the timing), and "split": "heldout" for rows kept out of tuning (every other
row is "dev"): the bench reports both splits and lists only the dev split's misses, so whoever tunes
the grammar sees the held-out score, not what it missed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from stemd.control.commands import Command, IntentRejected
from stemd.control.intent.context import referent_after

EVAL_SET = Path(__file__).with_name("eval_set.jsonl")


HELDOUT = "heldout"


def split_of(row: dict[str, Any]) -> str:
    return row.get("split", "dev")


def load_eval_set(path: Path = EVAL_SET) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:  # every expectation must itself be valid vocabulary
        for c in row["expect"] or []:
            Command.from_dict(c)
    return rows


@dataclass
class Score:
    rows: int = 0
    exact: int = 0
    should_reject: int = 0
    rejected: int = 0
    rejected_correctly: int = 0
    wrong_on_reject_set: list[str] = field(default_factory=list)
    misses: list[tuple[str, Any, Any]] = field(default_factory=list)
    times_ms: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.exact / self.rows if self.rows else float("nan")

    @property
    def reject_precision(self) -> float:
        return self.rejected_correctly / self.rejected if self.rejected else float("nan")

    @property
    def reject_recall(self) -> float:
        return self.rejected_correctly / self.should_reject if self.should_reject else float("nan")

    def summary(self) -> dict[str, Any]:
        t = np.asarray(self.times_ms) if self.times_ms else np.asarray([np.nan])
        return {
            "rows": self.rows, "exact_match": round(self.accuracy, 4),
            "reject_precision": round(self.reject_precision, 4), "reject_recall": round(self.reject_recall, 4),
            "wrong_actions_on_reject_set": len(self.wrong_on_reject_set),
            "parse_ms_median": round(float(np.median(t)), 4), "parse_ms_p95": round(float(np.percentile(t, 95)), 4),
        }


def evaluate(parse: Callable[..., list[Command]], rows: Sequence[dict[str, Any]]) -> Score:
    """`parse(text, referent=None)`: the grammar's parse or IntentParser.parse."""
    score = Score()
    for row in rows:
        referent = referent_after(parse(row["after"]), row["after"]) if row.get("after") else None
        start = time.perf_counter()
        try:
            got: list[dict] | None = [c.to_dict() for c in parse(row["text"], referent=referent)]
        except IntentRejected:
            got = None
        score.times_ms.append((time.perf_counter() - start) * 1e3)
        want = row["expect"]
        score.rows += 1
        score.should_reject += want is None
        score.rejected += got is None
        if got == want:
            score.exact += 1
            score.rejected_correctly += got is None
        else:
            score.misses.append((row["text"], want, got))
            if want is None:
                score.wrong_on_reject_set.append(row["text"])
    return score
