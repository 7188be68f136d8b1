"""Test side of the OSC surface: a real daemon-side OscServer on 127.0.0.1 and real UDP clients."""

from __future__ import annotations

import socket
import time
from typing import Any

import numpy as np
import pytest

from pythonosc.osc_message_builder import build_msg

from stemd.config import validate
from stemd.control.commands import STEMS_4, Action, Command
from stemd.control.osc.client import ANSWERS
from stemd.control.osc.packet import parse
from stemd.control.osc.server import OscServer
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session


def real_parser(stems):
    """The project's intent parser bound to the model's stems, or None while it is not built."""
    try:
        from stemd.control.intent import parse
    except ImportError:
        return None
    return lambda text: parse(text, stems)


def start_server(state_dir, stems=STEMS_4, parser=False, **osc) -> OscServer:
    config = validate({"osc": osc})
    config.osc.port = 0  # any free port (the schema's minimum is 1 for users; tests need no fixed port)
    mixer = Mixer(stems, 48000)
    session = Session(mixer, model_name="test-model", parser=real_parser(mixer.stems) if parser else None)
    return OscServer(session, config.osc, state_dir).start()


class Surface:
    """A UDP OSC client like a tablet: sends, waits for answers, records everything else it receives."""

    def __init__(self, server: OscServer, bind: str = "127.0.0.1") -> None:
        self.server = server.address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # room for bursts of answers
        self.sock.bind((bind, 0))
        self.port = self.sock.getsockname()[1]
        self.pushed: list[tuple[str, tuple[Any, ...]]] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, address: str, *args: Any) -> None:
        self.send_raw(build_msg(address, list(args)).dgram)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def ask(self, address: str, *args: Any, timeout: float = 3.0) -> tuple[str, tuple[Any, ...]]:
        self.send(address, *args)
        return self.answer(timeout)

    def ask_raw(self, data: bytes, timeout: float = 3.0) -> tuple[str, tuple[Any, ...]]:
        self.send_raw(data)
        return self.answer(timeout)

    def answers(self, count: int, timeout: float = 3.0) -> list[tuple[str, tuple[Any, ...]]]:
        """At least `count` answers, or what arrived by `timeout`; answers beyond `count` that are
        already on their way are drained too."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            got += [m for m in self.receive(deadline - time.monotonic()) if m[0] in ANSWERS]
        while extra := [m for m in self.receive(0.05) if m[0] in ANSWERS]:
            got += extra
        return got

    def answer(self, timeout: float = 3.0) -> tuple[str, tuple[Any, ...]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.receive(deadline - time.monotonic()):
                if message[0] in ANSWERS:
                    return message
                self.pushed.append(message)
        raise TimeoutError("no answer")

    def receive(self, timeout: float) -> list[tuple[str, tuple[Any, ...]]]:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, _ = self.sock.recvfrom(65535)
        except socket.timeout:
            return []
        return [(t.message.address, tuple(t.message.params)) for t in parse(data)]

    def collect(self, seconds: float) -> list[tuple[str, tuple[Any, ...]]]:
        """Everything received for `seconds` (answers included), appended to `pushed` too."""
        end = time.monotonic() + seconds
        got = []
        while (left := end - time.monotonic()) > 0:
            got += self.receive(left)
        self.pushed += got
        return got

    def wait_for(self, address: str, value: tuple[Any, ...] | None = None, timeout: float = 3.0) -> tuple[Any, ...]:
        """The args of the next pushed `address` (with `value`, if given)."""
        for seen, args in self.pushed:
            if seen == address and (value is None or args == value):
                return args
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            for seen, args in self.receive(left):
                self.pushed.append((seen, args))
                if seen == address and (value is None or args == value):
                    return args
        raise TimeoutError(f"no {address} {value or ''} within {timeout} s; got {sorted({a for a, _ in self.pushed})}")


def pushed_after_changes(server: OscServer, tablet: Surface) -> set[str]:
    """Subscribe `tablet`, change every kind of state (mute, refine, levels) and return the
    addresses feedback pushed to it."""
    tablet.ask("/stemd/subscribe")
    server.session.on(Action.REFINE, lambda command: None)  # refine state is known once set
    server.session.submit([Command("mute", stem="bass"), Command("refine", stem="all", mode="clean")], "test")
    mixer = server.session.mixer
    mixer.process(np.full((len(mixer.stems), 2, 64), 0.1, np.float32), np.zeros((2, 64), np.float32))
    tablet.collect(0.5)
    return {address for address, _ in tablet.pushed}


@pytest.fixture
def osc(tmp_path):
    """Start OscServers (`osc(**osc_config)`), each with its own state folder; stopped after the test."""
    servers = []

    def start(**kw) -> OscServer:
        servers.append(start_server(tmp_path / f"state{len(servers)}", **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def surface():
    """Open Surfaces (`surface(server, bind=...)`); closed after the test."""
    opened = []

    def open_(server: OscServer, bind: str = "127.0.0.1") -> Surface:
        opened.append(Surface(server, bind))
        return opened[-1]

    yield open_
    for s in opened:
        s.close()
