"""MIDI mappings: `[[midi.map]]` config entries and map files turned into validated Bindings.

A binding ties one control (note or CC number on a channel) to a Command, an intent text or a voice
action (push-to-talk), with a mode that says how presses and values become commands. Everything a
performer can get wrong is checked here, once, at config load, with a message that names the entry
and the key; nothing is checked again when the control moves.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from stemd.control.commands import ALL, Action, Command, CommandError, MAX_ABS_DB

TYPES = ("note", "cc")
MODES = ("toggle", "momentary", "trigger", "fader")
CURVES = ("db", "amplitude")
VOICE_ACTIONS = ("listen",)  # session.voice.listen(held): push-to-talk on a pad or foot switch
SILENCE_DB = -60.0
MAPS_DIR = Path(__file__).resolve().parent / "maps"

_KEYS = {"type", "channel", "number", "mode", "command", "intent", "voice", "curve", "min_db", "max_db",
         "soft_takeover", "led", "led_on", "led_off"}
_ACTS = ("command", "intent", "voice")


class MappingError(ValueError):
    """An invalid mapping entry; the message names the entry (and the file it came from)."""


@dataclass(frozen=True)
class Binding:
    """One control → one action. `command` is set for every mode (for faders a gain with db 0 whose
    `db` each value replaces); `intent` only for trigger bindings that speak text instead; `voice`
    only for momentary bindings that hold voice listening while the button is down."""

    type: str
    channel: int
    number: int
    mode: str
    command: Command | None = None
    intent: str | None = None
    voice: str | None = None
    curve: str = "db"
    min_db: float = SILENCE_DB
    max_db: float = 6.0
    soft_takeover: bool = True
    led: bool = False
    led_on: int = 127
    led_off: int = 0

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.type, self.channel, self.number)

    def describe(self) -> str:
        return f"{self.type} {self.number} on channel {self.channel}"

    # ---- fader law ------------------------------------------------------------------------------

    def value_to_db(self, value: int) -> float:
        """CC value → absolute gain in dB. 0 is always silence; 1..127 follow the curve."""
        if value <= 0:
            return SILENCE_DB
        x = value / 127.0
        if self.curve == "db":
            db = self.min_db + x * (self.max_db - self.min_db)
        else:
            db = self.max_db + 20.0 * math.log10(x)
        return max(SILENCE_DB, min(self.max_db, max(self.min_db, db)))

    def db_to_value(self, db: float) -> float:
        """Inverse of `value_to_db` as a fractional CC value: where the fader must be to match `db`."""
        if db <= SILENCE_DB:
            return 0.0
        db = min(max(db, self.min_db), self.max_db)
        if self.curve == "db":
            x = (db - self.min_db) / (self.max_db - self.min_db)
        else:
            x = 10.0 ** ((db - self.max_db) / 20.0)
        return x * 127.0

    def fader_command(self, value: int) -> Command:
        return replace(self.command, db=self.value_to_db(value), absolute=True)

    def to_entry(self) -> dict[str, Any]:
        """The config-entry form (what MIDI learn persists); defaults left out."""
        entry: dict[str, Any] = {"type": self.type, "channel": self.channel, "number": self.number,
                                 "mode": self.mode}
        if self.intent is not None:
            entry["intent"] = self.intent
        elif self.voice is not None:
            entry["voice"] = self.voice
        else:
            command = self.command.to_dict()
            if self.mode == "fader":
                command.pop("db", None)
                command.pop("absolute", None)
            entry["command"] = command
        for name in ("curve", "min_db", "max_db", "soft_takeover", "led", "led_on", "led_off"):
            value = getattr(self, name)
            if value != getattr(Binding, name):
                entry[name] = value
        return entry


# ---- what toggles and momentary buttons switch between -------------------------------------------

def opposite(command: Command) -> Command | None:
    """The command that undoes `command` (release of a momentary button, second press of a toggle),
    waiting for the same boundary when `command` has an `at` (a quantized pad switches back on the
    beat too)."""
    undo = _undo(command)
    return undo.timed(command.at) if undo is not None and command.at is not None else undo


def _undo(command: Command) -> Command | None:
    a = command.action
    if a in (Action.MUTE, Action.UNMUTE):
        return Command(Action.UNMUTE if a is Action.MUTE else Action.MUTE, stem=command.stem)
    if a is Action.SOLO and command.stem != ALL:
        return Command(Action.UNSOLO, stem=command.stem)
    if a is Action.UNSOLO and command.stem not in (None, ALL):
        return Command(Action.SOLO, stem=command.stem)
    if a is Action.FADE:
        return replace(command, direction="in" if command.direction == "out" else "out")
    if a is Action.LOOP:
        return Command(Action.UNLOOP, stem=command.stem, part=command.part)
    if a is Action.UNLOOP:
        return Command(Action.LOOP, stem=command.stem, part=command.part)
    if a is Action.REFINE and command.mode != "off":
        return Command(Action.REFINE, stem=command.stem, mode="off")
    return None


# ---- validation -----------------------------------------------------------------------------------

def _int(entry: dict[str, Any], name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = entry.get(name, default)
    if value is None:
        raise MappingError(f"missing '{name}' ({lo}-{hi})")
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise MappingError(f"'{name}' must be an integer {lo}-{hi}, got {value!r}")
    return value


def _db(entry: dict[str, Any], name: str, default: float, hi: float) -> float:
    value = entry.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not SILENCE_DB <= value <= hi:
        raise MappingError(f"'{name}' must be a number from {SILENCE_DB:g} to {hi:g} dB, got {value!r}")
    return float(value)


def _command(entry: dict[str, Any], mode: str) -> Command:
    data = entry["command"]
    if isinstance(data, str):  # JSON text, as `stemd parse --json` prints it
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            raise MappingError(f"'command' must be a command table; for words use intent = {data!r}") from None
    if not isinstance(data, dict):
        raise MappingError(f"'command' must be a table like {{action = \"mute\", stem = \"bass\"}}, got {data!r}")
    if mode == "fader":
        if data.get("action") != "gain" or "db" in data:
            raise MappingError("a fader's command must be {action = \"gain\", stem = \"...\"} without db "
                               "(the fader sets it)")
        data = dict(data, db=0.0, absolute=True)
    try:
        return Command.from_dict(data)
    except CommandError as exc:
        raise MappingError(f"'command': {exc}") from None


def binding_from_entry(entry: dict[str, Any]) -> Binding:
    """Validate one `[[midi.map]]` entry; MappingError says what is wrong with it."""
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise MappingError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    kind = entry.get("type")
    if kind not in TYPES:
        raise MappingError(f"'type' must be \"note\" or \"cc\", got {kind!r}")
    channel = _int(entry, "channel", 1, 16)
    number = _int(entry, "number", 0, 127)
    mode = entry.get("mode", "trigger" if "intent" in entry else "momentary" if "voice" in entry else "toggle")
    if mode not in MODES:
        raise MappingError(f"'mode' must be one of {', '.join(MODES)}, got {mode!r}")
    if sum(act in entry for act in _ACTS) != 1:
        raise MappingError("give exactly one of 'command' (a command table), 'intent' (text) or "
                           "'voice' (\"listen\": push-to-talk)")
    fields: dict[str, Any] = {}
    if "voice" in entry:
        if entry["voice"] not in VOICE_ACTIONS:
            raise MappingError(f"'voice' must be one of {', '.join(VOICE_ACTIONS)}, got {entry['voice']!r}")
        if mode != "momentary":
            raise MappingError(f"voice = \"listen\" listens while the button is held, so mode must be "
                               f"\"momentary\", not {mode!r}")
        if entry.get("led"):
            raise MappingError("'led' shows mixer state; a push-to-talk button has none (its pad lights itself)")
        fields["voice"] = entry["voice"]
    elif "intent" in entry:
        text = entry["intent"]
        if not isinstance(text, str) or not text.strip():
            raise MappingError(f"'intent' must be non-empty text, got {text!r}")
        if mode != "trigger":
            raise MappingError(f"intent text has no opposite to switch back to, so mode must be \"trigger\", "
                               f"not {mode!r}; use a command for {mode}")
        fields["intent"] = text.strip()
    else:
        command = _command(entry, mode)
        if mode in ("toggle", "momentary") and opposite(command) is None:
            raise MappingError(f"mode {mode!r} needs a command with an opposite (mute, unmute, solo, unsolo, "
                               f"fade, loop, unloop, refine); {command.action.value} has none: use \"trigger\"")
        fields["command"] = command
    if mode == "fader":
        if kind != "cc":
            raise MappingError("a fader must be a cc (a note has no position)")
        curve = entry.get("curve", "db")
        if curve not in CURVES:
            raise MappingError(f"'curve' must be one of {', '.join(CURVES)}, got {curve!r}")
        min_db = _db(entry, "min_db", SILENCE_DB, MAX_ABS_DB)
        max_db = _db(entry, "max_db", 6.0, 24.0)
        if min_db >= max_db:
            raise MappingError(f"'min_db' ({min_db:g}) must be below 'max_db' ({max_db:g})")
        fields.update(curve=curve, min_db=min_db, max_db=max_db)
    else:
        stray = sorted({"curve", "min_db", "max_db", "soft_takeover"} & set(entry))
        if stray:
            raise MappingError(f"{', '.join(stray)} only apply to mode = \"fader\"")
    for flag in ("soft_takeover", "led"):
        if flag in entry:
            if not isinstance(entry[flag], bool):
                raise MappingError(f"'{flag}' must be true or false, got {entry[flag]!r}")
            fields[flag] = entry[flag]
    if fields.get("led") and mode == "trigger":
        raise MappingError("'led' shows a state; a trigger has none (use toggle or momentary)")
    fields["led_on"] = _int(entry, "led_on", 0, 127, 127)
    fields["led_off"] = _int(entry, "led_off", 0, 127, 0)
    return Binding(kind, channel, number, mode, **fields)


def check_entry(entry: dict[str, Any]) -> str | None:
    """Config-schema validator for one `[[midi.map]]` entry: the problem, or None."""
    try:
        binding_from_entry(entry)
    except MappingError as exc:
        return str(exc)
    return None


def bindings_from_entries(entries: Iterable[dict[str, Any]], origin: str) -> list[Binding]:
    """All entries of one origin (config or map file), refusing two entries for the same control."""
    out: list[Binding] = []
    seen: dict[tuple[str, int, int], int] = {}
    for i, entry in enumerate(entries, 1):
        try:
            binding = binding_from_entry(entry)
        except MappingError as exc:
            raise MappingError(f"{origin}: [[midi.map]] entry {i}: {exc}") from None
        if binding.key in seen:
            raise MappingError(f"{origin}: [[midi.map]] entries {seen[binding.key]} and {i} both map "
                               f"{binding.describe()}")
        seen[binding.key] = i
        out.append(binding)
    return out


def map_file_path(name: str) -> Path:
    """A shipped map by name (`generic-8x4`) or a path to a user's file."""
    shipped = MAPS_DIR / f"{name}.toml"
    return shipped if "/" not in name and shipped.is_file() else Path(name).expanduser()


