"""The separation engine in its own process, fed and drained through shared-memory rings.

Model work (torch, numpy, the GIL) never runs in the daemon process, so it can never stall the JACK
thread; a crash or a hang here costs separated audio for a moment, never sound. The worker reads the
input ring from where the input is now, runs `StreamingSeparator`, and writes stem frame p as the
stems of input frame p (dropping the first `latency_samples` of warm-up output), so the RT side
needs no timestamps. When it falls more than L behind — its output would be late anyway — it skips to
the present and resets the stream rather than separate audio nobody will hear.

Parent → worker (pipe): ("refine", stem, mode), ("shutdown",).
Worker → parent (pipe): ("ready", info), ("failed", reason), ("refined", stem, mode), ("error", reason),
("refine_bypassed", stem, reason) when the refiner turns a stem off to stay within its share of real time.
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
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

from stemd.daemon import latency_budget
from stemd.daemon.latency_budget import Plan
from stemd.daemon.ring import RingSpec, SpscRing

log = logging.getLogger(__name__)

SeparatorLoader = Callable[[], Any]  # returns an engines.separator.Separator; must be picklable
IDLE_S = 0.002  # poll interval while waiting for input (well under one 256-frame period at 48 kHz)

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
    period: int = 256  # JACK period and dry crossfade in frames: auto's latency budget counts them
    crossfade: int = 0
    calibrate: bool = True  # measure compute and plan the geometry (False: a restart runs the plan it had)


def run_worker(spec: WorkerSpec, conn: Connection, stats: WorkerStats) -> None:
    """Process entry point."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's to handle
    stats.set(pid=os.getpid(), heartbeat=time.monotonic())
    try:
        stream, refiner, plan = _load(spec)
    except Exception as exc:  # any load failure is reported, never raised into the void
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    in_ring, stem_ring = SpscRing.attach(spec.in_ring), SpscRing.attach(spec.stem_ring)
    try:
        _Loop(spec, conn, stats, stream, refiner, plan, in_ring, stem_ring).run()
    finally:
        in_ring.close()
        stem_ring.close()


def _load(spec: WorkerSpec) -> tuple[Any, Any, Plan | None]:
    """The stream, its refiner (None when turned off) and the plan that divided L into hop, lookahead
    and margin (None for a restart, which runs the geometry it was given)."""
    separator = spec.loader()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(spec.threads or max(1, (os.cpu_count() or 2) - 1))
    build = latency_budget.stream_builder(separator, spec.rate, spec.window_s, spec.hop_s, spec.right_s,
                                          spec.refiner, spec.refine_budget)
    if not spec.calibrate:
        return (*build(None, None), None)
    (stream, refiner), plan = latency_budget.plan(build, spec.hop_s is not None, spec.right_s is not None,
                                                  spec.period, spec.crossfade, spec.rate, spec.latency)
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
        self.resyncs = 0
        self.frames = 0
        self.ema_ms = 0.0
        self._resync()
        if spec.refine_default != "off" and refiner is not None:
            for stem in stream.sources:
                self._refine(stem, spec.refine_default)
        info = {"sources": list(stream.sources), "latency_frames": stream.latency_samples,
                "model": stream.separator.name, "model_rate": stream.model_rate,
                "chosen_because": getattr(stream.separator, "chosen_because", ""),
                "geometry": stream.geometry.seconds(), "pid": os.getpid(), "latency": self.latency,
                "plan": plan}
        stats.set(loaded=1.0, latency_frames=stream.latency_samples)
        conn.send(("ready", info))

    def _resync(self) -> None:
        """Start (again) at the newest input: forget the stream's history, drop its warm-up output."""
        self.pos = self.start = self.in_ring.written
        self.stream.reset()
        self.stem_ring.seek(self.start)

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
            block = self.buf[:, :backlog]
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


class EngineProcess:
    """Parent-side handle of one worker process at a time: start, restart, messages, stop."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._ctx = mp.get_context("spawn")  # fork would copy the JACK client's threads and locks
        self.stats = WorkerStats(self._ctx)
        self.process: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.info: dict[str, Any] | None = None
        self.starts = 0

    def start(self) -> None:
        self.info = None
        self.stats.set(loaded=0.0, heartbeat=time.monotonic())
        ours, theirs = self._ctx.Pipe()
        self.process = self._ctx.Process(target=run_worker, args=(self.spec, theirs, self.stats),
                                         name="stemd-engine", daemon=True)
        self.process.start()
        theirs.close()
        self.conn = ours
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    @property
    def ready(self) -> bool:
        return self.info is not None and self.alive

    def messages(self) -> list[tuple]:
        """Messages from the worker so far (non-blocking); records the `ready` info."""
        out = []
        try:
            while self.conn is not None and self.conn.poll():
                message = self.conn.recv()
                if message[0] == "ready":
                    self.info = message[1]
                out.append(message)
        except (EOFError, OSError):
            pass  # the worker died; `alive` says so
        return out

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
            self.conn.poll(0.05)
        if cancel is not None and cancel.is_set():
            return None
        raise EngineFailed(f"the model did not load within {timeout:.0f} s")

    def send(self, *message: Any) -> bool:
        """Send a control message; False when no worker is there to take it."""
        if self.conn is None:
            return False
        try:
            self.conn.send(message)
        except (OSError, ValueError):
            return False
        return True

    def stop(self, timeout: float = 3.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.is_alive() and self.conn is not None:
            try:
                self.conn.send(("shutdown",))
            except OSError:
                pass
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
