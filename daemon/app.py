"""The daemon's lifecycle: build the audio path, keep the engine and the JACK connection alive, stop
cleanly.

Supervision is one loop on the main thread (ticks of 100 ms): it restarts a dead or hung engine
worker, or lets the warm standby take over (the audio falls back to the delayed dry signal meanwhile,
never silence; worker.py), keeps `output`/`why` in the status true in every state, reconnects to a
JACK server that went away (ports, connections and mixer state come back), saves the mixer state,
and pings the systemd watchdog only while it is itself alive. SIGTERM/SIGINT end the loop; shutdown
saves state, stops the worker, closes the client and removes the shared memory.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jack

from stemd.control.commands import ALL, Action, Command
from stemd.daemon import latency_budget, libjack_output, mixer_state
from stemd.daemon.audio_path import AudioPath
from stemd.daemon.jack_io import JackIO, PortPlan
from stemd.daemon.mixer import Mixer
from stemd.daemon.render_ahead import RenderAhead
from stemd.daemon.recent_stems import CLEARANCE_S, HISTORY_S, recent_stems
from stemd.daemon.ring import SpscRing
from stemd.daemon.rt_callback import RtCallback
from stemd.daemon.sd_notify import Notifier
from stemd.daemon.session import Parser, Session
from stemd.daemon.tempo_estimate import TempoFollower
from stemd.daemon.transport import BeatClock, JackTransport
from stemd.daemon.worker import EngineFailed, EngineProcess, SeparatorLoader, WorkerSpec

log = logging.getLogger(__name__)

MAX_STEMS = 6  # the stem ring is sized for the largest model, so a restart never resizes it
MAX_BLOCK = 8192
OUT_RING_FRAMES = 4 * MAX_BLOCK  # rendered blocks queued for the callback: the lead plus two periods fit
MIC_SECONDS = 5.0
MAX_RATE = 192000
LOAD_TIMEOUT_S = 600.0
HANG_S = 10.0  # a loaded worker silent this long is killed and restarted
RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_S = 60.0  # a worker up this long resets the restart back-off
TICK_S = 0.1
GIL_SWITCH_S = 0.0005
HOUSEKEEPING_S = 1.0


def default_loader(engine: SimpleNamespace) -> SeparatorLoader:
    from stemd.engines.registry import load_separator

    return functools.partial(load_separator, engine.model, model_path=engine.model_path,
                             device=engine.device, backend=engine.backend, fp16=engine.fp16)


class Daemon:
    def __init__(self, config: SimpleNamespace, loader: SeparatorLoader | None = None,
                 parser: Parser | None = None) -> None:
        self.config = config
        self.dry_only = loader is None and config.engine.model == "dry"
        self.loader = loader if loader is not None or self.dry_only else default_loader(config.engine)
        self.state_dir = Path(config.state.dir).expanduser()
        self.notifier = Notifier()
        self.stopping = threading.Event()
        self.state = "starting"
        self._jack_down: str | None = None  # why there is no JACK client now (None: connected)
        self.engine: EngineProcess | None = None
        self.engine_error: str | None = None
        self.model_name = "dry" if self.dry_only else config.engine.model
        self.model_reason = ""
        self.sources: list[str] = []
        self.refine_modes: dict[str, str] = {}
        self.refine_bypassed: dict[str, str] = {}  # stem -> why the worker turned its refiner off
        self.session = Session(Mixer((), 48000), parser=parser)
        self.session.stats = self.stats
        self.osc: Any = None
        self.web: Any = None
        self.midi: Any = None
        self.voice: Any = None
        self.transport: Any = None
        self.tempo_follower: TempoFollower | None = None
        self.conversation: Any = None  # the intent parser with its pronoun context
        jcfg = config.jack
        plan = PortPlan(stem_ports=jcfg.stem_ports, mic=bool(jcfg.connect_mic) or config.voice.enabled,
                        connect_inputs=jcfg.connect_inputs, connect_outputs=jcfg.connect_outputs,
                        connect_mic=jcfg.connect_mic)
        # Exists before start() so other parts can add RT hooks (JACK MIDI, transport) first.
        self.jack = JackIO(path=None, plan=plan, name=jcfg.client_name, server=jcfg.server_name or None)
        self.in_ring = self.stem_ring = self.out_ring = None
        # The mic's copy for the voice recogniser (1 channel at `rate`); lives as long as the daemon.
        self.mic_ring = SpscRing.create(1, round(MIC_SECONDS * MAX_RATE)) if plan.mic else None
        self.rate = 0
        self.latency_plan: dict[str, Any] = {}  # how L was decided (auto's measurement, or the config)
        self._restart_at: float | None = None
        self._restart_index = 0
        self._ready_since = 0.0
        self._next_housekeeping = 0.0
        self._next_watchdog = 0.0
        self._next_reconnect = 0.0
        self._saved_version = -1
        self._libjack: Any = ()  # libjack's queued messages once started (libjack_output)

    # ---- start ----------------------------------------------------------------------------------

    def start(self) -> "Daemon":
        """Join JACK (waiting for the server if need be), load the engine, go live, notify READY."""
        # The process callback is compiled and never waits for the GIL, but the render thread renders
        # only a few periods ahead of it. CPython hands the GIL to a waiting thread only every switch
        # interval (5 ms by default, about one 256-frame period), so a busy control thread (OSC,
        # intent parsing, voice) could eat the render thread's slack.
        sys.setswitchinterval(GIL_SWITCH_S)
        self._libjack = libjack_output.collect()
        self._wait_for_jack()
        if self.stopping.is_set():
            return self
        self._build(self.jack.client.samplerate)
        if self.stopping.is_set():
            return self
        if self.sources and self.config.engine.refiner:
            self.session.on(Action.REFINE, self._refine)
        self._attach_services()
        self.jack.connect()
        if self.jack.renderer is not None:
            self.jack.renderer.start()
        self._start_services()
        self.state = self._running_state()
        self.notifier.ready(self.status_line())
        log.info("stemd running: %s", self.status_line())
        return self

    def _wait_for_jack(self) -> None:
        self.state, self._jack_down = "waiting for JACK", "no JACK server yet"
        warned = False
        while not self.stopping.is_set():
            try:
                self.jack.open()
                self._jack_down = None
                return
            except jack.JackOpenError:
                if not warned:
                    log.warning("no JACK server%s yet; retrying every %.1f s",
                                f" named {self.jack.server}" if self.jack.server else "",
                                self.config.jack.reconnect_interval_s)
                    warned = True
                self.notifier.notify(f"STATUS={self.state}")
                self.stopping.wait(self.config.jack.reconnect_interval_s)

    def _build(self, rate: int) -> None:
        """Rings, engine, mixer and audio path for sample rate `rate` (again after a rate change)."""
        audio = self.config.audio
        self.rate = rate
        self.latency_plan = {"mode": "fixed", "reason": "set by [audio] latency_ms (no engine)"}
        latency = round(audio.latency_ms * rate / 1000.0)  # 0 = auto: the worker measures what it needs
        crossfade = latency_budget.dry_crossfade(audio.dry_crossfade_ms, rate)
        capacity = (latency or latency_budget.frames(latency_budget.MAX_AUTO_MS, rate)) + MAX_BLOCK + rate
        self.in_ring = SpscRing.create(2, capacity)
        if not self.dry_only:
            # Room for the intent parser to read the last seconds of every stem (recent_stems.py)
            # without coming near what the callback reads; the callback's work does not change.
            self.stem_ring = SpscRing.create(2 * MAX_STEMS, capacity + round((HISTORY_S + 2 * CLEARANCE_S) * rate))
            latency = self._start_engine(rate, latency, crossfade)
        if not latency:
            latency = latency_budget.frames(latency_budget.TARGET_MS, rate)
            self.latency_plan = {"mode": "auto", "reason": f"no engine: the {latency_budget.TARGET_MS:.0f} ms default"}
        mixer = self._make_mixer(rate, latency)
        self.session.mixer = mixer
        if self.transport is not None:  # a rate change made a new mixer and beat clock
            self.transport.clock = self.session.beat_clock = mixer.clock
        self.session.model_name = self.model_name
        self.session.realtime = bool(self.sources)
        self.jack.plan.stems = tuple(self.sources)
        path = AudioPath(latency, crossfade, self.in_ring, self.stem_ring if self.sources else None,
                         mixer if self.sources else None, self.jack.plan.stem_ports, MAX_BLOCK)
        self.jack.path = path
        self.jack.rt = RtCallback(self.in_ring, self.mic_ring, latency, latency_budget.render_fade(rate))
        if self.sources:
            self.out_ring = SpscRing.create(path.channels, OUT_RING_FRAMES)
            self.jack.rt.render_into(self.out_ring, mixer.dry_level)
        self.jack.renderer = RenderAhead(self.jack.rt, path, self.out_ring, rate, self.jack.hooks)
        if self.sources:
            period = self.jack.client.blocksize
            if latency_budget.render_lead(rate, period, latency) < latency_budget.render_fade(rate) + 2 * period:
                log.warning("latency %.0f ms is too short to render ahead of %d-frame periods: the output "
                            "stays dry; raise [audio] latency_ms", 1000.0 * latency / rate, period)

    def _start_engine(self, rate: int, latency: int, crossfade: int) -> int:
        """Load the model; returns L in frames (auto's pick once loaded; 0 when auto has no engine)."""
        e = self.config.engine
        spec = WorkerSpec(
            loader=self.loader, in_ring=self.in_ring.spec, stem_ring=self.stem_ring.spec, rate=rate,
            latency=latency, window_s=e.window_s or None, hop_s=e.hop_ms / 1000.0 or None,
            right_s=e.right_context_ms / 1000.0 or None, threads=e.threads, refine_default=e.refine_default,
            refiner=e.refiner, refine_budget=e.refine_budget,
            period=self.jack.client.blocksize, crossfade=crossfade, nice=e.nice, policy=e.policy, cpus=e.cpus,
            render_lead=latency_budget.render_lead(rate, self.jack.client.blocksize),
        )
        self.engine = EngineProcess(spec, standby=e.standby)
        self.state = "loading model"
        self.notifier.notify(f"STATUS=loading {self.model_name}")
        self.engine.start()
        try:
            info = self.engine.wait_ready(LOAD_TIMEOUT_S, cancel=self.stopping)
        except EngineFailed as exc:
            self._engine_failed(str(exc))
            return latency
        if info is None:  # asked to stop while loading
            return latency
        if len(info["sources"]) > MAX_STEMS:
            self._engine_failed(f"{info['model']} has {len(info['sources'])} stems; at most {MAX_STEMS} are supported")
            return latency
        self.sources = list(info["sources"])
        self.model_name = info["model"]
        self.model_reason = info.get("chosen_because", "")  # why engine.model = auto chose it
        if self.model_reason:
            log.info("model %s (%s)", self.model_name, self.model_reason)
        self.refine_modes = {s: e.refine_default for s in self.sources}
        self._ready_since = time.monotonic()
        plan = info["plan"]
        # Fixed from now on: a restarted worker runs the same geometry at the same L, uncalibrated.
        self.engine.spec = dataclasses.replace(spec, latency=plan.latency, hop_s=plan.hop_s, right_s=plan.right_s,
                                               calibrate=False)
        self.latency_plan = plan.as_dict(rate)
        log.log(logging.INFO if plan.fits else logging.WARNING, plan.reason)
        return plan.latency

    def _engine_failed(self, reason: str) -> None:
        """No model: run dry (the music keeps playing) and say why, once; no restart loop."""
        self.engine_error = reason
        log.error("engine unavailable, running dry: %s", reason)
        if self.engine is not None:
            self.engine.stop_all()
        self.engine = None
        self.sources = []
        self.session.realtime = False

    def _make_mixer(self, rate: int, latency: int) -> Mixer:
        m, t = self.config.mixer, self.config.transport
        clock = BeatClock(rate, t.bpm, t.beats_per_bar, phrase_bars=t.phrase_bars)
        self.session.quantize = t.quantize
        # MIDI clock and JACK transport keep time with the input, which the performer hears L later.
        clock.input_latency = latency
        mixer = Mixer(self.sources, rate, MAX_BLOCK, ramp_ms=m.ramp_ms, fade_beats=m.fade_beats,
                      max_gain_db=m.max_gain_db, clock=clock, loop_beats=m.loop_beats,
                      loop_max_s=m.loop_max_s, loop_crossfade_ms=m.loop_crossfade_ms, drum_parts=m.drum_parts)
        self._follow_tempo(mixer)
        if self.config.state.restore and self.sources:
            restored = mixer_state.restore(self.state_dir, mixer)
            if restored:
                log.info("restored the saved mixer state (%d settings)", restored)
        self._saved_version = mixer.version
        return mixer

    def _follow_tempo(self, mixer: Mixer) -> None:
        """The onset tempo estimate for this mixer's drums ([transport] estimate), replacing any old one."""
        if self.tempo_follower is not None:
            self.tempo_follower.stop()
        self.tempo_follower = TempoFollower.from_config(mixer.clock, mixer.loops, self.config.transport)
        if self.tempo_follower is not None:
            self.tempo_follower.start()

    # ---- control services: each runs when configured; one that fails to start is
    # reported and the daemon runs without it ------------------------------------------------------

    def _attach_services(self) -> None:
        """What must exist before the client activates: the parser, the RT hooks (JACK transport, JACK MIDI)."""
        c = self.config
        if self.session.parser is None:
            from stemd.control.intent import IntentParser
            from stemd.control.intent.context import Conversation

            audio = self.recent_stems if self.sources else None  # dry: no stems to listen to
            self.conversation = Conversation(IntentParser.from_config(c, self.sources or None, audio))
            self.conversation.attach(self.session)
        self.transport = JackTransport(self.session.mixer.clock)
        self.session.beat_clock = self.session.mixer.clock
        self.jack.add_rt_hook(self.transport)
        midi_wanted = c.midi.jack_ports or c.midi.alsa_in or c.midi.alsa_out
        if midi_wanted:
            self._service("MIDI", self._make_midi)

    def _make_midi(self) -> None:
        from stemd.control.midi.controller import MidiController

        self.midi = MidiController.from_config(self.config, self.session)
        if self.midi.jack_hook is not None:
            self.jack.add_rt_hook(self.midi.jack_hook)

    def _start_services(self) -> None:
        c = self.config
        if c.osc.enabled:
            self._service("OSC", self._start_osc)
        if c.web.enabled:
            self._service("web", self._start_web)
        if self.midi is not None:
            self._service("MIDI", self.midi.start)
        if c.voice.enabled and self.mic_ring is not None:
            self._service("voice", self._start_voice)

    @staticmethod
    def _service(name: str, start: Any) -> None:
        try:
            start()
        except Exception as exc:  # a control surface that cannot start must not stop the music
            log.error("%s control not started: %s: %s", name, type(exc).__name__, exc)

    def _start_osc(self) -> None:
        from stemd.control.osc.server import OscServer

        self.osc = OscServer(self.session, self.config.osc, self.state_dir).start()

    def _start_web(self) -> None:
        from stemd.control.phrases import load_phrases
        from stemd.control.web import WebRemote

        self.web = WebRemote(self.session, self.config.web, load_phrases(self.config.web.phrases)).start()

    def _start_voice(self) -> None:
        from stemd.control.voice import VoiceListener

        self.voice = VoiceListener(self.session, self.config.voice, self.mic_ring, self.rate)
        if self.osc is not None:  # started first: its feedback reports voice results, rejections included
            self.osc.feedback.follow_voice(self.voice)
        self.voice.start()

    def recent_stems(self) -> tuple[dict[str, Any], int]:
        """The last seconds of every stem, for the parser's audio-aware routing (any thread)."""
        return recent_stems(self.stem_ring, self.sources, self.rate)

    def _refine(self, command: Command) -> None:
        stems = self.sources if command.stem == ALL else [command.stem]
        for stem in stems:
            self.refine_modes[stem] = command.mode
            self.refine_bypassed.pop(stem, None)
            if self.engine is not None:
                self.engine.send("refine", stem, command.mode)

    # ---- supervision ------------------------------------------------------------------------------

    def run(self) -> None:
        """Supervise until SIGTERM/SIGINT or `stop()`."""
        while not self.stopping.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # supervision must outlive any one failure; the audio runs regardless
                log.exception("supervision step failed; continuing")

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

    def tick(self) -> None:
        now = time.monotonic()
        if self.jack.server_gone.is_set():
            self._reconnect(now)
        self._log_libjack()
        self._supervise_engine(now)
        if self._jack_down is None:
            self.state = self._running_state()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_S
            self.jack.connect_missing()
            self.jack.remember_connections()
            self._save_state()
        interval = self.notifier.watchdog_interval_s
        if interval is not None and now >= self._next_watchdog:
            self._next_watchdog = now + interval
            self.notifier.watchdog(self.status_line())

    def _output(self) -> tuple[str, str]:
        """What the performer hears now — "separated", "dry" or "off" (no JACK client: nothing) — and
        why it is not separated ("" when it is). The audio path's wet flag is the callback's own
        answer, but it stands still while JACK is gone, so JACK is asked about first."""
        if self._jack_down is not None or self.jack.server_gone.is_set():
            return "off", self._jack_down or "JACK server gone"
        if self.dry_only:
            return "dry", "engine.model = dry"
        if self.engine is None:
            return "dry", "engine failed"
        if not self.engine.ready:
            return "dry", "engine restarting" if self.engine.starts > 1 else "engine loading"
        renderer = self.jack.renderer
        if renderer is not None and not renderer.wet and self.jack.path.stats.wet:
            return "dry", "render thread late"
        return ("separated", "") if self.jack.path.stats.wet else ("dry", "engine late")

    def _log_libjack(self) -> None:
        """libjack's messages since the last tick go to the log, except during an outage: then they
        only say again that the server is gone (the outage has its own line)."""
        while self._libjack:
            message = self._libjack.popleft()
            if self._jack_down is None and not self.jack.server_gone.is_set():
                log.warning("libjack: %s", message)

    def _running_state(self) -> str:
        if self.dry_only:
            return "running (dry: engine.model = dry)"
        output, why = self._output()
        return "running" if output == "separated" else f"running dry ({why})"

    def _supervise_engine(self, now: float) -> None:
        engine = self.engine
        if engine is None:
            return
        for message in engine.messages():
            kind = message[0]
            if kind == "ready":
                self._engine_ready(message[1], now)
            elif kind == "failed":
                self._engine_failed(message[1])
                return
            elif kind == "error":
                log.warning("engine: %s", message[1])
            elif kind == "refined":
                log.info("refiner for %s: %s", message[1], message[2])
            elif kind == "refine_bypassed":
                log.warning("refiner for %s: %s", message[1], message[2])
                self.refine_bypassed[message[1]] = message[2]
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                engine.start()
            return
        if not engine.alive:
            self._worker_lost(now, f"exited with code {engine.process.exitcode if engine.process else None}")
        elif engine.ready and now - engine.stats.get("heartbeat") > HANG_S:
            engine.process.kill()
            engine.process.join(1.0)
            self._worker_lost(now, f"no heartbeat for {HANG_S:.0f} s")
        else:
            engine.keep_standby(now)

    def _worker_lost(self, now: float, why: str) -> None:
        """The loaded standby takes over at once; without one, a fresh worker after a back-off."""
        if self.engine.take_over(why):
            return
        self._schedule_restart(now, why)

    def _schedule_restart(self, now: float, why: str) -> None:
        if now - self._ready_since > STABLE_S:
            self._restart_index = 0
        delay = RESTART_DELAYS_S[min(self._restart_index, len(RESTART_DELAYS_S) - 1)]
        self._restart_index += 1
        log.error("engine worker %s; playing dry, restarting in %.1f s", why, delay)
        self.engine.stop(timeout=1.0)
        self._restart_at = now + delay

    def _engine_ready(self, info: dict[str, Any], now: float) -> None:
        if list(info["sources"]) != self.sources:
            self._engine_failed(f"the restarted engine has stems {info['sources']}, not {self.sources}")
            return
        self._ready_since = now
        log.info("engine worker back (pid %d); separation resumes", info["pid"])
        for stem, mode in self.refine_modes.items():
            if mode != self.config.engine.refine_default:
                self.engine.send("refine", stem, mode)

    def _reconnect(self, now: float) -> None:
        if now < self._next_reconnect:
            return
        if self._jack_down is None:
            log.warning("JACK server gone; playing nothing until it is back (retrying every %.1f s)",
                        self.config.jack.reconnect_interval_s)
            self.jack.close()
            self.state = self._jack_down = "JACK server gone"
        self._next_reconnect = now + self.config.jack.reconnect_interval_s
        try:
            client = self.jack.open()
        except jack.JackOpenError:
            return
        if client.samplerate != self.rate:
            log.warning("JACK rate changed from %d to %d Hz; rebuilding the audio path", self.rate, client.samplerate)
            self._save_state()
            self._teardown_engine()
            self._build(client.samplerate)
            self.jack.connect()
            if self.jack.renderer is not None:
                self.jack.renderer.start()
        else:
            self.jack.connect()
        self._jack_down = None
        self.state = self._running_state()
        log.info("reconnected to JACK; ports, connections and mixer state restored")

    # ---- state and status -------------------------------------------------------------------------

    def _save_state(self) -> None:
        mixer = self.session.mixer
        if not self.sources or mixer.version == self._saved_version:
            return
        try:
            mixer_state.save(self.state_dir, mixer)
            self._saved_version = mixer.version
        except OSError as exc:
            log.warning("cannot save the mixer state to %s: %s", self.state_dir, exc)

    def stats(self) -> dict[str, Any]:
        """Daemon figures for `stemd status` (Session.snapshot includes them)."""
        path = self.jack.path
        output, why = self._output()
        out: dict[str, Any] = {"state": self.state, "output": output, "why": why, "model": self.model_name,
                               "rate": self.rate, "model_reason": self.model_reason}
        if path is not None:
            p, rt = path.stats, self.jack.rt
            client = self.jack.client if self._jack_down is None and not self.jack.server_gone.is_set() else None
            out.update(
                latency_ms=1000.0 * path.latency / self.rate, latency_frames=path.latency,
                latency=self.latency_plan,
                period=client.blocksize if client is not None else None,
                dsp_load=client.cpu_load() if client is not None else None,
                xruns=self.jack.xruns.count, underruns=p.underruns + rt.late,
                hard_switches=p.hard_switches + rt.hard_switches,
                periods=rt.periods, render=self._render_stats(),
            )
        out["voice"] = self.voice.status() if self.voice is not None else None  # None: started without voice
        if self.web is not None:
            out["web"] = self.web.stats()
        engine = self.engine
        out["engine"] = {"error": self.engine_error}
        if engine is not None:
            w = engine.stats
            margin = path.take_min_margin() if path is not None else -1
            out["engine"].update(
                loaded=engine.ready, pid=int(w.get("pid")), starts=engine.starts,
                restarts=max(0, engine.starts - 1), rtf=w.get("rtf"), compute_ms=w.get("compute_ms"),
                streaming_latency_ms=1000.0 * w.get("latency_frames") / self.rate,
                headroom_ms=1000.0 * margin / self.rate if margin >= 0 else None,  # lowest since last look
                backlog_ms=1000.0 * (self.in_ring.written - self.in_ring.read) / self.rate if self.in_ring else None,
                resyncs=int(w.get("resyncs")), priority=(engine.info or {}).get("priority"),
                memory=engine.memory(), standby=engine.standby_status(),
            )
            if self.refine_modes:
                out["engine"]["refine"] = {"modes": dict(self.refine_modes), "bypassed": dict(self.refine_bypassed),
                                           "load": w.get("refine_load"), "ms": w.get("refine_ms")}
        return out

    def _render_stats(self) -> dict[str, Any] | None:
        """The render thread: how far ahead it renders, and how often the callback had to play dry
        because it was late (None in dry mode: nothing is rendered)."""
        renderer = self.jack.renderer
        if renderer is None or self.out_ring is None:
            return None
        client = self.jack.client if self._jack_down is None and not self.jack.server_gone.is_set() else None
        lead = latency_budget.render_lead(self.rate, client.blocksize, self.jack.path.latency) if client else None
        return {"lead_ms": 1000.0 * lead / self.rate if lead else None, "late_periods": self.jack.rt.late,
                "skips": renderer.skips}

    def status_line(self) -> str:
        s = self.stats()
        rtf = s["engine"].get("rtf")
        return (f"{s['state']}; model {s['model']}; latency {s.get('latency_ms', 0):.0f} ms; "
                f"xruns {s.get('xruns', 0)}; underruns {s.get('underruns', 0)}"
                + (f"; engine RTF {rtf:.2f}" if rtf else ""))

    # ---- stop -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Clean shutdown (idempotent): state saved, OSC, JACK, worker and shared memory released."""
        self.stopping.set()
        self.notifier.stopping()
        for service in ("osc", "web", "midi", "voice", "tempo_follower"):
            running = getattr(self, service)
            if running is not None:
                running.stop()
                setattr(self, service, None)
        self.jack.close()
        libjack_output.release()
        self._save_state()
        self._teardown_engine()
        if self.mic_ring is not None:
            self.mic_ring.close()
            self.mic_ring = None

    def _teardown_engine(self) -> None:
        if self.jack.renderer is not None:
            self.jack.renderer.stop()
            self.jack.renderer = None
        if self.engine is not None:
            self.engine.stop_all()
            self.engine = None
        for ring in (self.in_ring, self.stem_ring, self.out_ring):
            if ring is not None:
                ring.close()
        self.in_ring = self.stem_ring = self.out_ring = None
