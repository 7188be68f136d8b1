"""The separation engine in its own process, fed and drained through shared-memory rings.

Model work (torch, numpy, the GIL) never runs in the daemon process, so it can never stall the JACK
thread; a crash or a hang here costs separated audio for a moment, never sound. The worker reads the
input ring from where the input is now, runs `StreamingSeparator`, and writes stem frame p as the
stems of input frame p (dropping the first `latency_samples` of warm-up output), so the RT side
needs no timestamps. When it falls more than L behind — its output would be late anyway — it skips to
the present and resets the stream rather than separate audio nobody will hear.

A started worker (a crashed one's replacement included) picks up where the stem ring stops when
the input since then is still in the input ring and the backlog is under L: it separates that backlog
at once, a hop at a time, so the stems it writes can arrive before the audio path needs them and a
crash may never be heard. Otherwise it starts at the present.

A *standby* worker loads its model, then waits (no rings touched, nearly no CPU) until it is told to
take over from a dead one: recovery costs one supervision tick instead of a model load.

Parent → worker (pipe): ("refine", stem, mode), ("shutdown",); to a standby: ("activate",).
Worker → parent (pipe): ("ready", info), ("failed", reason), ("refined", stem, mode), ("error", reason),
("refine_bypassed", stem, reason) when the refiner turns a stem off to stay within its share of real time;
a standby sends ("standby", info) once loaded, and ("ready", info) after it is activated.
Statistics go through a small shared array (`WorkerStats`) the parent reads at any time.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

import numpy as np

from stemd.daemon import latency_budget
from stemd.daemon.latency_budget import Plan
from stemd.daemon.proc_memory import memory_mb
from stemd.daemon.ring import RingSpec, SpscRing
from stemd.daemon.worker_priority import describe as describe_priority
from stemd.daemon.worker_priority import Placement, lower_priority, placement, usable_cpus

log = logging.getLogger(__name__)

SeparatorLoader = Callable[[], Any]  # returns an engines.separator.Separator; must be picklable
IDLE_S = 0.002  # poll interval while waiting for input (well under one 256-frame period at 48 kHz)
STANDBY_POLL_S = 0.1  # a standby's heartbeat interval while it waits to be activated
STANDBY_RETRY_S = 5.0  # a standby that died or failed to load is started again after this long
STANDBY_AFTER_TAKEOVER_S = 2.0  # the next standby loads once the new worker has caught up, not against it
WATCH_S = 0.05
MEMORY_EVERY_S = 1.0  # status is read 10 times a second (OSC feedback); /proc is read at most once a second  # the watcher's wait when there is nothing to watch

_FIELDS = ("heartbeat", "loaded", "compute_ms", "rtf", "latency_frames", "resyncs", "frames", "pid",
           "refine_ms", "refine_load")


class WorkerStats:
    """Shared float64 fields written by the worker, read by the daemon (status, watchdog)."""

    def __init__(self, ctx: Any) -> None:
        self.array = ctx.RawArray("d", len(_FIELDS))

    def get(self, name: str) -> float:
        return self.array[_FIELDS.index(name)]

    def set(self, **values: float) -> None:
        for name, value in values.items():
            self.array[_FIELDS.index(name)] = value

    def as_dict(self) -> dict[str, float]:
        return dict(zip(_FIELDS, self.array))


@dataclass(frozen=True)
class WorkerSpec:
    """Everything the worker process needs (picklable, for the spawn start method)."""

    loader: SeparatorLoader
    in_ring: RingSpec
    stem_ring: RingSpec
    rate: int
    latency: int  # L in frames (the worker resynchronises when further behind); 0 = auto (latency_budget)
    window_s: float | None = None
    hop_s: float | None = None
    right_s: float | None = None
    threads: int = 0
    refine_default: str = "off"
    refiner: bool = True  # install the refiner (its STFT delay joins the latency even while unused)
    refine_budget: float | None = None  # share of real time the refiner may take; None = its default
    min_chunk: int = 256
    period: int = 256  # JACK period, dry crossfade and render lead in frames: auto's latency budget counts them
    crossfade: int = 0
    render_lead: int = 0
    calibrate: bool = True  # measure compute and plan the geometry (False: a restart runs the plan it had)
    nice: int = 0  # added to the worker's nice value (worker_priority)
    policy: str = "normal"  # normal | batch | idle scheduling
    cpus: str = "all"  # auto | all | a CPU list (worker_priority.worker_cpus)


def run_worker(spec: WorkerSpec, conn: Connection, stats: WorkerStats, standby: bool, where: Placement) -> None:
    """Process entry point. The daemon put this process `where` it runs the moment it started; it is
    applied again here for the threads the interpreter started meanwhile, and so that a refusal is
    reported as a load failure."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's to handle
    stats.set(pid=os.getpid(), heartbeat=time.monotonic())
    try:
        priority = lower_priority(0, where)
        stream, refiner, plan = _load(spec)
    except Exception as exc:  # any load failure is reported, never raised into the void
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    if standby:
        _warm_up(stream, spec.rate)
        if not _wait_for_activation(conn, stats, {"pid": os.getpid(), "priority": priority}):
            return
    in_ring, stem_ring = SpscRing.attach(spec.in_ring), SpscRing.attach(spec.stem_ring)
    try:
        _Loop(spec, conn, stats, stream, refiner, plan, in_ring, stem_ring).run()
    finally:
        in_ring.close()
        stem_ring.close()


