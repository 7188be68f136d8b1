"""`stemd status`: ask the running daemon over OSC (/stemd/status) and print what it says."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from stemd.control.osc.client import NoReply, add_daemon_arguments, daemon_address, status
from stemd.control.voice import describe as describe_voice

HELP = ("Print the running daemon's state: output (separated or dry), latency, xruns, underruns, the "
        "engine's real-time factor, the mixer, which intent parser layers are on and why, and what voice "
        "control is doing (or why it is off). Exit status 2 when no daemon answers.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_daemon_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the raw JSON state")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _mixer(state: dict[str, Any]) -> str:
    words = []
    for stem, s in state.get("stems", {}).items():
        marks = [m for m, on in (("muted", s["muted"]), ("solo", s["soloed"])) if on]
        if s["gain_db"]:
            marks.append(f"{s['gain_db']:+.1f} dB")
        words.append(f"{stem}" + (f" ({', '.join(marks)})" if marks else ""))
    master = f"; master {state['master_db']:+.1f} dB" if state.get("master_db") else ""
    return (", ".join(words) or "no stems (dry)") + master


def _refine(refine: dict[str, Any]) -> str:
    """Refined stems, and why any of them is bypassed (the refiner over its share of real time)."""
    bypassed = refine.get("bypassed", {})
    on = [f"{stem} {mode}" + (f" (off: {bypassed[stem]})" if stem in bypassed else "")
          for stem, mode in refine.get("modes", {}).items() if mode != "off"]
    if not on:
        return "off"
    return ", ".join(on) + f"; {refine.get('load') or 0.0:.0%} of real time"


def _pending(pending: list[dict[str, Any]]) -> str:
    """Commands waiting for a beat boundary: what, on which boundary, and how far away it is."""
    return "; ".join(f"{json.dumps(p['command'], separators=(',', ':'))} on the {p['at']} "
                     f"(frame {p['frame']}, {p['beats_left']:g} beats away)" for p in pending)


def _standby(standby: dict[str, Any]) -> str:
    """The warm standby worker: loaded or not (and why), what it costs, how often it took over."""
    memory = standby.get("memory") or {}
    state = "loaded" if standby["loaded"] else f"not loaded ({standby['error']})" if standby["error"] else "loading"
    cost = f", {memory['private_mb']:.0f} MB private ({memory['rss_mb']:.0f} MB resident)" if memory else ""
    return f"{state}{cost}, took over {standby['takeovers']} times"


def render(state: dict[str, Any]) -> str:
    d = state.get("daemon", {})
    e = d.get("engine", {})
    why = d.get("latency", {}).get("reason")  # how L was decided
    rows = [
        ("state", d.get("state", "?")),
        ("model", state.get("model", "?") + (f" ({d['model_reason']})" if d.get("model_reason") else "")),
        ("output", d.get("output", "?") + (f" ({d['why']})" if d.get("why") else "")),
        ("latency", f"{_ms(d.get('latency_ms'))} ({d.get('latency_frames')} frames @ {d.get('rate')} Hz, "
                    f"period {d.get('period')}" + (f"; {why}" if why else "") + ")"),
        ("xruns", str(d.get("xruns", "-"))),
        ("underruns", f"{d.get('underruns', '-')} periods played dry for lack of stems"),
    ]
    if e.get("error"):
        rows.append(("engine", f"unavailable: {e['error']}"))
    elif "rtf" in e:
        rows.append(("engine", f"RTF {e['rtf']:.2f}, compute {_ms(e.get('compute_ms'))}/block, "
                               f"headroom {_ms(e.get('headroom_ms'))}, backlog {_ms(e.get('backlog_ms'))}, "
                               f"restarts {e.get('restarts', 0)}, pid {e.get('pid')}"))
    if e.get("standby") is not None:
        rows.append(("standby", _standby(e["standby"])))
    if e.get("refine"):
        rows.append(("refine", _refine(e["refine"])))
    rows.append(("mixer", _mixer(state)))
    if state.get("pending"):
        rows.append(("pending", _pending(state["pending"])))
    intent = state.get("intent")
    if intent:
        rows.append(("intent", f"semantic {intent.get('semantic', '?')}; audio routing "
                               f"{intent.get('audio_routing', '?')}; {intent.get('pronouns', '')}".rstrip("; ")))
    if "voice" in d:
        rows.append(("voice", describe_voice(d["voice"])))
    if d.get("web"):
        w = d["web"]
        rows.append(("web", f"{w['pages']} pages; refused: {w['forbidden']} forbidden, {w['malformed']} malformed, "
                            f"{w['oversized']} oversized, {w['rate_limited']} rate-limited"))
    return "\n".join(f"{k:<10} {v}" for k, v in rows)


def main(args: argparse.Namespace) -> int:
    host, port = daemon_address(args)
    try:
        state = status(host, port, args.timeout)
    except (NoReply, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(state, indent=1) if args.json else render(state))
    return 0
