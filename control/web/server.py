"""The web remote: aiohttp serves the page and one WebSocket per page, on a thread of its own.

Everything runs on one asyncio loop in the `stemd-web` thread, so no web client ever holds the
daemon's supervision thread or the audio. Direct controls (buttons, faders) apply on the loop at
once; sentences go, in order, to one parsing thread (the semantic layer takes tens of ms a sentence
and seconds on first use), as OSC does. State is pushed, never polled: a Session listener wakes the
publisher for every applied batch from any source (OSC, MIDI, voice, another page), which sends the
log entry and the new state; a 10 Hz look at the snapshot catches what bypasses the Session (a tempo
from MIDI clock, the engine's figures). Meters go out at `[web] meter_hz`.

Security (control/web/gate.py): every request is checked for network and token; a WebSocket upgrade
must also come from this page's own origin, so another site open in the same browser cannot drive the
mix through the loopback port (cross-site WebSocket hijacking); and without a token the Host header
must be an IP literal or `localhost`, which a DNS-rebinding page cannot send. A message over
`[web] max_message_bytes` or one that is not a JSON object closes that socket and is counted; each
socket has its own token bucket at `[web] rate_limit_per_s`, the OSC limiter.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from stemd.control.osc.security import RateLimiter
from stemd.control.web import protocol
from stemd.control.web.gate import Gate
from stemd.daemon.command_queue import QueueFull
from stemd.daemon.session import Applied, Session

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 0.1  # catches changes that bypass Session listeners
COALESCE_S = 0.005  # a burst of changes goes out as one push
MIN_PUSH_INTERVAL_S = 0.05  # at most 20 pushes a second, however many pages send: each costs one send a page
MAX_LOG_PER_PUSH = 20  # newest log entries a push carries; a flood says how many it skipped instead
FOLLOW_UP_S = 0.03  # look again after a change: the mixer applies it at its next JACK period
CLOSE_TIMEOUT_S = 1.0  # a page that does not answer our close frame is dropped after this
SEND_TIMEOUT_S = 2.0  # a page that cannot take a push this long is closed, not waited for
STATIC = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
          "/style.css": ("style.css", "text/css")}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the page's URL
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'",
}


class _Page:
    """One connected WebSocket: its socket, its peer and its rate-limit key."""

    def __init__(self, ws: web.WebSocketResponse, peer: str) -> None:
        self.ws = ws
        self.peer = peer

    async def send(self, text: str) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await self.ws.send_str(text)
        except (ConnectionError, RuntimeError, TimeoutError):
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"too slow")


class WebRemote:
    """HTTP + WebSocket server around a `Session`; `start()` binds and runs it, `stop()` ends it."""

    def __init__(self, session: Session, web_config: SimpleNamespace, phrases: list[str]) -> None:
        self.session = session
        self.config = web_config
        self.phrases = list(phrases)
        self.gate = Gate(web_config.allow, web_config.token)
        self.limiter = RateLimiter(web_config.rate_limit_per_s)
        self.meter_period = 1.0 / web_config.meter_hz if web_config.meter_hz > 0 else 0.0
        self.counts = {"connections": 0, "messages": 0, "replies": 0, "errors": 0, "malformed": 0,
                       "oversized": 0, "refused_full": 0}
        self._pages: set[_Page] = set()
        self._applied: deque[Applied] = deque(maxlen=4096)  # listener (any thread) -> publisher
        self._parsing = ThreadPoolExecutor(1, thread_name_prefix="stemd-web-parse")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None
        self._state_text = ""
        self._closing = False

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> "WebRemote":
        """Bind and serve; raises the bind error (port taken, bad host) in the caller's thread."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # handed to start()'s caller
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="stemd-web", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        self.session.add_listener(self._on_applied)
        log.info("web remote on http://%s:%d/", *self.address)
        return self

    async def _open(self) -> None:
        app = web.Application(client_max_size=self.config.max_message_bytes)
        app.router.add_get("/ws", self._socket)
        for path in STATIC:
            app.router.add_get(path, self._static)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self._address = self._runner.addresses[0][:2]
        self._wake = asyncio.Event()
        self._publisher = asyncio.get_running_loop().create_task(self._publish())

    def stop(self) -> None:
        self.session.remove_listener(self._on_applied)
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=5.0)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5.0)
            self._parsing.shutdown(wait=False, cancel_futures=True)

    async def _close(self) -> None:
        self._closing = True  # a flag, not cancel(): 3.11's wait_for can swallow a cancellation
        if self._publisher is not None and self._wake is not None:
            self._wake.set()
            await self._publisher
        await asyncio.gather(*(page.ws.close(code=WSCloseCode.GOING_AWAY, message=b"stemd is stopping")
                               for page in list(self._pages)), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); port 0 in config picks a free one."""
        assert self._address is not None, "not started"
        return self._address

    def stats(self) -> dict[str, int]:
        return {**self.counts, "pages": len(self._pages), "forbidden": self.gate.forbidden,
                "rate_limited": self.limiter.limited}

    # ---- HTTP -------------------------------------------------------------------------------------

    def _admit(self, request: web.Request) -> None:
        """403 unless the client's network, token and Host header pass (see the module docstring)."""
        if not self.gate.admits(request.remote, request.query.get("token")) or not self._host_ok(request):
            raise web.HTTPForbidden(text="forbidden: this address or token may not use the stemd web remote\n",
                                    headers=HEADERS)

    def _host_ok(self, request: web.Request) -> bool:
        if self.config.token:
            return True
        host = urlsplit(f"//{request.host}").hostname or ""
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            pass
        if host == "localhost":
            return True
        self.gate.forbidden += 1
        return False

    async def _static(self, request: web.Request) -> web.Response:
        self._admit(request)
        name, kind = STATIC[request.path]
        body = resources.files("stemd.control.web").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=HEADERS)

    # ---- WebSocket --------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        self._admit(request)
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            self.gate.forbidden += 1
            raise web.HTTPForbidden(text="forbidden: WebSocket from another origin\n", headers=HEADERS)
        if len(self._pages) >= self.config.max_clients:
            self.counts["refused_full"] += 1
            raise web.HTTPServiceUnavailable(text=f"{self.config.max_clients} pages already connected\n")
        ws = web.WebSocketResponse(max_msg_size=self.config.max_message_bytes, heartbeat=30.0,
                                   timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        peer = f"{request.remote}:{(request.transport.get_extra_info('peername') or ('', 0))[1]}"
        page = _Page(ws, peer)
        self._pages.add(page)
        self.counts["connections"] += 1
        try:
            await page.send(self._hello())
            await page.send(self._state_text or self._current_state())
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._message(page, message.data)
                elif message.type == WSMsgType.ERROR:  # aiohttp has closed it; data is the WebSocketError
                    too_big = getattr(message.data, "code", None) == WSCloseCode.MESSAGE_TOO_BIG
                    self.counts["oversized" if too_big else "malformed"] += 1
                else:  # binary frames are not this protocol
                    self.counts["malformed"] += 1
                    await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"text JSON messages only")
        finally:
            self._pages.discard(page)
        return ws

    async def _message(self, page: _Page, raw: str) -> None:
        self.counts["messages"] += 1
        admitted, tell = self.limiter.admit(page.peer)
        if not admitted:
            if tell:
                await self._reply(page, protocol.reply_error(
                    None, f"rate limit: more than {self.limiter.rate:g} messages/s; dropping"))
            return
        try:
            request = protocol.parse_request(raw, self._top_db)
        except protocol.Malformed as exc:
            self.counts["malformed"] += 1
            await page.ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=str(exc)[:120].encode())
            return
        except protocol.Refused as exc:
            await self._reply(page, protocol.reply_error(exc.id, str(exc)))
            return
        await self._reply(page, await self._apply(request, f"web:{page.peer}"))

    async def _apply(self, request: protocol.Request, source: str) -> dict[str, Any]:
        try:
            if request.kind == "intent":
                applied = await asyncio.get_running_loop().run_in_executor(
                    self._parsing, self.session.intent, request.text, source)
                return protocol.reply_ok(request.id, applied)
            if request.kind == "tap":
                return protocol.reply_ok(request.id, notes=self._tap())
            return protocol.reply_ok(request.id, self.session.submit(request.commands, source))
        except (ValueError, QueueFull) as exc:  # CommandError, IntentRejected, a full command queue
            return protocol.reply_error(request.id, str(exc))
        except Exception as exc:  # a bug costs one message, never the server
            log.exception("web: %s failed", request.kind)
            return protocol.reply_error(request.id, f"internal error: {type(exc).__name__}")

    def _tap(self) -> tuple[str, ...]:
        clock = self.session.beat_clock
        if clock is None:
            raise ValueError("beat clock (tap tempo) is not available in this daemon")
        bpm = clock.tap()
        return (f"tap tempo: {bpm:.1f} BPM",) if bpm else ()

    async def _reply(self, page: _Page, reply: dict[str, Any]) -> None:
        self.counts["replies"] += 1
        if not reply["ok"]:
            self.counts["errors"] += 1
        await page.send(json.dumps(reply))

    # ---- pushing state ----------------------------------------------------------------------------

    def _on_applied(self, applied: Applied) -> None:
        """Session listener, on the submitter's thread: record and wake the publisher (directly when
        a page's own command runs on the loop, so a busy room costs no self-pipe write per message)."""
        self._applied.append(applied)
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or not self._pages or wake.is_set():
            return
        if self._thread is threading.current_thread():
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _publish(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        next_state = next_meter = last_push = loop.time()
        while not self._closing:
            due = min(next_state, next_meter) if self.meter_period else next_state
            try:
                async with asyncio.timeout(max(0.0, due - loop.time())):
                    await self._wake.wait()
                woken = True
            except TimeoutError:
                woken = False
            if self._closing:
                return
            if woken:
                self._wake.clear()
                await asyncio.sleep(max(COALESCE_S, last_push + MIN_PUSH_INTERVAL_S - loop.time()))
            now = loop.time()
            try:
                if woken or now >= next_state:
                    last_push = now
                    await self._push_changes()
                    next_state = now + (FOLLOW_UP_S if woken else SNAPSHOT_EVERY_S)
                if self.meter_period and now >= next_meter:
                    next_meter = now + self.meter_period
                    if self._pages:
                        levels = {s: round(v, 4) for s, v in self.session.levels().items()}
                        await self._broadcast(json.dumps({"type": "levels", "levels": levels}))
            except Exception:
                log.exception("web: push failed")

    async def _push_changes(self) -> None:
        """One log message with every batch applied since the last push, then the state if it changed."""
        now = time.time()
        batches = [self._applied.popleft() for _ in range(len(self._applied))]
        if not self._pages:
            return
        if batches:
            shown = batches[-MAX_LOG_PER_PUSH:]
            await self._broadcast(json.dumps({"type": "applied", "skipped": len(batches) - len(shown),
                                              "entries": [protocol.log_entry(b, now) for b in shown]}))
        state = self._current_state()
        if state != self._state_text:
            self._state_text = state
            await self._broadcast(state)

    async def _broadcast(self, text: str) -> None:
        await asyncio.gather(*(page.send(text) for page in list(self._pages)))

    def _current_state(self) -> str:
        return json.dumps(protocol.state_view(self.session.snapshot(), self._top_db))

    def _hello(self) -> str:
        limits = {"max_message_bytes": self.config.max_message_bytes, "max_text": protocol.MAX_TEXT,
                  "rate_limit_per_s": self.config.rate_limit_per_s}
        return json.dumps(protocol.hello(list(self.session.mixer.stems), self.phrases, self._top_db, limits))

    @property
    def _top_db(self) -> float:
        return float(self.session.mixer.max_gain_db)
