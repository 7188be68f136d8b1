"""Map vocabulary stems onto the stems the loaded model actually has.

Runs on the control side, before a Command reaches the RT queue, so the performer hears why a command
was changed or refused ("this model has no piano") and the mixer only ever sees its own stem names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from stemd.control.commands import ALL, Command, CommandError

ACCOMPANIMENT = "accompaniment"


@dataclass(frozen=True)
class Routed:
    command: Command
    note: str | None = None  # said to the performer when the command was re-aimed


def route(command: Command, model_stems: Sequence[str], model_name: str = "the model") -> Routed:
    """Return the command aimed at one of `model_stems`, or raise CommandError saying why not.

    A 2-stem model (vocals + accompaniment) has no drums, bass or other: those commands act on the
    accompaniment, its complement of the vocals, and the note says so.
    """
    stem = command.stem
    if stem is None or stem == ALL or stem in model_stems:
        return Routed(command)
    if ACCOMPANIMENT in model_stems and stem != "vocals":
        if command.part is not None:
            raise CommandError(
                f"{model_name} has no drums stem, so the {command.part} cannot be isolated "
                f"(stems: {', '.join(model_stems)})"
            )
        return Routed(
            replace(command, stem=ACCOMPANIMENT),
            f"{model_name} has no separate {stem}; applied to the accompaniment (everything but vocals)",
        )
    raise CommandError(f"{model_name} has no {stem} stem (stems: {', '.join(model_stems)})")