def load_map_file(name: str) -> list[Binding]:
    path = map_file_path(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        shipped = ", ".join(sorted(p.stem for p in MAPS_DIR.glob("*.toml")))
        raise MappingError(f"{name}: cannot read ({exc.strerror}); shipped maps: {shipped}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    entries = data.get("midi", {}).get("map")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MappingError(f"{path}: expected [[midi.map]] entries")
    return bindings_from_entries(entries, str(path))


def check_map_files(names: list[str]) -> str | None:
    """Config-schema validator for `midi.map_files`."""
    for name in names:
        try:
            load_map_file(name)
        except MappingError as exc:
            return str(exc)
    return None


def merge(*layers: Iterable[Binding]) -> dict[tuple[str, int, int], Binding]:
    """Later layers win per control: map files, then config entries, then MIDI learn."""
    bindings: dict[tuple[str, int, int], Binding] = {}
    for layer in layers:
        for binding in layer:
            bindings[binding.key] = binding
    return bindings


MIDI_MAP_DOC = """\
Mappings: one [[midi.map]] table per control. They win over map_files; MIDI learn wins over both.
  type = "note" | "cc", channel = 1-16, number = 0-127
  mode = "toggle" (press: on, press again: off; the default) | "momentary" (on while held)
       | "trigger" (each press; the default for intent) | "fader" (cc value -> gain in dB)
  command = a command table of the vocabulary, or intent = "text" (trigger only), or
          voice = "listen": push-to-talk, voice control listens while the button is held
          (momentary only, the default for voice)
  faders: curve = "db" (even dB steps) | "amplitude" (even gain steps), min_db = -60.0,
          max_db = 6.0 (value 0 is always silence), soft_takeover = true (the fader acts only
          once it reaches the current level, so moving it never jumps the gain)
  led = true sends state back on midi_out: the note/cc with led_on = 127 or led_off = 0
          (buttons), the position (motor faders)
  quantize: a command with at = "bar" (or "beat", "phrase", "2 bars" ...) waits for that boundary
          whatever [transport] quantize says; without it, buttons follow [transport] quantize
Example:
[[midi.map]]
type = "note"
channel = 1
number = 36
mode = "toggle"
command = {action = "mute", stem = "vocals"}
led = true

[[midi.map]]
type = "cc"
channel = 1
number = 7
mode = "fader"
command = {action = "gain", stem = "bass"}

[[midi.map]]
type = "note"
channel = 1
number = 40
intent = "loop the snare for 2 beats"
"""
