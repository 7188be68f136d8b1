"""Test side of the web remote: a real WebRemote on 127.0.0.1 and real aiohttp WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
import pytest

from osc_harness import real_parser
from stemd.config import validate
from stemd.control.commands import STEMS_4
from stemd.control.phrases import load_phrases
from stemd.control.web import WebRemote
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session


def free_port() -> int:
    """A TCP port free right now (for a daemon config, whose schema needs a real port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_remote(parser: bool = True, **web: Any) -> WebRemote:
    config = validate({"web": web})
    config.web.port = 0  # any free port (the schema's minimum is 1 for users)
    mixer = Mixer(STEMS_4, 48000)
    session = Session(mixer, model_name="test-model", parser=real_parser(mixer.stems) if parser else None)
    return WebRemote(session, config.web, load_phrases()).start()


def base_url(remote: WebRemote) -> str:
    host, port = remote.address
    return f"http://{host}:{port}"


class Page:
    """A WebSocket client like the page: sends JSON, collects everything pushed, waits for replies."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._next = 1

    async def send(self, message: dict[str, Any]) -> int:
        ident = self._next
        self._next += 1
        await self.ws.send_str(json.dumps({"id": ident, **message}))
        return ident

    async def next(self, kind: str, timeout: float = 3.0, **match: Any) -> dict[str, Any]:
        """The first message of `kind` (with fields equal to `match`) seen or arriving within `timeout`."""
        def wanted(m: dict[str, Any]) -> bool:
            return m.get("type") == kind and all(m.get(k) == v for k, v in match.items())

        for i, m in enumerate(self.seen):
            if wanted(m):
                return self.seen.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket ended: {message.type.name} {self.ws.close_code}")
                m = json.loads(message.data)
                if wanted(m):
                    return m
                self.seen.append(m)

    async def ask(self, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        ident = await self.send(message)
        return await self.next("reply", timeout, id=ident)

    async def state_until(self, check, timeout: float = 3.0) -> dict[str, Any]:
        """The first pushed state for which `check(state)` holds."""
        async with asyncio.timeout(timeout):
            while True:
                state = await self.next("state", timeout)
                if check(state):
                    return state

    async def closed(self, timeout: float = 3.0) -> int | None:
        """Wait for the server to close this socket; its close code."""
        async with asyncio.timeout(timeout):
            while (await self.ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                                         aiohttp.WSMsgType.CLOSING):
                pass
        return self.ws.close_code


async def open_page(http: aiohttp.ClientSession, remote: WebRemote, query: str = "", **kw: Any) -> Page:
    ws = await http.ws_connect(f"{base_url(remote)}/ws{query}", **kw)
    page = Page(ws)
    await page.next("hello")
    await page.next("state")
    return page


def run(scenario: Any) -> Any:
    """Run a test's coroutine, a minute at most."""
    return asyncio.run(asyncio.wait_for(scenario, 60))


def with_page(remote: WebRemote, scenario: Any) -> None:
    """Run `scenario(http, page)` with an aiohttp session and one page connected to `remote`."""
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            await scenario(http, await open_page(http, remote))

    run(main())


@pytest.fixture
def remote():
    """Start WebRemotes (`remote(**web_config)`); stopped after the test."""
    started = []

    def start(**kw: Any) -> WebRemote:
        started.append(start_remote(**kw))
        return started[-1]

    yield start
    for r in started:
        r.stop()
