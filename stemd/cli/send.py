"""`stemd send "drop the vocals"` / `stemd send /stemd/stem/bass/mute 1`: one OSC request, print the answer."""

from __future__ import annotations

import argparse
import sys

from stemd.control.osc.client import NoReply, add_daemon_arguments, daemon_address, request, typed

HELP = (
    "Send a sentence (an /stemd/intent) or an OSC address with arguments to the running daemon and print "
    "its answer. Arguments are typed as int, float or string by how they read. Exit status: 0 ok, "
    "1 the daemon answered /stemd/error, 2 no answer."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="+", help="a sentence, or an OSC address followed by its arguments")
    add_daemon_arguments(parser)


def main(args: argparse.Namespace) -> int:
    host, port = daemon_address(args)
    if args.words[0].startswith("/"):
        address, osc_args = args.words[0], [typed(w) for w in args.words[1:]]
    else:
        address, osc_args = "/stemd/intent", [" ".join(args.words)]
    try:
        answer = request(host, port, address, osc_args, args.timeout)
    except NoReply as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot send to {host}:{port}: {exc}", file=sys.stderr)
        return 2
    if not answer.ok:
        print(f"error: {answer.text}", file=sys.stderr)
        return 1
    print(answer.text)
    for note in answer.args[1:]:
        print(f"note: {note}", file=sys.stderr)
    return 0