def _warm_up(stream: Any, rate: int) -> None:
    """Separate half a second of silence past the streaming latency once, and forget it: the first
    model call of a process pays for lazy initialisation (allocators, kernels), and a standby should
    pay it while it waits, not in the backlog it must catch up on after a takeover."""
    stream.process(np.zeros((2, stream.latency_samples + rate // 2), np.float32))
    stream.reset()


def _wait_for_activation(conn: Connection, stats: WorkerStats, info: dict[str, Any]) -> bool:
    """Standby: say the model is loaded, then idle until activated (True) or shut down (False)."""
    conn.send(("standby", info))
    while True:
        stats.set(heartbeat=time.monotonic())
        try:
            if conn.poll(STANDBY_POLL_S):
                return conn.recv()[0] == "activate"
        except (EOFError, OSError):
            return False


def _load(spec: WorkerSpec) -> tuple[Any, Any, Plan | None]:
    """The stream, its refiner (None when turned off) and the plan that divided L into hop, lookahead
    and margin (None for a restart, which runs the geometry it was given)."""
    separator = spec.loader()
    torch = sys.modules.get("torch")
    if torch is not None:
        # All cores but one, and never more threads than the CPUs the worker may run on.
        torch.set_num_threads(spec.threads or min(usable_cpus(), max(1, (os.cpu_count() or 2) - 1)))
    build = latency_budget.stream_builder(separator, spec.rate, spec.window_s, spec.hop_s, spec.right_s,
                                          spec.refiner, spec.refine_budget)
    if not spec.calibrate:
        return (*build(None, None), None)
    (stream, refiner), plan = latency_budget.plan(build, spec.hop_s is not None, spec.right_s is not None,
                                                  spec.period, spec.crossfade, spec.rate, spec.latency,
                                                  render_lead=spec.render_lead)
    return stream, refiner, plan


class _Loop:
    def __init__(self, spec: WorkerSpec, conn: Connection, stats: WorkerStats, stream: Any, refiner: Any,
                 plan: Plan | None, in_ring: SpscRing, stem_ring: SpscRing) -> None:
        self.spec, self.conn, self.stats, self.stream = spec, conn, stats, stream
        self.latency = plan.latency if plan is not None else spec.latency
        self.in_ring, self.stem_ring = in_ring, stem_ring
        self.refiner = refiner
        self.bypass_reported: set[str] = set()
        self.buf = np.empty((2, in_ring.capacity), np.float32)
        # A backlog (a takeover's catch-up) goes through the stream a hop at a time, so the first
        # stems reach the ring after one hop's compute instead of after the whole backlog's.
        self.chunk = max(spec.min_chunk, round(stream.geometry.seconds()["hop"] * spec.rate))
        self.resyncs = 0
        self.frames = 0
        self.ema_ms = 0.0
        self._resume()
        if spec.refine_default != "off" and refiner is not None:
            for stem in stream.sources:
                self._refine(stem, spec.refine_default)
        info = {"sources": list(stream.sources), "latency_frames": stream.latency_samples,
                "model": stream.separator.name, "model_rate": stream.model_rate,
                "chosen_because": getattr(stream.separator, "chosen_because", ""),
                "geometry": stream.geometry.seconds(), "pid": os.getpid(), "latency": self.latency,
                "plan": plan, "priority": describe_priority(os.getpid())}
        stats.set(loaded=1.0, latency_frames=stream.latency_samples)
        conn.send(("ready", info))

    def _resume(self) -> None:
        """Continue the stem ring where the last worker stopped while the backlog since then is under
        L (the bound `run` keeps). Otherwise (the first start, a long outage) start at the present.
        The stream starts only `settle_samples` before that frame: enough history for its resamplers
        to have settled there, so the first new stems join the last old ones without a click. Not the
        model's context: that would cost a streaming latency of compute before the first stems (the
        output is dry until they come), and the first window's missing history costs less than dry
        audio does — a muted stem is back in the dry."""
        resume_at = self.stem_ring.written
        behind = self.in_ring.written - resume_at
        context = min(self.stream.settle_samples, resume_at)
        if resume_at == 0 or behind + context > self.latency or not self.in_ring.available(resume_at - context,
                                                                                           behind + context):
            self._resync()
            return
        self.pos, self.start = resume_at - context, resume_at
        self.stream.reset()
        self._seek_at = None  # the stems go on from where they are

    def _resync(self) -> None:
        """Start (again) at the newest input: forget the stream's history, drop its warm-up output.
        The stem ring moves on only with the first new stems: until then the audio path may still be
        fading out on the stems queued before (a dead worker's included), and a seek now would make
        them vanish under it — a hard switch to dry. The stream starts `settle_samples` earlier where
        the ring still holds them, so the first new stems do not ring under the crossfade from dry."""
        self.start = self.in_ring.written
        context = min(self.stream.settle_samples, self.start)
        self.pos = self.start - context if self.in_ring.available(self.start - context, context) else self.start
        self.stream.reset()
        self._seek_at: int | None = self.start

    def run(self) -> None:
        spec, stats = self.spec, self.stats
        while True:
            stats.set(heartbeat=time.monotonic())
            try:
                if self.conn.poll() and not self._control(self.conn.recv()):
                    return
            except (EOFError, OSError):
                return  # the daemon is gone: nobody to separate for
            backlog = self.in_ring.written - self.pos
            if backlog > self.latency:
                self.resyncs += 1
                stats.set(resyncs=self.resyncs)
                self._resync()
                continue
            if backlog < spec.min_chunk:
                time.sleep(IDLE_S)
                continue
            block = self.buf[:, :min(backlog, self.chunk)]
            if not self.in_ring.read_at(self.pos, block):
                self._resync()
                continue
            self._separate(block)

    def _separate(self, block: np.ndarray) -> None:
        n = block.shape[1]
        started = time.perf_counter()
        stems = self.stream.process(block)
        ms = 1000.0 * (time.perf_counter() - started)
        first = self.pos - self.stream.latency_samples  # input index of stems[..., 0]
        self.pos += n
        skip = max(0, self.start - first)
        if skip < n:
            if self._seek_at is not None:
                self.stem_ring.seek(self._seek_at)
                self._seek_at = None
            self.stem_ring.write(stems[:, :, skip:].reshape(-1, n - skip))
        self.frames += n
        self.ema_ms = ms if self.ema_ms == 0.0 else 0.95 * self.ema_ms + 0.05 * ms
        self.stats.set(compute_ms=self.ema_ms, rtf=self.stream.real_time_factor, frames=self.frames)
        if self.refiner is not None:
            self._report_refiner()

    def _report_refiner(self) -> None:
        refiner = self.refiner
        self.stats.set(refine_ms=refiner.last_ms, refine_load=refiner.load)
        for stem in refiner.bypassed.keys() - self.bypass_reported:
            self.conn.send(("refine_bypassed", stem, refiner.bypassed[stem]))
        self.bypass_reported = set(refiner.bypassed)

    def _control(self, message: tuple) -> bool:
        """Handle one control message; False means stop."""
        kind = message[0]
        if kind == "shutdown":
            return False
        if kind == "refine":
            _, stem, mode = message
            try:
                self._refine(stem, mode)
            except Exception as exc:  # a bad refine request must not end separation
                self.conn.send(("error", f"refine {stem} {mode}: {type(exc).__name__}: {exc}"))
            else:
                self.conn.send(("refined", stem, mode))
        return True

    def _refine(self, stem: str, mode: str) -> None:
        if self.refiner is None:
            raise RuntimeError("the refiner is not installed ([engine] refiner = false)")
        self.refiner.set_mode(stem, mode)


class EngineFailed(RuntimeError):
    """The model could not be loaded; the message says why (missing weights, unknown model ...)."""


class _Worker:
    """One worker process: its pipe, its shared stats and what it said when loaded."""

    def __init__(self, ctx: Any, spec: WorkerSpec, standby: bool) -> None:
        self.stats = WorkerStats(ctx)
        self.stats.set(loaded=0.0, heartbeat=time.monotonic())
        ours, theirs = ctx.Pipe()
        where = placement(spec.nice, spec.policy, spec.cpus)
        self.process = ctx.Process(target=run_worker, args=(spec, theirs, self.stats, standby, where),
                                   name="stemd-standby" if standby else "stemd-engine", daemon=True)
        self.process.start()
        # At once, not only from the worker: a fresh interpreter imports for a fifth of a CPU-second
        # before run_worker runs, which at the daemon's priority on the audio's CPU is an xrun risk.
        try:
            lower_priority(self.process.pid, where)
        except OSError:
            pass  # the worker applies it again and reports the refusal as its load failure
        theirs.close()
        self.conn: Connection | None = ours
        self.info: dict[str, Any] | None = None  # the "ready" (or a standby's "standby") info
        self._memory: tuple[float, dict[str, float] | None] = (-MEMORY_EVERY_S, None)

    def memory(self) -> dict[str, float] | None:
        """Its memory (proc_memory), at most MEMORY_EVERY_S old; None once it is gone."""
        if not self.alive:
            return None
        now = time.monotonic()
        if now - self._memory[0] >= MEMORY_EVERY_S:
            self._memory = (now, memory_mb(self.process.pid))
        return self._memory[1]

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def messages(self) -> list[tuple]:
        """Messages so far (non-blocking); records the `ready`/`standby` info."""
        out = []
        try:
            while self.conn is not None and self.conn.poll():
                message = self.conn.recv()
                if message[0] in ("ready", "standby"):
                    self.info = message[1]
                out.append(message)
        except (EOFError, OSError):
            pass  # the worker died; `alive` says so
        return out

    def send(self, message: tuple) -> bool:
        if self.conn is None:
            return False
        try:
            self.conn.send(message)
        except (OSError, ValueError):
            return False
        return True

    def stop(self, timeout: float) -> None:
        process = self.process
        if process.is_alive():
            self.send(("shutdown",))
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class EngineProcess:
    """Parent-side handle of the active worker process (start, restart, messages, stop) and, with
    `standby`, of a second one kept loaded to take over the moment the active one dies: a watcher
    thread blocks on the active process's sentinel, so the takeover starts within a millisecond of
    the death instead of at the next supervision tick — the stems the dead worker left queued (L
    minus its streaming latency) are then often enough to cover the gap without going dry."""

    def __init__(self, spec: WorkerSpec, standby: bool = False) -> None:
        self.spec = spec
        self.standby_wanted = standby
        self._ctx = mp.get_context("spawn")  # fork would copy the JACK client's threads and locks
        self._active: _Worker | None = None
        self._standby: _Worker | None = None
        self._no_stats = WorkerStats(self._ctx)
        self._standby_retry_at = 0.0
        self.standby_error: str | None = None
        self.starts = 0
        self.takeovers = 0
        self._lock = threading.Lock()  # the watcher swaps workers while the supervisor uses them
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """A fresh active worker (loads the model; `ready` once it separates)."""
        with self._lock:
            self._active = _Worker(self._ctx, self.spec, standby=False)
            self.starts += 1
        if self.standby_wanted and self._watcher is None:
            self._closed.clear()
            self._watcher = threading.Thread(target=self._watch, name="stemd-engine-watch", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closed.is_set():
            active = self._active
            if active is None:
                self._closed.wait(WATCH_S)
            elif wait([active.process.sentinel], WATCH_S) and active is self._active:
                if not self.take_over(f"exited with code {active.process.exitcode}"):
                    self._closed.wait(WATCH_S)  # no standby loaded: the supervisor restarts one

    @property
    def process(self) -> mp.process.BaseProcess | None:
        return self._active.process if self._active is not None else None

    @property
    def stats(self) -> WorkerStats:
        """The active worker's figures (a fresh, zeroed set before any worker started)."""
        return self._active.stats if self._active is not None else self._no_stats

    @property
    def info(self) -> dict[str, Any] | None:
        return self._active.info if self._active is not None else None

    @property
    def alive(self) -> bool:
        return self._active is not None and self._active.alive

    @property
    def ready(self) -> bool:
        return self.info is not None and self.alive

    def messages(self) -> list[tuple]:
        """The active worker's messages so far (non-blocking); the standby's are handled here, under
        the lock, so none it sends once activated (its "ready") is taken for a standby's."""
        with self._lock:
            standby = self._standby
            for message in standby.messages() if standby is not None else ():
                if message[0] == "failed":
                    self.standby_error = message[1]
                    log.error("standby engine worker failed to load: %s", message[1])
        active = self._active
        return active.messages() if active is not None else []

    def keep_standby(self, now: float) -> None:
        """With standby wanted and the active worker separating, have a loaded standby (start one if
        there is none, or the last one died; retried every STANDBY_RETRY_S)."""
        if not self.standby_wanted or not self.ready:
            return
        with self._lock:
            if self._standby is not None and not self._standby.alive:
                self._standby.stop(0.1)
                self._standby = None
                self._standby_retry_at = now + STANDBY_RETRY_S
            if self._standby is None and now >= self._standby_retry_at:
                self._standby = _Worker(self._ctx, self.spec, standby=True)

    def take_over(self, why: str) -> bool:
        """The active worker died (or was killed as hung): the loaded standby becomes the active one
        and resumes the stem ring where the dead one stopped. True when a live active worker is
        there afterwards (the watcher may have swapped already); False when no standby is loaded."""
        with self._lock:
            if self.alive:
                return True
            standby = self._standby
            if standby is None or standby.info is None or not standby.alive or not standby.send(("activate",)):
                return False
            if self._active is not None:
                self._active.stop(timeout=0.2)
            standby.info = None  # its "ready" follows once it separates
            self._active, self._standby = standby, None
            self._standby_retry_at = time.monotonic() + STANDBY_AFTER_TAKEOVER_S
            self.starts += 1
            self.takeovers += 1
        log.error("engine worker %s; the standby (pid %d) took over", why, standby.process.pid)
        return True

    def standby_status(self) -> dict[str, Any] | None:
        """The standby's state and memory cost for `stemd status` (None when not configured)."""
        if not self.standby_wanted:
            return None
        standby = self._standby
        loaded = standby is not None and standby.info is not None and standby.alive
        out: dict[str, Any] = {"loaded": loaded, "error": self.standby_error, "takeovers": self.takeovers}
        if standby is not None and standby.alive:
            out["pid"] = standby.process.pid
            out["memory"] = standby.memory()
        return out

    def memory(self) -> dict[str, float] | None:
        """The active worker's memory (what a standby costs again, roughly)."""
        return self._active.memory() if self._active is not None else None

    def wait_ready(self, timeout: float, cancel: threading.Event | None = None) -> dict[str, Any] | None:
        """Block until the model is loaded (None when `cancel` is set first); EngineFailed when loading
        fails, dies or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (cancel is not None and cancel.is_set()):
            for message in self.messages():
                if message[0] == "failed":
                    raise EngineFailed(message[1])
            if self.info is not None:
                return self.info
            if not self.alive:
                raise EngineFailed(f"the engine process exited with code {self.process.exitcode} while loading")
            self._active.conn.poll(0.05)
        if cancel is not None and cancel.is_set():
            return None
        raise EngineFailed(f"the model did not load within {timeout:.0f} s")

    def send(self, *message: Any) -> bool:
        """Send a control message to the active worker; False when no worker is there to take it."""
        return self._active is not None and self._active.send(message)

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the active worker (the standby stays loaded for a restart: see `stop_all`)."""
        with self._lock:
            active, self._active = self._active, None
        if active is not None:
            active.stop(timeout)

    def stop_all(self, timeout: float = 3.0) -> None:
        """Stop the watcher, the active worker and the standby (shutdown, a rate change, no engine)."""
        self._closed.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        self.stop(timeout)
        with self._lock:
            standby, self._standby = self._standby, None
        if standby is not None:
            standby.stop(timeout)
