"""State feedback to OSC subscribers (TouchOSC faders, buttons and labels).

Feedback goes to the same addresses the controls send to (`/stemd/stem/vocals/mute 1`, `.../gain 0.75`),
so a surface's control shows the daemon's state whoever changed it: this tablet, another one, a MIDI
pad or a spoken command. It is computed as a diff of `Session.snapshot()` (so solo's effect on every
stem, or a tempo set by MIDI clock, is reported without knowing why it changed), plus loop and refine
from the applied Commands where the snapshot does not hold them. Session listeners only enqueue; one
thread does all sending, so a control source never waits on the network.

Pushed messages:
- `/stemd/stem/<stem>/mute i`, `/solo i`, `/gain f` (fader position), `/gain_db f`, `/loop f` (beats,
  0 = off; 1 when a loop of default length is on), `/refine s`; stem `all` carries the master gain;
- `/stemd/tempo f`;
- `/stemd/pending s(json)`: the commands waiting for a beat boundary, soonest first, each
  `{"command", "at", "frame"}` (status `pending`); `[]` once they have landed or were cancelled;
- `/stemd/state s(state) s(output) s(why)`: the daemon's state, what the performer hears (separated,
  dry, or off while JACK is gone) and why it is not separated ("" when it is), on every change;
- `/stemd/stem/<stem>/level f`: peak level since the last push, at `[osc] meter_hz`;
- `/stemd/applied s(json commands) s(source)` for every applied batch, from any control source;
- `/stemd/voice/heard s(heard) s(json commands, or "" when nothing was applied)` for every utterance
  voice control acted on, and `/stemd/voice/rejected s(heard) s(reason)` when it did nothing: Session
  listeners see only applied batches, and a performer needs to know why a spoken command did nothing.

A subscriber is renewed by subscribing again or by sending anything from the same host, and expires
after `[osc] subscriber_ttl_s` without either. Subscribers are kept in the state folder, so tablets keep
their feedback across a daemon restart.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pythonosc.osc_message_builder import build_msg

from stemd.control.commands import ALL, Action, commands_to_json
from stemd.control.osc.fader import db_to_position
from stemd.daemon.session import Applied, Session

if TYPE_CHECKING:
    from stemd.control.voice import VoiceListener, VoiceResult

log = logging.getLogger(__name__)

Client = tuple[str, int]
State = dict[str, tuple[Any, ...]]
MAX_SUBSCRIBERS = 64
SNAPSHOT_EVERY_S = 0.1  # catches changes that bypass Session listeners (tempo from a clock source)
COALESCE_S = 0.005  # a burst of changes goes out in one pass: at most ~200 wake-ups a second
FOLLOW_UP_S = 0.03  # more than a JACK period (1024 frames at 48 kHz = 21 ms)


def state_messages(snapshot: dict[str, Any], top_db: float) -> State:
    """Address -> arguments for every piece of state a surface can show."""
    out: State = {}

    def gain(stem: str, db: float) -> None:
        out[f"/stemd/stem/{stem}/gain_db"] = (float(db),)
        out[f"/stemd/stem/{stem}/gain"] = (db_to_position(db, top_db),)

    for stem, st in snapshot.get("stems", {}).items():
        base = f"/stemd/stem/{stem}"
        if "muted" in st:
            out[f"{base}/mute"] = (int(bool(st["muted"])),)
        if "soloed" in st:
            out[f"{base}/solo"] = (int(bool(st["soloed"])),)
        if "gain_db" in st:
            gain(stem, st["gain_db"])
        if "loop" in st:
            out[f"{base}/loop"] = (float(st["loop"] or 0.0),)
        if "refine" in st:
            out[f"{base}/refine"] = (str(st["refine"]),)
    if "master_db" in snapshot:
        gain(ALL, snapshot["master_db"])
    if "bpm" in snapshot:
        out["/stemd/tempo"] = (float(snapshot["bpm"]),)
    if "pending" in snapshot:  # without beats_left, which changes every block
        waiting = [{k: p[k] for k in ("command", "at", "frame")} for p in snapshot["pending"]]
        out["/stemd/pending"] = (json.dumps(waiting, separators=(",", ":")),)
    daemon = snapshot.get("daemon")
    if daemon is not None:
        out["/stemd/state"] = (str(daemon["state"]), str(daemon["output"]), str(daemon["why"]))
    return out


def command_messages(applied: Applied, stems: tuple[str, ...]) -> State:
    """Loop and refine state implied by applied Commands (the mixer snapshot does not hold them)."""
    out: State = {}
    for command in applied.commands:
        targets = stems if command.stem in (None, ALL) else (command.stem,)
        for stem in targets:
            if command.action is Action.LOOP:
                out[f"/stemd/stem/{stem}/loop"] = (float(command.beats or 1.0),)
            elif command.action is Action.UNLOOP:
                out[f"/stemd/stem/{stem}/loop"] = (0.0,)
            elif command.action is Action.RESET:
                out[f"/stemd/stem/{stem}/loop"] = (0.0,)
            elif command.action is Action.REFINE:
                out[f"/stemd/stem/{stem}/refine"] = (command.mode,)
    return out


def voice_messages(result: VoiceResult) -> list[bytes]:
    """What one utterance did, for a label: what was heard, and the commands or why there were none."""
    commands = commands_to_json(result.applied.commands) if result.applied is not None else ""
    out = [build_msg("/stemd/voice/heard", [result.heard, commands]).dgram]
    if result.error is not None:
        out.append(build_msg("/stemd/voice/rejected", [result.heard, result.error]).dgram)
    return out


class Feedback:
    def __init__(
        self,
        session: Session,
        send: Callable[[bytes, Client], None],
        meter_hz: float,
        ttl_s: float,
        store: Path,
        allowed: Callable[[str], bool],
    ) -> None:
        self.session = session
        self._send = send
        self.meter_period = 1.0 / meter_hz if meter_hz > 0 else 0.0
        self.ttl_s = ttl_s
        self.store = store
        self._allowed = allowed
        self._subscribers: dict[Client, float] = {}  # client -> wall-clock expiry
        self._lock = threading.Lock()
        self._applied: deque[Applied] = deque(maxlen=4096)  # listener -> feedback thread
        self._voice: VoiceListener | None = None
        self._heard: deque[VoiceResult] = deque(maxlen=256)  # voice thread -> feedback thread
        self._fresh: deque[Client] = deque(maxlen=MAX_SUBSCRIBERS)  # new subscribers owed the whole state
        self._wake = threading.Event()
        self._state: State = {}  # what subscribers were last told
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- subscribers (called from the server thread) --------------------------------------------------

    def subscribe(self, client: Client) -> None:
        with self._lock:
            if client not in self._subscribers and len(self._subscribers) >= MAX_SUBSCRIBERS:
                raise SubscribersFull(f"{MAX_SUBSCRIBERS} subscribers already; unsubscribe one first")
            self._subscribers[client] = time.time() + self.ttl_s
            self._save()
        self._fresh.append(client)
        self._wake.set()

    def unsubscribe(self, client: Client) -> None:
        with self._lock:
            if self._subscribers.pop(client, None) is not None:
                self._save()

    def seen(self, host: str) -> None:
        """Any message from a subscriber's host renews it: a tablet in use never expires."""
        if not self._subscribers:
            return
        with self._lock:
            expiry = time.time() + self.ttl_s
            for client in self._subscribers:
                if client[0] == host:
                    self._subscribers[client] = expiry

    def subscribers(self) -> list[Client]:
        with self._lock:
            return list(self._subscribers)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._load()
        self._state = state_messages(self.session.snapshot(), self.top_db)
        self.session.add_listener(self._on_applied)
        if self.session.voice is not None:
            self.follow_voice(self.session.voice)
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name="stemd-osc-feedback", daemon=True)
        self._thread.start()

    def follow_voice(self, voice: VoiceListener) -> None:
        """Report `voice`'s results; the daemon calls this for a voice service started after OSC."""
        if self._voice is not None:
            self._voice.remove_listener(self._on_voice)
        self._voice = voice
        voice.add_listener(self._on_voice)

    def stop(self) -> None:
        self.session.remove_listener(self._on_applied)
        if self._voice is not None:
            self._voice.remove_listener(self._on_voice)
            self._voice = None
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _on_applied(self, applied: Applied) -> None:
        """Session listener, on the submitter's thread: record and, if anyone listens, wake the sender."""
        self._applied.append(applied)
        if self._subscribers:
            self._wake.set()

    def _on_voice(self, result: VoiceResult) -> None:
        """Voice listener, on the voice thread: like `_on_applied`, record and wake."""
        self._heard.append(result)
        if self._subscribers:
            self._wake.set()

    # ---- the feedback thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        next_meter = next_tick = next_expiry = time.monotonic()
        while not self._stopped.is_set():
            due = min(next_tick, next_expiry, next_meter if self.meter_period else next_tick)
            woken = self._wake.wait(max(0.0, due - time.monotonic()))
            if woken:
                self._wake.clear()
                time.sleep(COALESCE_S)  # let a burst of changes go out as one pass
            now = time.monotonic()
            try:
                if woken or now >= next_tick:
                    self._changes()
                    # After a change, look again soon: with JACK running, the mixer applies a command
                    # at its next cycle, after this pass may already have read the snapshot.
                    next_tick = now + (FOLLOW_UP_S if woken else SNAPSHOT_EVERY_S)
                if self.meter_period and now >= next_meter:
                    self._meters()
                    next_meter = now + self.meter_period
                if now >= next_expiry:
                    self._expire()
                    next_expiry = now + 1.0
            except Exception:
                log.exception("OSC feedback: push failed")

    def _changes(self) -> None:
        """Push what changed since the last pass: applied batches, then the state diff, then the
        whole state to new subscribers."""
        snapshot = self.session.snapshot()
        stems = tuple(snapshot.get("stems", ()))
        applied: State = {}
        news: list[bytes] = []
        while self._applied:
            event = self._applied.popleft()
            news.append(build_msg("/stemd/applied", [commands_to_json(event.commands), event.source]).dgram)
            applied.update(command_messages(event, stems))
        while self._heard:
            news += voice_messages(self._heard.popleft())
        changed = self._diff({**applied, **state_messages(snapshot, self.top_db)})
        clients = self.subscribers()
        for dgram in news + [build_msg(a, list(v)).dgram for a, v in changed.items()]:
            for client in clients:
                self._send(dgram, client)
        while self._fresh:
            client = self._fresh.popleft()
            for address, args in self._state.items():
                self._send(build_msg(address, list(args)).dgram, client)

    def _diff(self, state: State) -> State:
        changed = {a: v for a, v in state.items() if self._state.get(a) != v}
        self._state.update(changed)
        return changed

    def _push(self, messages: State) -> None:
        if not messages:
            return
        clients = self.subscribers()
        for address, args in messages.items():
            dgram = build_msg(address, list(args)).dgram
            for client in clients:
                self._send(dgram, client)

    def _meters(self) -> None:
        if not self.subscribers():
            return  # leave the peak hold to other readers when nobody watches
        self._push({f"/stemd/stem/{stem}/level": (float(v),) for stem, v in self.session.levels().items()})

    def _expire(self) -> None:
        now = time.time()
        with self._lock:
            gone = [c for c, expiry in self._subscribers.items() if expiry <= now]
            for client in gone:
                del self._subscribers[client]
            if gone:
                self._save()

    @property
    def top_db(self) -> float:
        """The fader's top (`[mixer] max_gain_db`), shared with the server so both use one curve."""
        return float(self.session.mixer.max_gain_db)

    # ---- persistence (inside the state folder only) ------------------------------------------------

    def _save(self) -> None:
        """Atomically write the subscriber list (caller holds the lock)."""
        data = [[host, port, expiry] for (host, port), expiry in self._subscribers.items()]
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.store.with_name(self.store.name + ".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.store)
        except OSError as exc:
            log.warning("OSC: cannot save subscribers to %s: %s", self.store, exc)

    def _load(self) -> None:
        try:
            data = json.loads(self.store.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("OSC: ignoring unreadable %s: %s", self.store, exc)
            return
        now = time.time()
        with self._lock:
            for entry in data if isinstance(data, list) else ():
                if not (isinstance(entry, list) and len(entry) == 3):
                    continue
                host, port, expiry = entry
                valid = isinstance(host, str) and isinstance(port, int) and isinstance(expiry, (int, float))
                if valid and expiry > now and 0 < port < 65536 and self._allowed(host):
                    self._subscribers[(host, port)] = float(expiry)


class SubscribersFull(RuntimeError):
    """No room for another subscriber; the reason goes back to the sender."""
