"""The web remote's JSON messages: what a page may send, what it is told, and the state it shows.

A page sends one JSON object per WebSocket text message, with an optional `id` echoed in the reply:

- `{"type": "intent", "text": "drop the vocals"}`: a sentence for the intent parser (typed or spoken);
- `{"type": "command", "command": {...} | [...]}`: Commands as `stemd send --json` takes them (mute,
  solo, loop, refine, tempo, reset, ...), applied all or none;
- `{"type": "fader", "stem": "vocals", "position": 0.6}`: a fader on the OSC `/gain` curve
  (`control/osc/fader.py`: 0.75 = 0 dB), so a page and a TouchOSC fader at the same travel agree;
- `{"type": "tap"}`: one tap-tempo tap.

It is told `hello` once (stems, phrases, the fader's top), then `state` whenever the state changes,
`levels` at `[web] meter_hz`, `applied` with the `entries` (the log) of every batch any source applied
since the last push (at most 20 pushes a second, each with the newest 20 and a `skipped` count, so a
busy room costs each page one message, not one per fader move), and `reply`
for each message it sent: `{"type": "reply", "id": ..., "ok": true, "commands": [...], "notes": [...]}`
or `{"ok": false, "error": "..."}`. Anything that is not a JSON object is malformed and closes the
socket (the server counts it); a well-formed message that asks for something impossible is answered
with the reason and the socket stays open.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from stemd.control.commands import ALL, Command, CommandError
from stemd.control.osc.fader import db_to_position, position_to_db
from stemd.daemon.session import Applied

MAX_TEXT = 500  # characters of a sentence, as OSC's /stemd/intent
MAX_COMMANDS = 32  # Commands in one `command` message


class Malformed(ValueError):
    """Not a JSON object: the sender is not speaking this protocol, so its socket is closed."""


class Refused(ValueError):
    """A well-formed message asking for something impossible; answered with the reason, socket kept."""

    def __init__(self, ident: Any, reason: str) -> None:
        super().__init__(reason)
        self.id = ident


@dataclass(frozen=True)
class Request:
    """One parsed page message: its kind and what it carries."""

    kind: str  # intent | commands | tap
    id: Any = None
    text: str = ""
    commands: tuple[Command, ...] = ()


def parse_request(raw: str, top_db: float) -> Request:
    """A page message as a Request; Malformed for non-objects, Refused (with the id) for impossible asks."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Malformed(f"a message must be a JSON object, got {type(data).__name__}")
    ident = data.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, (int, str))):
        raise Refused(None, "'id' must be a number or a string")
    try:
        return _request(data, ident, top_db)
    except CommandError as exc:
        raise Refused(ident, str(exc)) from None


def _request(data: dict[str, Any], ident: Any, top_db: float) -> Request:
    kind = data.get("type")
    if kind == "intent":
        return Request("intent", ident, text=_text(data.get("text")))
    if kind == "command":
        return Request("commands", ident, commands=_commands(data.get("command")))
    if kind == "fader":
        return Request("commands", ident, commands=(_fader(data, top_db),))
    if kind == "tap":
        return Request("tap", ident)
    raise CommandError(f"unknown message type {str(kind)[:40]!r}; known: intent, command, fader, tap")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CommandError("intent: 'text' must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise CommandError(f"intent: text is {len(value)} characters; the limit is {MAX_TEXT}")
    return value


def _commands(value: Any) -> tuple[Command, ...]:
    items = value if isinstance(value, list) else [value]
    if not 1 <= len(items) <= MAX_COMMANDS:
        raise CommandError(f"command: 1 to {MAX_COMMANDS} commands a message, got {len(items)}")
    return tuple(Command.from_dict(item) for item in items)


def _fader(data: dict[str, Any], top_db: float) -> Command:
    position = data.get("position")
    if isinstance(position, bool) or not isinstance(position, (int, float)) or not (
            math.isfinite(position) and 0.0 <= position <= 1.0):
        raise CommandError("fader: 'position' must be a number in 0..1")
    stem = data.get("stem")
    if not isinstance(stem, str):
        raise CommandError("fader: 'stem' must be a stem name or 'all'")
    return Command("gain", stem=stem, db=position_to_db(float(position), top_db), absolute=True)


def reply_ok(ident: Any, applied: Applied | None = None, notes: tuple[str, ...] = ()) -> dict[str, Any]:
    commands = [c.to_dict() for c in applied.commands] if applied is not None else []
    return {"type": "reply", "id": ident, "ok": True, "commands": commands,
            "notes": list(applied.notes if applied is not None else ()) + list(notes)}


def reply_error(ident: Any, reason: str) -> dict[str, Any]:
    return {"type": "reply", "id": ident, "ok": False, "error": reason}


def log_entry(applied: Applied, at: float) -> dict[str, Any]:
    """One line of the page's log: what was applied, from where, and the sentence if there was one."""
    return {"at": at, "source": applied.source, "text": applied.text,
            "commands": [c.to_dict() for c in applied.commands], "notes": list(applied.notes)}


def state_view(snapshot: dict[str, Any], top_db: float) -> dict[str, Any]:
    """What the page shows, from `Session.snapshot()`: strips, tempo, pending commands and status.

    Fader positions are computed here on the OSC curve, so the page needs no copy of it."""
    daemon = snapshot.get("daemon", {})
    engine = daemon.get("engine") or {}
    modes = (engine.get("refine") or {}).get("modes", {})
    strips = {
        stem: {"muted": s["muted"], "soloed": s["soloed"], "gain_db": round(s["gain_db"], 2),
               "position": round(db_to_position(s["gain_db"], top_db), 4), "loop": s.get("loop") or 0.0,
               "refine": modes.get(stem, "off")}
        for stem, s in snapshot.get("stems", {}).items()
    }
    master = snapshot.get("master_db", 0.0)
    transport = snapshot.get("transport", {})
    return {
        "type": "state",
        "model": snapshot.get("model"),
        "stems": strips,
        "master": {"gain_db": round(master, 2), "position": round(db_to_position(master, top_db), 4)},
        "tempo": {"bpm": round(snapshot.get("bpm", 0.0), 2), "source": transport.get("source"),
                  "beats_per_bar": transport.get("beats_per_bar")},
        # Quantized commands waiting for their boundary, where the daemon reports them.
        "pending": snapshot.get("pending", daemon.get("pending")),
        "status": {
            "state": daemon.get("state"), "output": daemon.get("output"),
            "latency_ms": _round(daemon.get("latency_ms"), 1), "latency_reason": (daemon.get("latency") or {}).get("reason"),
            "xruns": daemon.get("xruns"), "underruns": daemon.get("underruns"),
            "rtf": _round(engine.get("rtf")), "engine_error": engine.get("error"),
        },
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    """Rounded so a figure that jitters in its last digits does not push a new state every tick."""
    return None if value is None else round(float(value), digits)


def hello(stems: list[str], phrases: list[str], top_db: float, limits: dict[str, Any]) -> dict[str, Any]:
    return {"type": "hello", "stems": stems, "all": ALL, "phrases": phrases, "top_db": top_db, "limits": limits}
