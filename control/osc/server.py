"""The OSC server: every address of the namespace in docs/architecture.md over UDP, each message answered to its sender.

One thread receives, checks the sender (allow-list, rate limit), parses with python-osc and dispatches
in arrival order, so a mute followed by an unmute can never be swapped. Sentences (`/stemd/intent`,
`/stemd/midi/learn`) are parsed and applied in order on a thread of their own, so a slow parse never
holds up a fader; a sentence therefore applies when its parse is done, after direct controls that
arrived meanwhile. Messages in a bundle with a future time tag wait on the scheduler thread and are
answered when they apply; feedback to subscribers has its own thread. Every failure a sender can
cause (bad packet, unknown address, wrong arguments, rejected intent, full command queue) is caught
per message and answered with `/stemd/error`; nothing a sender does can end or stall the loop.

Argument conventions (TouchOSC and most surfaces send every value as a float):
- a switch (`mute`, `solo`, `voice/listen`) takes 0 or 1 as int, float or OSC true/false;
- a number (`gain`, `gain_db`, `loop`, `tempo`) takes int or float;
- `reset` and `tap` take no argument, or one number from a push button: non-zero acts, 0 (the button's
  release) is acknowledged and does nothing;
- `/stemd/ok` carries the applied Commands as JSON, then one string per note ("no separate drums; ...");
- an OSC address pattern over stem controls (`/stemd/stem/{vocals,bass}/mute 1`) is one batch, one answer.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg

from stemd.control.commands import Command, CommandError, commands_from_json, commands_to_json
from stemd.control.osc.client import connect_host
from stemd.control.osc.fader import position_to_db
from stemd.control.osc.feedback import Feedback, SubscribersFull
from stemd.control.osc.packet import MalformedPacket, count_messages, parse_checked
from stemd.control.osc.scheduler import ScheduleFull, Scheduler
from stemd.control.osc.security import AllowList, RateLimiter, state_file
from stemd.daemon.command_queue import QueueFull
from stemd.daemon.mixer import MIN_DB
from stemd.daemon.session import Applied, Session

log = logging.getLogger(__name__)

OK, ERROR, STATUS_REPLY = "/stemd/ok", "/stemd/error", "/stemd/status.reply"
MAX_TEXT = 500  # characters in an intent; the grammar needs far fewer, and parse cost stays bounded
MAX_ECHO = 80  # characters of a sender's input quoted back in an error
MAX_REASON = 1000  # characters of an error reason: an answer stays far below the request it answers
MAX_DATAGRAM = 65535
SUBSCRIBERS_FILE = "osc-subscribers.json"
PARSED = frozenset({"/stemd/intent", "/stemd/midi/learn"})  # addresses whose text goes to the parser

Client = tuple[str, int]
Handler = Callable[[str, list[Any], Client], "Reply"]
_STEM_ADDRESS = re.compile(r"/stemd/stem/([^/]+)/([a-z_]+)")
_PATTERN_CHARACTERS = frozenset("*?[]{}")
MAX_PATTERN, MAX_STARS = 96, 4  # bounds the regex python-osc builds from a pattern


class OscArgumentError(CommandError):
    """Wrong argument count, type or range for an address; the message names the address."""


@dataclass(frozen=True)
class Reply:
    address: str
    args: tuple[Any, ...] = ()


def ok(commands: Sequence[Command] = (), notes: Sequence[str] = ()) -> Reply:
    return Reply(OK, (commands_to_json(commands), *notes))


class OscServer:
    """UDP OSC server around a `Session`; `start()` binds and runs its threads, `stop()` ends them."""

    def __init__(self, session: Session, osc_config: SimpleNamespace, state_dir: str | Path) -> None:
        self.session = session
        self.config = osc_config
        self.allow = AllowList(osc_config.allow)
        self.limiter = RateLimiter(osc_config.rate_limit_per_s)
        self.scheduler = Scheduler(self._handle, what="timed messages")
        # Sentences are parsed off the receive thread: the semantic layer takes tens of ms a sentence
        # and seconds to load on first use, and no fader or mute may wait behind that.
        self.parsing = Scheduler(self._apply, max_pending=64, what="sentences")
        self.feedback = Feedback(
            session,
            self._send_dgram,
            meter_hz=osc_config.meter_hz,
            ttl_s=osc_config.subscriber_ttl_s,
            store=state_file(state_dir, SUBSCRIBERS_FILE),
            allowed=self.allow.allows,
        )
        self.counts = {"received": 0, "answered": 0, "errors": 0, "malformed": 0, "timed": 0}
        self._routes: dict[str, Handler] = {
            "/stemd/intent": self._intent,
            "/stemd/reset": self._reset,
            "/stemd/tempo": self._tempo,
            "/stemd/tap": self._tap,
            "/stemd/status": self._status,
            "/stemd/subscribe": self._subscribe,
            "/stemd/unsubscribe": self._unsubscribe,
            "/stemd/voice/listen": self._voice_listen,
            "/stemd/midi/learn": self._midi_learn,
        }
        self._stem_routes: dict[str, Callable[[str, str, list[Any]], Command]] = {
            "mute": self._stem_mute,
            "solo": self._stem_solo,
            "gain": self._stem_gain,
            "gain_db": self._stem_gain_db,
            "loop": self._stem_loop,
            "refine": self._stem_refine,
        }
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> "OscServer":
        family, _, _, _, sockaddr = socket.getaddrinfo(
            self.config.host, self.config.port, type=socket.SOCK_DGRAM
        )[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.2)  # how often the loop looks at the stop flag
        self._socket = sock
        self._stopped.clear()
        self.scheduler.start()
        self.parsing.start()
        self.feedback.start()
        self._thread = threading.Thread(target=self._serve, name="stemd-osc", daemon=True)
        self._thread.start()
        log.info("OSC server on %s:%d", *self.address)
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._wake_receiver()
            self._thread.join(timeout=2.0)
        self.scheduler.stop()
        self.parsing.stop()
        self.feedback.stop()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _wake_receiver(self) -> None:
        """An empty datagram to ourselves ends the wait in recvfrom now, not at its next timeout."""
        host, port = self.address
        try:
            with socket.socket(self._socket.family, socket.SOCK_DGRAM) as sock:
                sock.sendto(b"", (connect_host(host), port))
        except OSError:
            pass  # the receive timeout ends the loop anyway

    @property
    def address(self) -> Client:
        """The bound (host, port); port 0 in config picks a free one."""
        assert self._socket is not None, "not started"
        return self._socket.getsockname()[:2]

    def stats(self) -> dict[str, int]:
        return {
            **self.counts,
            "dropped_not_allowed": self.allow.dropped,
            "dropped_rate_limited": self.limiter.limited,
            "timed_pending": self.scheduler.pending,
            "sentences_pending": self.parsing.pending,
            "subscribers": len(self.feedback.subscribers()),
        }

    # ---- receive loop -----------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._socket is not None
        while not self._stopped.is_set():
            try:
                data, client = self._socket.recvfrom(MAX_DATAGRAM)
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stopped.is_set():
                    return
                log.warning("OSC: receive failed: %s", exc)
                self._stopped.wait(0.05)  # a persistent socket error must not become a busy loop
                continue
            try:
                self._datagram(data, client[:2])
            except Exception:  # a bug must cost one message, never the surface
                log.exception("OSC: unexpected failure on a packet from %s:%d", *client[:2])

    def _datagram(self, data: bytes, client: Client) -> None:
        host = client[0]
        if not self.allow.allows(host):
            return
        self.counts["received"] += 1
        if not self._admit(host, 1, client):
            return
        try:
            count = count_messages(data)
            if count > 1 and not self._admit(host, count - 1, client):
                return
            messages = parse_checked(data)
        except MalformedPacket as exc:
            self.counts["malformed"] += 1
            self._reply(Reply(ERROR, (f"malformed OSC packet ({len(data)} bytes): {_clip(str(exc))}",)), client)
            return
        self.feedback.seen(host)
        now = time.time()
        for timed in messages:
            if timed.time > now:
                try:
                    self.scheduler.at(timed.time, (timed.message, client))
                    self.counts["timed"] += 1
                except ScheduleFull as exc:
                    self._reply(Reply(ERROR, (f"{timed.message.address}: {exc}",)), client)
            else:
                self._handle((timed.message, client))

    def _admit(self, host: str, cost: int, client: Client) -> bool:
        admitted, tell = self.limiter.admit(host, cost)
        if tell:
            self._reply(Reply(ERROR, (f"rate limit: more than {self.limiter.rate:g} messages/s; dropping",)), client)
        return admitted

    def _handle(self, item: tuple[OscMessage, Client]) -> None:
        """Answer a due message now, or hand a sentence to the parsing thread."""
        message, client = item
        if message.address not in PARSED:
            self._apply(item)
            return
        try:
            self.parsing.at(time.time(), item)
        except ScheduleFull as exc:
            self._reply(Reply(ERROR, (f"{message.address}: busy, {exc}",)), client)

    def _apply(self, item: tuple[OscMessage, Client]) -> None:
        message, client = item
        try:
            self._reply(self._answer(message, client), client)
        except Exception:  # a bug must cost one message, never the thread
            log.exception("OSC: unexpected failure on %s from %s:%d", _clip(message.address), *client)

    def _answer(self, message: OscMessage, client: Client) -> Reply:
        address = message.address
        try:
            return self._dispatch(address, list(message.params), client)
        except (ValueError, QueueFull, SubscribersFull) as exc:  # CommandError and services' refusals
            return Reply(ERROR, (_clip(str(exc), MAX_REASON),))
        except Exception as exc:
            log.exception("OSC: %s failed", _clip(address))
            return Reply(ERROR, (f"{_clip(address)}: internal error: {type(exc).__name__}",))

    def _dispatch(self, address: str, args: list[Any], client: Client) -> Reply:
        handler = self._routes.get(address)
        if handler is not None:
            return handler(address, args, client)
        if address.startswith("/stemd/stem/") and _PATTERN_CHARACTERS.intersection(address):
            return self._stem_pattern(address, args, client)
        match = _STEM_ADDRESS.fullmatch(address)
        if match and match.group(2) in self._stem_routes:
            stem, control = match.groups()
            return self._submit([self.session.direct(self._stem_routes[control](address, stem, args))], client)
        raise OscArgumentError(f"unknown address {_clip(address)!r}; see the OSC namespace in docs/architecture.md")

    # ---- sending ----------------------------------------------------------------------------------

    def _reply(self, reply: Reply, client: Client) -> None:
        self.counts["answered"] += 1
        if reply.address == ERROR:
            self.counts["errors"] += 1
        self._send_dgram(build_msg(reply.address, list(reply.args)).dgram, client)

    def _send_dgram(self, dgram: bytes, client: Client) -> None:
        sock = self._socket
        if sock is None:
            return
        try:
            sock.sendto(dgram, client)
        except OSError as exc:  # unreachable client, oversize datagram: its loss, not the server's
            log.debug("OSC: cannot send to %s:%d: %s", client[0], client[1], exc)

    # ---- handlers ---------------------------------------------------------------------------------

    def _submit(self, commands: Sequence[Command], client: Client) -> Reply:
        applied = self.session.submit(commands, _source(client))
        return ok(applied.commands, applied.notes)

    def _intent(self, address: str, args: list[Any], client: Client) -> Reply:
        text = _text(address, args)
        applied: Applied = self.session.intent(text, _source(client))
        return ok(applied.commands, applied.notes)

    def _reset(self, address: str, args: list[Any], client: Client) -> Reply:
        if not _button(address, args):
            return ok()
        return self._submit([Command("reset")], client)

    def _tempo(self, address: str, args: list[Any], client: Client) -> Reply:
        return self._submit([Command("tempo", bpm=_number(address, args))], client)

    def _tap(self, address: str, args: list[Any], client: Client) -> Reply:
        clock = _service(self.session.beat_clock, "beat clock (tap tempo)")
        bpm = clock.tap() if _button(address, args) else None
        return ok(notes=(f"tap tempo: {bpm:.1f} BPM",) if bpm else ())

    def _status(self, address: str, args: list[Any], client: Client) -> Reply:
        _no_args(address, args)
        state = {**self.session.snapshot(), "osc": self.stats()}
        return Reply(STATUS_REPLY, (json.dumps(state, default=str, separators=(",", ":")),))

    def _subscribe(self, address: str, args: list[Any], client: Client) -> Reply:
        self.feedback.subscribe((client[0], _port(address, args, client)))
        return ok()

    def _unsubscribe(self, address: str, args: list[Any], client: Client) -> Reply:
        self.feedback.unsubscribe((client[0], _port(address, args, client)))
        return ok()

    def _voice_listen(self, address: str, args: list[Any], client: Client) -> Reply:
        voice = _service(self.session.voice, "voice control")
        voice.listen(_switch(address, args))
        return ok()

    def _midi_learn(self, address: str, args: list[Any], client: Client) -> Reply:
        midi = _service(self.session.midi, "MIDI control")
        text = _text(address, args)
        commands = commands_from_json(text) if text.lstrip()[:1] in ("{", "[") else self.session.parse(text)
        if len(commands) != 1:
            raise OscArgumentError(
                f"{address}: MIDI learn maps one control to one command; this gives {len(commands)}"
            )
        midi.learn(commands[0])
        return ok(commands)

    def _stem_mute(self, address: str, stem: str, args: list[Any]) -> Command:
        return Command("mute" if _switch(address, args) else "unmute", stem=stem)

    def _stem_solo(self, address: str, stem: str, args: list[Any]) -> Command:
        return Command("solo" if _switch(address, args) else "unsolo", stem=stem)

    def _stem_gain(self, address: str, stem: str, args: list[Any]) -> Command:
        db = position_to_db(_number(address, args, 0.0, 1.0), self._top_db)
        return Command("gain", stem=stem, db=db, absolute=True)

    def _stem_gain_db(self, address: str, stem: str, args: list[Any]) -> Command:
        db = max(_number(address, args, -math.inf, self._top_db), MIN_DB)  # below -60 dB is silence
        return Command("gain", stem=stem, db=db, absolute=True)

    def _stem_loop(self, address: str, stem: str, args: list[Any]) -> Command:
        beats = _number(address, args, 0.0)
        return Command("loop", stem=stem, beats=beats) if beats else Command("unloop", stem=stem)

    def _stem_refine(self, address: str, stem: str, args: list[Any]) -> Command:
        return Command("refine", stem=stem, mode=_text(address, args))

    def _stem_pattern(self, pattern: str, args: list[Any], client: Client) -> Reply:
        """An OSC address pattern over stem controls (`/stemd/stem/{vocals,bass}/mute`, `.../*/gain`):
        every matching address's Command, applied as one all-or-nothing batch with one answer."""
        pattern = re.sub(r"\*+", "*", pattern)  # '**' means '*'; runs of them would backtrack badly
        if len(pattern) > MAX_PATTERN or pattern.count("*") > MAX_STARS:
            raise OscArgumentError(
                f"pattern too complex (at most {MAX_PATTERN} characters and {MAX_STARS} '*'): {_clip(pattern)!r}"
            )
        dispatcher = Dispatcher()  # python-osc's OSC 1.0 pattern matching over the concrete addresses
        for stem in self.session.mixer.stems:
            for control in self._stem_routes:
                dispatcher.map(f"/stemd/stem/{stem}/{control}", None, (stem, control))
        matched = [handler.args[0] for handler in dispatcher.handlers_for_address(pattern)]
        if not matched:
            raise OscArgumentError(f"pattern {_clip(pattern)!r} matches no address")
        return self._submit([self.session.direct(self._stem_routes[c](pattern, stem, args)) for stem, c in matched],
                            client)

    @property
    def _top_db(self) -> float:
        return self.feedback.top_db


