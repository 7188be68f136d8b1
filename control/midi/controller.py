"""The MIDI controller thread: incoming controls → Commands through the session; state → LEDs.

It runs off the audio thread and polls its input rings every `poll_s` (1 ms): the JACK process
callback may not signal anyone (no locks), and polling bounds the added latency to one poll. Per
input it keeps a stream parser and a clock follower. Bindings decide what a control does (see
mapping.py); the session decides whether it may (all control sources share its one door), and its
listeners tell this thread when state changed, so LEDs and soft takeover follow changes made from
OSC or voice too. Nothing a controller sends can stop the thread: unknown or refused input is
counted and logged, never raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from stemd.control.commands import ALL, Action, Command, CommandError
from stemd.control.midi import messages as mm
from stemd.control.midi.clock import MidiClock
from stemd.control.midi.jack_ports import JackMidiPorts
from stemd.control.midi.learn import LearnStore
from stemd.control.midi.mapping import Binding, bindings_from_entries, load_map_file, merge, opposite
from stemd.control.midi.ring import EventRing
from stemd.control.midi.rtmidi_ports import API_ALSA, MidiPortError, RtMidiPorts
from stemd.daemon.command_queue import QueueFull
from stemd.daemon.session import Applied, Session

log = logging.getLogger("stemd.midi")

TAKEOVER_STEPS = 2.0  # a fader picks up the level when it comes this close (in CC steps) or crosses it
WATCH_S = 0.05  # how often the JACK ports are checked for a reconnect or a newly connected controller
CONNECT_RETRY_S = 1.0  # how often configured connections that failed are tried again
Key = tuple[str, int, int]
_TRANSPORT = {mm.START: "start", mm.CONTINUE: "continue", mm.STOP: "stop"}


@dataclass
class _Input:
    ring: EventRing
    parser: mm.Parser
    clock: MidiClock | None


class MidiController:
    def __init__(
        self,
        session: Session,
        bindings: Iterable[Binding] = (),
        learn_store: LearnStore | None = None,
        follow_clock: bool = True,
        poll_s: float = 0.001,
    ) -> None:
        self.session = session
        self.stats: Counter[str] = Counter()
        self._store = learn_store
        self._learned = {b.key: b for b in (learn_store.load() if learn_store else ())}
        self._bindings = merge(bindings, self._learned.values())
        self._follow_clock = follow_clock
        self._poll_s = poll_s
        self._inputs: list[_Input] = []
        self._outputs: list[Callable[[bytes], None]] = []
        self._closers: list[Callable[[], None]] = []
        self._jack: JackMidiPorts | None = None
        self._generation = 0
        self._armed: Command | None = None
        self._toggled: dict[Key, bool] = {}  # state of toggles whose action the snapshot does not show
        self._engaged: dict[Key, bool] = {}  # soft takeover: fader has picked up the level
        self._fader_pos: dict[Key, int] = {}  # last value each fader sent
        self._leds: dict[Key, int] = {}  # last value sent to each feedback binding
        self._own: Key | None = None  # the fader whose command is being submitted right now
        self._dirty = True
        self._version = -1
        self._next_check = 0.0
        self._next_connect = 0.0
        self._listeners = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        session.add_listener(self._on_applied)

    @classmethod
    def from_config(cls, config: SimpleNamespace, session: Session) -> "MidiController":
        """The daemon's MIDI service per `[midi]`: map files, then config entries, then learned
        bindings; JACK ports (register `jack_hook` on the client); ALSA ports where configured, a
        warning where they cannot open. Sets `session.midi`."""
        m = config.midi
        layers = [load_map_file(name) for name in m.map_files]
        layers.append(bindings_from_entries(m.map, "config [midi]"))
        controller = cls(session, merge(*layers).values(), LearnStore(config.state.dir), m.clock)
        if m.jack_ports:
            controller.attach_jack(JackMidiPorts(m.connect_in, m.connect_out))
        if m.alsa_in or m.alsa_out:
            try:
                controller.attach_rtmidi(RtMidiPorts(API_ALSA, m.alsa_in, m.alsa_out, config.jack.client_name))
            except MidiPortError as exc:
                log.warning("MIDI: ALSA ports not opened: %s", exc)
        session.midi = controller
        return controller

    # ---- wiring ---------------------------------------------------------------------------------

    def attach_jack(self, hook: JackMidiPorts) -> None:
        self._jack = hook
        self.add_input(hook.inbox)
        self.add_output(hook.send)

    @property
    def jack_hook(self) -> JackMidiPorts | None:
        """The object the daemon's JACK client registers (`register`, `process`)."""
        return self._jack

    def attach_rtmidi(self, ports: RtMidiPorts) -> None:
        self.add_input(ports.inbox)
        if ports.has_output:
            self.add_output(ports.send)
        self._closers.append(ports.close)

    def add_input(self, ring: EventRing) -> None:
        clock = MidiClock(self._tempo, self._transport) if self._follow_clock else None
        self._inputs.append(_Input(ring, mm.Parser(), clock))

    def add_output(self, send: Callable[[bytes], None]) -> None:
        self._outputs.append(send)
        self._leds.clear()

    @property
    def bindings(self) -> dict[Key, Binding]:
        return dict(self._bindings)

    # ---- service interface (OSC /stemd/midi/learn) ----------------------------------------------

    def learn(self, command: Command) -> None:
        """Bind the next control that moves to `command` and persist it; a new call replaces the last."""
        self._armed = command

    @property
    def learning(self) -> Command | None:
        return self._armed

    # ---- thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stemd-midi", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for close in self._closers:
            close()
        self._closers.clear()
        self.session.remove_listener(self._on_applied)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll()
            except Exception:  # a bug must not end MIDI control for the rest of the show
                log.exception("MIDI: error while handling input")

    def poll(self) -> int:
        """One pass: every pending input event, then connections and LEDs. Returns messages handled."""
        handled = 0
        for source in self._inputs:
            event = source.ring.get()
            while event is not None:
                stamp, data, gap = event
                if gap:
                    source.parser.reset()
                for message in source.parser.feed(data):
                    self._handle(message, stamp, source)
                    handled += 1
                    # Counted once handled, so whoever waits on the count sees its commands submitted.
                    self.stats["messages"] += 1
                event = source.ring.get()
        hook = self._jack
        now = time.monotonic()
        if hook is not None and now >= self._next_check:
            self._next_check = now + WATCH_S
            listeners = hook.listeners
            if hook.generation != self._generation or listeners > self._listeners:
                self._generation = hook.generation
                self._leds.clear()  # a new server or a newly plugged controller: send every LED
                self._dirty = True
            self._listeners = listeners
            if now >= self._next_connect:
                self._next_connect = now + CONNECT_RETRY_S
                hook.connect_pending()
        version = self.session.mixer.version
        if self._dirty or version != self._version:
            self._dirty = False
            self._version = version
            self._refresh_leds()
        return handled

    # ---- input ----------------------------------------------------------------------------------

    def _handle(self, message: mm.Message, stamp: float, source: _Input) -> None:
        kind = message.kind
        if kind == mm.CLOCK or kind in _TRANSPORT:
            if source.clock is not None:
                if kind == mm.CLOCK:
                    source.clock.tick(stamp)
                else:
                    source.clock.transport(_TRANSPORT[kind])
            return
        if kind in (mm.NOTE_ON, mm.NOTE_OFF):
            key, value = ("note", message.channel, message.data1), message.data2 if kind == mm.NOTE_ON else 0
        elif kind == mm.CONTROL_CHANGE:
            key, value = ("cc", message.channel, message.data1), message.data2
        else:
            self.stats["ignored"] += 1
            return
        armed = self._armed
        if armed is not None and (value > 0 or key[0] == "cc"):
            self._armed = None
            self._bind_learned(key, armed, value)
            return
        binding = self._bindings.get(key)
        if binding is None:
            self.stats["unmapped"] += 1
            return
        self.stats["mapped"] += 1
        if binding.mode == "fader":
            self._fader(binding, value)
            return
        pressed = value >= 64 if binding.type == "cc" else value > 0
        if binding.mode == "trigger":
            if pressed:
                self._submit(binding)
        elif binding.voice is not None:  # push-to-talk (momentary only)
            self._talk(binding, pressed)
        elif binding.mode == "momentary":
            self._submit(binding, binding.command if pressed else opposite(binding.command))
        elif pressed:  # toggle: act on the press, the release means nothing
            active = self._active(binding, self.session.snapshot())
            if self._submit(binding, opposite(binding.command) if active else binding.command):
                self._toggled[binding.key] = not active

    def _fader(self, binding: Binding, value: int) -> None:
        key = binding.key
        previous = self._fader_pos.get(key)
        self._fader_pos[key] = value
        if binding.soft_takeover and not self._engaged.get(key):
            level = self._level_db(binding.command.stem, self.session.snapshot())
            if level is not None:
                target = binding.db_to_value(level)
                crossed = previous is not None and (previous - target) * (value - target) <= 0
                if abs(value - target) > TAKEOVER_STEPS and not crossed:
                    self.stats["takeover_waiting"] += 1
                    return
        self._engaged[key] = True
        self._leds[key] = value  # a motor fader is where it was moved to: no echo back
        self._own = key
        try:
            self._submit(binding, binding.fader_command(value))
        finally:
            self._own = None

    def _submit(self, binding: Binding, command: Command | None = None) -> bool:
        """Through the session's one door; a refusal is logged and counted, never raised."""
        try:
            if binding.intent is not None:
                self.session.intent(binding.intent, source="midi")
            else:
                self.session.submit([self.session.direct(command or binding.command)], source="midi")
        except (CommandError, QueueFull) as exc:
            self.stats["refused"] += 1
            log.warning("MIDI %s: %s", binding.describe(), exc)
            return False
        return True

    def _talk(self, binding: Binding, held: bool) -> None:
        """Push-to-talk: voice listens while the button is held. Without voice control the press is
        counted and logged (the release is not: one press, one line), never raised."""
        voice = self.session.voice
        if voice is None:
            if held:
                self.stats["voice_absent"] += 1
                log.warning("MIDI %s: push-to-talk pressed, but this daemon runs without voice control",
                            binding.describe())
            return
        try:
            voice.listen(held)
        except CommandError as exc:  # voice is off (no model, no mic): the reason is in the exception
            if held:
                self.stats["refused"] += 1
                log.warning("MIDI %s: %s", binding.describe(), exc)

    # ---- learn ----------------------------------------------------------------------------------

    def _bind_learned(self, key: Key, command: Command, value: int) -> None:
        kind, channel, number = key
        if kind == "cc" and command.action is Action.GAIN and command.stem is not None:
            binding = Binding(kind, channel, number, "fader", replace(command, db=0.0, absolute=True))
            self._fader_pos[key] = value
        elif opposite(command) is not None:
            binding = Binding(kind, channel, number, "toggle", command, led=True)
        else:
            binding = Binding(kind, channel, number, "trigger", command)
        self._bindings[key] = self._learned[key] = binding
        self._engaged.pop(key, None)
        self._leds.pop(key, None)
        self._toggled.pop(key, None)
        self._dirty = True
        self.stats["learned"] += 1
        log.info("MIDI learn: %s → %s (%s)", binding.describe(), command.to_json(), binding.mode)
        if self._store is not None:
            try:
                self._store.save(self._learned.values())
            except OSError as exc:
                log.warning("MIDI learn: cannot save %s: %s (binding kept until restart)", self._store.path, exc)

    # ---- state, feedback, clock -----------------------------------------------------------------

    def _on_applied(self, applied: Applied) -> None:
        """Session listener (any thread): LEDs need a look; faders whose level someone else set must
        pick it up again before they act (soft takeover)."""
        self._dirty = True
        for command in applied.commands:
            if command.action not in (Action.GAIN, Action.RESET):
                continue
            for binding in list(self._bindings.values()):  # a copy: learn may add one meanwhile
                key = binding.key
                if binding.mode == "fader" and key != self._own and (
                        command.action is Action.RESET or binding.command.stem == command.stem):
                    self._engaged[key] = False

    def _active(self, binding: Binding, snapshot: dict[str, Any]) -> bool:
        """Whether the state `binding.command` establishes holds now: from the mixer where it shows
        it, else from this controller's own last toggle (drum-part loops, refine, stems the model lacks)."""
        command = binding.command
        stems = snapshot.get("stems", {})
        names = list(stems) if command.stem == ALL else [command.stem]
        a = command.action
        if names and all(n in stems for n in names):
            if a is Action.MUTE or (a is Action.FADE and command.direction == "out"):
                return all(stems[n]["muted"] for n in names)
            if a is Action.UNMUTE or a is Action.FADE:
                return not any(stems[n]["muted"] for n in names)
            if a is Action.SOLO:
                return all(stems[n]["soloed"] for n in names)
            if a is Action.UNSOLO:
                return not any(stems[n]["soloed"] for n in names)
            if a in (Action.LOOP, Action.UNLOOP) and command.part is None and all("loop" in stems[n] for n in names):
                looping = [bool(stems[n]["loop"]) for n in names]
                return all(looping) if a is Action.LOOP else not any(looping)
        return self._toggled.get(binding.key, False)

    @staticmethod
    def _level_db(stem: str | None, snapshot: dict[str, Any]) -> float | None:
        if stem == ALL:
            return snapshot.get("master_db")
        state = snapshot.get("stems", {}).get(stem)
        return None if state is None else state["gain_db"]

    def _refresh_leds(self) -> None:
        feedback = [b for b in self._bindings.values() if b.led]
        if not feedback or not self._outputs:
            return
        snapshot = self.session.snapshot()
        for binding in feedback:
            key = binding.key
            if binding.mode == "fader":
                if self._engaged.get(key) and key in self._leds:
                    continue  # the fader is in control: its own position is the truth, no echo
                level = self._level_db(binding.command.stem, snapshot)
                if level is None:
                    continue
                value = round(binding.db_to_value(level))
            else:
                value = binding.led_on if self._active(binding, snapshot) else binding.led_off
            if self._leds.get(key) != value:
                self._leds[key] = value
                self._send(binding, value)

    def _send(self, binding: Binding, value: int) -> None:
        status = (mm.NOTE_ON if binding.type == "note" else mm.CONTROL_CHANGE) | (binding.channel - 1)
        data = bytes((status, binding.number, value))
        for send in self._outputs:
            send(data)
        self.stats["feedback"] += 1

    def _tempo(self, bpm: float) -> None:
        clock = self.session.beat_clock
        if clock is not None and hasattr(clock, "set_tempo"):
            clock.set_tempo(bpm, "midi")  # the beat clock ranks MIDI clock above every other source
            return
        try:
            self.session.submit([Command(Action.TEMPO, bpm=bpm)], source="midi-clock")
        except (CommandError, QueueFull) as exc:
            log.warning("MIDI clock: tempo %.2f not applied: %s", bpm, exc)

    def _transport(self, event: str) -> None:
        clock = self.session.beat_clock
        if clock is not None and hasattr(clock, "transport"):
            clock.transport(event)
