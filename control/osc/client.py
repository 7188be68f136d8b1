"""Talk to a running daemon over OSC: send one message, wait for its answer (`stemd send`, `stemd status`).

The reply comes back to the socket the request left from, so each request uses its own ephemeral
socket and ignores anything that is not an answer (feedback pushes, stray packets).
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from dataclasses import dataclass
from typing import Any, Sequence

from pythonosc.osc_message_builder import build_msg

from stemd.config import load_config
from stemd.control.osc.packet import MalformedPacket, parse

ANSWERS = ("/stemd/ok", "/stemd/error", "/stemd/status.reply")


class NoReply(TimeoutError):
    """The daemon did not answer in time (not running, wrong port, or not allowed to reply)."""


@dataclass(frozen=True)
class Answer:
    address: str
    args: tuple[Any, ...]

    @property
    def ok(self) -> bool:
        return self.address != "/stemd/error"

    @property
    def text(self) -> str:
        return str(self.args[0]) if self.args else ""


def connect_host(host: str) -> str:
    """Where a client on this machine reaches a daemon bound to `host` (a wildcard bind means loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    """--config/--host/--port/--timeout, the same for every command that talks to the daemon."""
    parser.add_argument("--config", help="config file for [osc] host and port (default: built-in defaults)")
    parser.add_argument("--host", help="daemon address (default: [osc] host, loopback for a wildcard bind)")
    parser.add_argument("--port", type=int, help="daemon UDP port (default: [osc] port)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")


def daemon_address(args: argparse.Namespace) -> tuple[str, int]:
    """Where the daemon listens: the flags, else the config's [osc] section (raises ConfigError)."""
    osc = load_config(args.config).osc
    return args.host or connect_host(osc.host), args.port or osc.port


def request(host: str, port: int, address: str, args: Sequence[Any] = (), timeout: float = 2.0) -> Answer:
    """Send `address args` and return the daemon's answer; raise NoReply after `timeout` seconds."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.sendto(build_msg(address, list(args)).dgram, (host, port))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                break
            try:
                messages = parse(data)
            except MalformedPacket:
                continue
            for timed in messages:
                if timed.message.address in ANSWERS:
                    return Answer(timed.message.address, tuple(timed.message.params))
    raise NoReply(f"no answer from {host}:{port} within {timeout:g} s (is stemd running with OSC enabled?)")


def status(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    """The daemon's state (`/stemd/status`), as a dict."""
    answer = request(host, port, "/stemd/status", (), timeout)
    if answer.address != "/stemd/status.reply":
        raise RuntimeError(answer.text)
    return json.loads(answer.text)


def typed(word: str) -> int | float | str:
    """A command-line word as an OSC argument: int if it reads as one, else float, else string."""
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            pass
    return word
