"""`stemd parse "drop the vocals, bring in the bass" --json`: what the daemon would do with a sentence."""

from __future__ import annotations

import argparse
import json
import sys

from stemd.cli.json_output import json_stdout
from stemd.config import load_config
from stemd.control.commands import ALL, KNOWN_STEMS, IntentRejected, commands_to_json

HELP = (
    "Parse a sentence into Commands with the daemon's intent parser (grammar, then the semantic layer "
    "for words the grammar does not know). Prints the canonical JSON list with --json, one command per "
    "line otherwise; a rejected sentence prints the reason on stderr and exits 1 (2: bad config)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="+", help="the sentence")
    parser.add_argument("--json", action="store_true", help="print the canonical JSON command list")
    parser.add_argument("--config", help="config file ([intent], [mixer] step, [transport] beats per bar)")
    parser.add_argument(
        "--stems", help="the model's stems, comma-separated (e.g. vocals,drums,bass,other), to see how "
        "instruments such as piano are aimed; default: no model, vocabulary stems as named"
    )
    parser.add_argument("--grammar", action="store_true", help="the grammar only (no semantic model loads)")
    parser.add_argument("--status", action="store_true", help="also print which layers are active (stderr)")


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    stems = None
    if args.stems:
        stems = [s.strip() for s in args.stems.split(",") if s.strip()]
        unknown = [s for s in stems if s not in KNOWN_STEMS or s == ALL]
        if unknown:
            print(f"error: unknown stem(s) {', '.join(unknown)}; known: {', '.join(KNOWN_STEMS)}", file=sys.stderr)
            return 2
    if args.json:
        with json_stdout() as emit:
            commands = _parse(args, config, stems)
            if commands is not None:
                emit(commands_to_json(commands))
    else:
        commands = _parse(args, config, stems)
        for command in commands or ():
            print(command.to_json())
    return 0 if commands is not None else 1


def _parse(args: argparse.Namespace, config, stems: list[str] | None) -> list | None:
    """The sentence's Commands, or None when the parser rejects it (the reason goes to stderr)."""
    from stemd.control.intent import IntentParser

    parser = IntentParser.from_config(config, stems, semantic="off" if args.grammar else "auto")
    try:
        return parser.parse(" ".join(args.words))
    except IntentRejected as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return None
    finally:
        if args.status:
            print(json.dumps(parser.status(), indent=2), file=sys.stderr)
