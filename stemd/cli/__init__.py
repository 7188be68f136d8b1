"""`stemd` command line. Each subcommand is a module in this package with `HELP`, `add_arguments`
and `main(args) -> int`, imported only when chosen so `stemd parse` never pays for torch. A module
may also define `run_raw(argv) -> int | None`, which sees the subcommand's raw arguments first and
returns a status when it handled them itself (`stemd bench voice --fast` passes through to a suite).

A subcommand reads its config with `load_config` (or `daemon_address`) and lets a ConfigError go:
`main` prints it (it names the key and line) and exits with status 2, the same for every subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

from stemd.config import ConfigError

# name -> (module, one-line help). A module that is not there yet is reported as not built.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the daemon (JACK client)"),
    "demo": ("demo", "self-contained demo: private jackd, generated song, scripted intents, WAVs out"),
    "separate": ("separate", "separate an audio file into stem files (offline)"),
    "send": ("send", "send an intent or an OSC message to a running daemon and print the reply"),
    "parse": ("parse", "parse a sentence into Commands"),
    "status": ("status", "print the running daemon's state"),
    "bench": ("bench", "benchmark engines, backends and devices"),
    "models": ("models", "list, check or fetch models"),
    "config": ("config", "check a config file or print the documented default"),
}


class NotBuilt(SystemExit):
    pass


def _load(name: str):
    module, _ = SUBCOMMANDS[name]
    try:
        return importlib.import_module(f"stemd.cli.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"stemd.cli.{module}":
            raise
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stemd", description="Headless live stem engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in SUBCOMMANDS.items():
        chosen = name in sys.argv[1:2]
        module = _load(name) if chosen else None
        p = sub.add_parser(name, help=help_text, description=getattr(module, "HELP", help_text))
        if module is not None:
            module.add_arguments(p)
        elif chosen:
            p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.argv[1:] = argv
    raw = getattr(_load(argv[0]), "run_raw", None) if argv and argv[0] in SUBCOMMANDS else None
    if raw is not None and (status := raw(argv[1:])) is not None:
        return status
    args = build_parser().parse_args(argv)
    module = _load(args.command)
    if module is None:
        print(f"stemd {args.command}: not built yet in this version", file=sys.stderr)
        return 3
    try:
        return int(module.main(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
