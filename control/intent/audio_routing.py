"""Audio-aware routing: which of the model's stems holds "the piano" right now?

An instrument the separation model has no stem for ("mute the piano" on a 4-stem model, "loop the
strings") is looked for in the stems' recent audio: CLAP embeds the last few seconds of every stem
that is not silent and the text "the sound of a piano"; the stem whose audio is closest wins if it
clears the threshold and leads the runner-up by the margin, otherwise the command is rejected with
the scores (a performer hears "not sure which stem has the piano", never a wrong mute).

The thresholds are set for LAION CLAP checkpoints (matching text-audio pairs score roughly 0.2-0.5,
unrelated ones near 0); they cannot be calibrated in CI, which has no CLAP weights.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from stemd.control.commands import IntentRejected

ROUTE_THRESHOLD = 0.15
ROUTE_MARGIN = 0.02
SILENCE_DBFS = -50.0
WINDOW_S = 5.0

AudioProvider = Callable[[], tuple[dict[str, np.ndarray], int]]


def prompt(instrument: str) -> str:
    """The caption form LAION CLAP was trained on."""
    plural = instrument.endswith("s") and instrument != "bass"
    return f"the sound of {'' if plural else 'an ' if instrument[0] in 'aeiou' else 'a '}{instrument}"


class AudioRouter:
    def __init__(
        self,
        clap,
        provider: AudioProvider,
        threshold: float = ROUTE_THRESHOLD,
        margin: float = ROUTE_MARGIN,
        window_s: float = WINDOW_S,
    ) -> None:
        self.clap = clap
        self.provider = provider
        self.threshold = threshold
        self.margin = margin
        self.window_s = window_s
        self.last_scores: dict[str, float] = {}

    def route(self, instrument: str, stems: Sequence[str]) -> str:
        audio, rate = self.provider()
        n = int(self.window_s * rate)
        clips: dict[str, np.ndarray] = {}
        for stem in stems:
            if stem not in audio:
                continue
            mono = np.asarray(audio[stem], dtype=np.float32)
            mono = mono.mean(axis=0) if mono.ndim == 2 else mono
            mono = mono[-n:]
            if mono.size and 20 * np.log10(np.sqrt(np.mean(mono ** 2)) + 1e-12) > SILENCE_DBFS:
                clips[stem] = mono
        if not clips:
            raise IntentRejected(f"cannot tell which stem has the {instrument}: no stem is playing")
        text = self.clap.embed_text([prompt(instrument)])[0]
        sims = self.clap.embed_audio(list(clips.values()), rate) @ text
        self.last_scores = {stem: float(s) for stem, s in zip(clips, sims)}
        ranked = sorted(self.last_scores.items(), key=lambda kv: -kv[1])
        best, score = ranked[0]
        runner = ranked[1][1] if len(ranked) > 1 else -1.0
        if score < self.threshold or score - runner < self.margin:
            scores = ", ".join(f"{s} {v:.2f}" for s, v in ranked)
            raise IntentRejected(f"not sure which stem has the {instrument} (CLAP scores: {scores})")
        return best