# ---- argument checks (each raises OscArgumentError naming the address) ------------------------------


def _source(client: Client) -> str:
    return f"osc:{client[0]}:{client[1]}"


def _clip(text: str, limit: int = MAX_ECHO) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "int", float: "float", str: "string", bytes: "blob"}.get(
        type(value), type(value).__name__
    )


def _no_args(address: str, args: list[Any]) -> None:
    if args:
        raise OscArgumentError(f"{address}: takes no arguments, got {len(args)}")


def _one(address: str, args: list[Any], what: str) -> Any:
    if len(args) != 1:
        raise OscArgumentError(f"{address}: takes one {what}, got {len(args)} arguments")
    return args[0]


def _number(address: str, args: list[Any], lo: float = -math.inf, hi: float = math.inf) -> float:
    value = _one(address, args, "number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OscArgumentError(f"{address}: expects a number, got {_type_name(value)}")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        bounds = f"{lo:g}..{hi:g}" if math.isfinite(lo) and math.isfinite(hi) else (
            f"≥ {lo:g}" if math.isfinite(lo) else f"≤ {hi:g}")
        raise OscArgumentError(f"{address}: {value:g} is out of range ({bounds})")
    return value


def _port(address: str, args: list[Any], client: Client) -> int:
    """An optional port argument; without one, the sender's own port."""
    if not args:
        return client[1]
    value = _number(address, args, 1, 65535)
    if value != int(value):
        raise OscArgumentError(f"{address}: port must be a whole number, got {value:g}")
    return int(value)


def _switch(address: str, args: list[Any]) -> bool:
    value = _one(address, args, "switch value (0 or 1)")
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    shown = repr(value) if isinstance(value, (int, float)) else _type_name(value)
    raise OscArgumentError(f"{address}: expects 0 or 1, got {_clip(shown)}")


def _button(address: str, args: list[Any]) -> bool:
    """No argument = act; one number = a push button (non-zero press acts, zero release does not)."""
    if not args:
        return True
    value = _one(address, args, "optional button value")
    if isinstance(value, (bool, int, float)):
        return bool(value)
    raise OscArgumentError(f"{address}: takes no argument or a button value, got {_type_name(value)}")


def _text(address: str, args: list[Any]) -> str:
    value = _one(address, args, "string")
    if not isinstance(value, str):
        raise OscArgumentError(f"{address}: expects a string, got {_type_name(value)}")
    if len(value) > MAX_TEXT:
        raise OscArgumentError(f"{address}: text is {len(value)} characters; the limit is {MAX_TEXT}")
    if not value.strip():
        raise OscArgumentError(f"{address}: empty text")
    return value


def _service(service: Any, name: str) -> Any:
    if service is None:
        raise OscArgumentError(f"{name} is not available in this daemon")
    return service
