"""The command vocabulary (docs/architecture.md) as typed, validated objects with a canonical JSON form.

Every control source (OSC text, direct OSC, MIDI, voice) ends in a list of `Command`s, and the mixer
consumes nothing else, so validation lives here once: a Command that exists is a Command the mixer can
apply without checking anything on the real-time thread.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Iterable

from stemd.control.timing import Timing, TimingError, canonical_timing, parse_timing


class CommandError(ValueError):
    """A command (or its JSON) that breaks the vocabulary; the message is meant for the performer."""


class IntentRejected(CommandError):
    """A text that maps to no command with confidence; the message is the reason given to the sender."""


class Action(str, Enum):
    MUTE = "mute"
    UNMUTE = "unmute"
    SOLO = "solo"
    UNSOLO = "unsolo"
    GAIN = "gain"
    FADE = "fade"
    LOOP = "loop"
    UNLOOP = "unloop"
    REFINE = "refine"
    RESET = "reset"
    TEMPO = "tempo"
    CANCEL = "cancel"


ALL = "all"
STEMS_4 = ("vocals", "drums", "bass", "other")
STEMS_6 = STEMS_4 + ("guitar", "piano")
# `accompaniment` is the second stem of 2-stem models (Spleeter); the stem map treats it as the
# complement of vocals.
KNOWN_STEMS = STEMS_6 + ("accompaniment",)
DRUM_PARTS = ("kick", "snare", "hats")
# "clean+dereverb" stacks both on one stem (Wiener re-masking, then WPE on the cleaned stem).
REFINE_MODES = ("clean", "dereverb", "clean+dereverb", "off")
DIRECTIONS = ("in", "out")

MAX_ABS_DB = 60.0
MAX_BEATS = 256.0
MIN_BPM, MAX_BPM = 20.0, 400.0

# Field order per action is the canonical JSON key order; True marks a required field.
_SCHEMA: dict[Action, dict[str, bool]] = {
    Action.MUTE: {"stem": True},
    Action.UNMUTE: {"stem": True},
    Action.SOLO: {"stem": True},
    Action.UNSOLO: {"stem": False},
    Action.GAIN: {"stem": True, "db": True, "absolute": False},
    Action.FADE: {"stem": True, "direction": True, "beats": False},
    Action.LOOP: {"stem": True, "part": False, "beats": False},
    Action.UNLOOP: {"stem": True, "part": False},
    Action.REFINE: {"stem": True, "mode": True},
    Action.RESET: {},
    Action.TEMPO: {"bpm": True},
    Action.CANCEL: {},  # drops every command still waiting for its boundary
}
# Mixer actions that may wait for a musical boundary (control/timing.py): `at` comes last in their JSON.
TIMED_ACTIONS = (Action.MUTE, Action.UNMUTE, Action.SOLO, Action.UNSOLO, Action.GAIN, Action.FADE,
                 Action.LOOP, Action.UNLOOP, Action.RESET)
for _action in TIMED_ACTIONS:
    _SCHEMA[_action]["at"] = False


@dataclass(frozen=True, slots=True)
class Command:
    """One performer instruction.

    `gain` is relative (signed dB) unless `absolute` is true; absolute gain exists for faders
    (OSC `/gain`, `/gain_db`, MIDI fader mappings), which set a level rather than nudge it.
    """

    action: Action
    stem: str | None = None
    db: float | None = None
    absolute: bool | None = None
    direction: str | None = None
    beats: float | None = None
    part: str | None = None
    mode: str | None = None
    bpm: float | None = None
    at: str | None = None  # the boundary it waits for ("bar", "4 beats"); None = at once

    def __post_init__(self) -> None:
        try:
            action = Action(self.action)
        except ValueError:
            raise CommandError(
                f"unknown action {self.action!r}; known: {', '.join(a.value for a in Action)}"
            ) from None
        object.__setattr__(self, "action", action)
        schema = _SCHEMA[action]
        for f in fields(self):
            if f.name == "action":
                continue
            value = getattr(self, f.name)
            if value is None:
                if schema.get(f.name):
                    raise CommandError(f"{action.value}: missing '{f.name}'")
            elif f.name not in schema:
                raise CommandError(f"{action.value}: takes no '{f.name}'")
        self._check_values()

    def _check_values(self) -> None:
        a = self.action.value
        if self.stem is not None:
            if not isinstance(self.stem, str) or self.stem not in KNOWN_STEMS + (ALL,):
                raise CommandError(
                    f"{a}: unknown stem {self.stem!r}; known: {', '.join(KNOWN_STEMS + (ALL,))}"
                )
        if self.db is not None:
            db = _number(a, "db", self.db)
            if abs(db) > MAX_ABS_DB:
                raise CommandError(f"{a}: db {db:g} is outside ±{MAX_ABS_DB:g} dB")
            object.__setattr__(self, "db", db)
        if self.absolute is not None and not isinstance(self.absolute, bool):
            raise CommandError(f"{a}: 'absolute' must be true or false")
        if self.beats is not None:
            beats = _number(a, "beats", self.beats)
            if not 0 < beats <= MAX_BEATS:
                raise CommandError(f"{a}: beats must be > 0 and ≤ {MAX_BEATS:g}, got {beats:g}")
            object.__setattr__(self, "beats", beats)
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise CommandError(f"{a}: direction must be 'in' or 'out', got {self.direction!r}")
        if self.part is not None:
            if self.part not in DRUM_PARTS:
                raise CommandError(f"{a}: unknown part {self.part!r}; known: {', '.join(DRUM_PARTS)}")
            if self.stem != "drums":
                raise CommandError(f"{a}: part {self.part!r} exists only on the drums stem")
        if self.mode is not None and self.mode not in REFINE_MODES:
            raise CommandError(f"{a}: mode must be one of {', '.join(REFINE_MODES)}, got {self.mode!r}")
        if self.bpm is not None:
            bpm = _number(a, "bpm", self.bpm)
            if not MIN_BPM <= bpm <= MAX_BPM:
                raise CommandError(f"{a}: bpm must be between {MIN_BPM:g} and {MAX_BPM:g}, got {bpm:g}")
            object.__setattr__(self, "bpm", bpm)
        if self.at is not None:
            try:
                object.__setattr__(self, "at", canonical_timing(self.at))
            except TimingError as exc:
                raise CommandError(f"{a}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Canonical mapping: `action` first, then the action's fields in schema order, unset omitted."""
        out: dict[str, Any] = {"action": self.action.value}
        for name in _SCHEMA[self.action]:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @property
    def timing(self) -> Timing | None:
        return parse_timing(self.at) if self.at is not None else None

    def timed(self, at: str | None) -> "Command":
        """This command waiting for `at` (None: at once); actions that cannot wait stay as they are."""
        if self.action not in TIMED_ACTIONS:
            return self
        return Command.from_dict({**self.to_dict(), "at": at}) if at != self.at else self

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> "Command":
        if not isinstance(data, dict):
            raise CommandError(f"a command must be a JSON object, got {type(data).__name__}")
        if "action" not in data:
            raise CommandError("a command needs an 'action'")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CommandError(f"unknown field(s) {', '.join(map(repr, unknown))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Command":
        return cls.from_dict(_loads(text))

    def __str__(self) -> str:
        return self.to_json()


def _number(action: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandError(f"{action}: '{name}' must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise CommandError(f"{action}: '{name}' must be finite, got {value!r}")
    return value


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"invalid JSON: {exc}") from None


def commands_to_json(commands: Iterable[Command]) -> str:
    """Canonical JSON of a command list, the payload of `/stemd/ok` and `stemd parse --json`."""
    return "[" + ",".join(c.to_json() for c in commands) + "]"


def commands_from_json(text: str) -> list[Command]:
    data = _loads(text)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise CommandError("expected a command object or a list of them")
    return [Command.from_dict(item) for item in data]
