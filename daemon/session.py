"""The one door every control source (OSC, MIDI, voice, CLI) uses to change the running mix.

It routes commands onto the model's stems, refuses a whole batch if any command in it is invalid
(nothing half-applied), hands mixer commands to the RT queue (or applies them directly when no audio
thread runs, as in offline use and tests), sends other actions to whoever registered for them
(refine -> engine worker, ...), and tells listeners so feedback (OSC, MIDI LEDs) follows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from stemd.control.commands import Action, Command, CommandError, IntentRejected
from stemd.control.timing import QUANTIZE_OFF
from stemd.daemon.mixer import PENDING_SLOTS, Mixer
from stemd.daemon.stem_map import route

Parser = Callable[[str], list[Command]]
Listener = Callable[["Applied"], None]


@dataclass(frozen=True)
class Applied:
    """What one submission did: the routed commands, notes for the performer, and who sent it."""

    commands: tuple[Command, ...]
    notes: tuple[str, ...]
    source: str
    text: str | None = None


@dataclass
class Session:
    mixer: Mixer
    model_name: str = "the model"
    parser: Parser | None = None
    realtime: bool = False  # True while a JACK process callback drains mixer.commands
    routes: dict[Action, Callable[[Command], None]] = field(default_factory=dict)
    # Services owned by other parts, set by whoever builds the daemon; None = feature absent, and the
    # control surface answers so. beat_clock: tap()/bpm (daemon/transport); voice: listen(on)
    # (control/voice); midi: learn(command) (control/midi).
    beat_clock: Any = None
    voice: Any = None
    midi: Any = None
    # Daemon figures (state, xruns, underruns, engine RTF, latency) for status; set by daemon/app.py.
    stats: Callable[[], dict[str, Any]] | None = None
    # The parser's layers (grammar, semantic, audio routing, pronouns) and why each is on or off, for
    # status; set with the parser (control/intent/context.Conversation.attach).
    parser_status: Callable[[], dict[str, Any]] | None = None
    # Launch quantize of direct controls (OSC stem addresses, MIDI bindings): "off" or a timing
    # ("bar"); [transport] quantize. Sentences carry their own timing words instead.
    quantize: str = QUANTIZE_OFF
    _listeners: list[Listener] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, action: Action, handler: Callable[[Command], None]) -> None:
        """Register the owner of an action the mixer does not own (refine, loop, ...)."""
        self.routes[action] = handler

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def submit(self, commands: Sequence[Command], source: str = "", text: str | None = None) -> Applied:
        """Apply `commands` in order, all or none; raise CommandError with the reason otherwise."""
        routed = [route(c, self.mixer.stems, self.model_name) for c in commands]
        for r in routed:
            action = r.command.action
            if action not in Mixer.OWNED_ACTIONS and action not in self.routes:
                raise CommandError(f"{action.value} is not available in this daemon")
        self._check_timing([r.command for r in routed])
        with self._lock:
            for r in routed:
                self._deliver(r.command)
        applied = Applied(tuple(r.command for r in routed), tuple(r.note for r in routed if r.note), source, text)
        for listener in list(self._listeners):
            listener(applied)
        return applied

    def direct(self, command: Command) -> Command:
        """A direct control's command under the launch quantize (faders and tempo stay immediate:
        a level that waits for the bar is a fader that lags)."""
        if self.quantize == QUANTIZE_OFF or command.at is not None or command.absolute:
            return command
        return command.timed(self.quantize)

    def _check_timing(self, commands: Sequence[Command]) -> None:
        """Refuse timed commands the beat clock cannot place: no tempo source (the configured default
        is a guess, never a bar line) or every pending slot taken."""
        timed = sum(c.at is not None for c in commands)
        if not timed:
            return
        if not self.mixer.clock.has_tempo:
            raise CommandError("no tempo to count bars with: tap it (/stemd/tap), set it (\"tempo 124\"), "
                               "send MIDI clock or JACK transport, or play drums for the estimate")
        if len(self.mixer.pending()) + timed > PENDING_SLOTS:
            raise CommandError(f"{PENDING_SLOTS} commands are already waiting for a boundary; say \"cancel\"")

    def intent(self, text: str, source: str = "") -> Applied:
        """Parse a sentence and apply it; IntentRejected carries the parser's reason."""
        return self.submit(self.parse(text), source, text)

    def parse(self, text: str) -> list[Command]:
        if self.parser is None:
            raise IntentRejected("the intent parser is not available in this daemon")
        return self.parser(text)

    def _deliver(self, command: Command) -> None:
        handler = self.routes.get(command.action)
        if handler is not None:
            handler(command)
        elif self.realtime:
            self.mixer.commands.put(command)
        else:
            self.mixer.apply(command)

    def snapshot(self) -> dict[str, Any]:
        state = self.mixer.snapshot()
        state["model"] = self.model_name
        if self.stats is not None:
            state["daemon"] = self.stats()
        if self.parser_status is not None:
            state["intent"] = self.parser_status()
        return state

    def levels(self) -> dict[str, float]:
        return self.mixer.take_peaks()
