"""`stemd run`: the daemon in the foreground (the systemd unit runs exactly this)."""

from __future__ import annotations

import argparse
import logging

from stemd.config import load_config

HELP = (
    "Run the daemon: a JACK client that separates its input into stems and mixes them under OSC, MIDI "
    "and voice commands. Waits for the JACK server if it is not up yet; SIGTERM or Ctrl-C stop it cleanly."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: built-in defaults, identical to config.toml)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="overrides [log] level")


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    logging.basicConfig(level=(args.log_level or config.log.level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from stemd.daemon.app import Daemon

    daemon = Daemon(config)
    daemon.install_signal_handlers()
    try:
        daemon.start()
        daemon.run()
    finally:
        daemon.stop()
    return 0
