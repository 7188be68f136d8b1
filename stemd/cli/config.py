"""`stemd config check FILE` / `stemd config default`."""

from __future__ import annotations

import argparse
import sys

from stemd.config import load_config, render_default

HELP = "Validate a config file (errors name the key and line), or print the documented default."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="validate FILE")
    check.add_argument("file")
    sub.add_parser("default", help="print the documented default config (config.toml)")


def main(args: argparse.Namespace) -> int:
    if args.action == "default":
        sys.stdout.write(render_default())
        return 0
    load_config(args.file)
    print(f"{args.file}: ok")
    return 0
