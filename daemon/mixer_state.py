"""Mixer state saved to the state folder and restored at the next start.

The state is written as the Commands that rebuild it (through the same `Mixer.apply` every control
source uses), so a restored mixer cannot hold a state no command could have produced, and a saved
stem the new model lacks is skipped instead of failing the start. The file is replaced atomically
(write, fsync, rename), so a crash mid-save leaves the previous state.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from stemd.control.commands import ALL, Action, Command, CommandError
from stemd.daemon.mixer import Mixer

log = logging.getLogger(__name__)

FILE = "mixer.json"
HAND_SET_TEMPO = ("osc", "tap", "command")


def state_commands(snapshot: dict[str, Any]) -> list[Command]:
    """Commands that take a reset mixer to `snapshot` (a `Mixer.snapshot()`)."""
    commands = [Command(Action.GAIN, stem=ALL, db=snapshot["master_db"], absolute=True)]
    if snapshot.get("transport", {}).get("source") in HAND_SET_TEMPO:
        # Only a tempo the performer set survives a restart: a restored tempo counts as set by
        # hand, which would stop the drums' estimate (and outrank nothing live) for the whole show.
        commands.insert(0, Command(Action.TEMPO, bpm=snapshot["bpm"]))
    for stem, s in snapshot["stems"].items():
        commands.append(Command(Action.GAIN, stem=stem, db=s["gain_db"], absolute=True))
        if s["soloed"]:
            commands.append(Command(Action.SOLO, stem=stem))
        if s["muted"]:
            commands.append(Command(Action.MUTE, stem=stem))
    return commands


def save(state_dir: Path, mixer: Mixer) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / FILE
    tmp = target.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(mixer.snapshot(), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)


def restore(state_dir: Path, mixer: Mixer) -> int:
    """Apply the saved state (before the RT thread runs); returns how many commands applied."""
    path = state_dir / FILE
    try:
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        commands = state_commands(snapshot)
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError, CommandError) as exc:
        log.warning("ignoring unreadable mixer state %s: %s", path, exc)
        return 0
    applied = 0
    for command in commands:
        if command.stem in (None, ALL) or command.stem in mixer.index:
            mixer.apply(command)
            applied += 1
    return applied
