"""Per-backend cost of one streaming hop: the same HTDemucs window through every runtime available,
at the windows that matter, one stream or several.

Each row times `separate_batch(windows)` (host buffers in and out, as the worker calls it) after
warm-up and reports ms per call (median / p95 / p99 / max), the SDR of the backend's output against
eager fp32 PyTorch on the same windows, the model's GFLOP per window (torch.utils.flop_counter, on the
eager model: convolutions, matmuls and attention; the FFTs are not counted) and the TFLOP/s that
achieves, and the first call's time (compiling, capturing). Backends that cannot run here are rows
with the reason. The same rows are `stemd bench --only backends` and the GPU check's JSON
(benchmarks/gpu_check.sh), printed as the same table.

Rows run in priority order under a time budget: the trained window first (W = 7.8 s, the target),
compiled backends last, so a budget that runs out still leaves the figures that matter; the JSON is
rewritten after every row, so a run that is killed keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from stemd.engines.backend_choice import probe_window, time_ms
from stemd.engines.metrics import sdr
from stemd.engines.separator import Separator

GPU_WINDOWS = (7.8, 4.0, 1.0)
GPU_BACKENDS = ("torch-fp32", "torch-fp16", "graph-fp16", "graph-bf16", "tensorrt-fp16", "onnx")
GPU_COMPILED = ("compile-reduce-overhead-fp16", "compile-reduce-overhead-bf16", "compile-max-autotune-fp16")
CPU_BACKENDS = ("torch-fp32", "compile-default-fp32")
BATCHES = (2, 4)
COMPILE_ESTIMATE_S = 150.0  # what a compiled row may take at htdemucs size; skipped when it would not fit
ROW_ESTIMATE_S = 20.0


@dataclass
class BackendRow:
    backend: str
    device: str
    window_s: float
    hop_ms: float
    batch: int = 1
    ms_median: float | None = None
    ms_p95: float | None = None
    ms_p99: float | None = None
    ms_max: float | None = None
    rtf: float | None = None
    sdr_vs_fp32_db: float | None = None
    gflop_per_window: float | None = None
    tflops: float | None = None
    start_s: float | None = None
    note: str = ""


@dataclass
class Case:
    backend: str
    window_s: float
    batch: int = 1

    @property
    def compiled(self) -> bool:
        return self.backend.startswith("compile")


def builders(model, device: str, window_s: float) -> dict[str, Callable[[], Separator]]:
    """Backend name -> constructor, for `model` on `device` with a `window_s` streaming window."""
    from stemd.engines.compile_backend import CompiledSeparator
    from stemd.engines.cuda_graph import CudaGraphSeparator
    from stemd.engines.demucs_backend import DemucsSeparator
    from stemd.engines.onnx_backend import demucs_geometry, onnx_demucs
    from stemd.engines.tensorrt_backend import tensorrt_demucs

    geometry = demucs_geometry(window_s)
    out: dict[str, Callable[[], Separator]] = {
        "torch-fp32": lambda: DemucsSeparator(model, "htdemucs", device, fp16=False, streaming=geometry),
        "torch-fp16": lambda: DemucsSeparator(model, "htdemucs", device, fp16=True, streaming=geometry),
        "tensorrt-fp16": lambda: tensorrt_demucs(model, "htdemucs", device, True, window_s),
        "onnx": lambda: onnx_demucs(model, "htdemucs", device, False, window_s),
    }
    for precision in ("fp32", "fp16", "bf16"):
        out[f"graph-{precision}"] = lambda p=precision: CudaGraphSeparator(model, "htdemucs", device, p, geometry)
        for mode in ("default", "reduce-overhead", "max-autotune"):
            out[f"compile-{mode}-{precision}"] = lambda p=precision, m=mode: CompiledSeparator(
                model, "htdemucs", device, geometry, m, p)
    return out


def plan(device: str, windows: tuple[float, ...] | None = None, only: set[str] | None = None,
         batches: tuple[int, ...] = (1, *BATCHES)) -> list[Case]:
    """The rows in the order they run: on CUDA, W = 7.8 / 4 / 1 s through the eager and captured
    backends, then batches 2 and 4 at the first window, then the compiled backends (minutes each,
    cold); on the CPU, eager against compiled at each window, batches included."""
    from stemd.engines.onnx_backend import demucs_geometry

    cuda = device.startswith("cuda")
    windows = windows or (GPU_WINDOWS if cuda else (demucs_geometry().window_s,))
    cases: list[Case] = []
    if cuda:
        cases += [Case(b, w) for w in windows for b in GPU_BACKENDS]
        more = [n for n in batches if n > 1]
        cases += [Case(b, windows[0], n) for n in more for b in ("torch-fp16", "graph-fp16", "graph-bf16")]
        cases += [Case(GPU_COMPILED[0], windows[0], n) for n in batches]
        cases += [Case(b, windows[0]) for b in GPU_COMPILED[1:]]
        cases += [Case(GPU_COMPILED[0], w) for w in windows[1:]]
    else:
        cases += [Case(b, w, n) for w in windows for b in CPU_BACKENDS for n in batches]
    return [c for c in cases if only is None or c.backend in only]


def gflop_per_window(model, device: str, samples: int) -> float:
    """The eager model's GFLOP for one window (FlopCounterMode: convolutions, matmuls, attention)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net = model.to(device).eval()
    net.use_train_segment = False
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(torch.zeros(1, 2, samples, device=device))
    return counter.get_total_flops() / 1e9


def _windows(rate: int, samples: int, batch: int) -> np.ndarray:
    return np.stack([probe_window(rate, samples, seed) for seed in range(batch)])


class Runner:
    """Runs the cases of one model on one device, keeping the eager fp32 references and FLOP counts
    per window, and the built separator between cases of the same backend and window."""

    def __init__(self, model, device: str, hop_ms: float, runs: int) -> None:
        self.model, self.device, self.hop_ms, self.runs = model, device, hop_ms, runs
        self.rate = int(model.samplerate)
        self._references: dict[tuple[float, int], np.ndarray] = {}
        self._gflop: dict[float, float] = {}
        self._built: tuple[tuple[str, float], Separator] | None = None

    def reference(self, window_s: float, samples: int, seed: int) -> np.ndarray:
        if (window_s, seed) not in self._references:
            eager = builders(self.model, self.device, window_s)["torch-fp32"]()
            self._references[(window_s, seed)] = eager.separate(probe_window(self.rate, samples, seed))
        return self._references[(window_s, seed)]

    def gflop(self, window_s: float, samples: int) -> float:
        if window_s not in self._gflop:
            self._gflop[window_s] = gflop_per_window(self.model, self.device, samples)
        return self._gflop[window_s]

    def _separator(self, case: Case) -> tuple[Separator, bool]:
        """The separator for `case` and whether it was just built (rows of one backend and window
        share it: a new batch size then costs what that backend pays for a new shape)."""
        key = (case.backend, case.window_s)
        if self._built is None or self._built[0] != key:
            self._built = None
            self._free()
            self._built = (key, builders(self.model, self.device, case.window_s)[case.backend]())
            return self._built[1], True
        return self._built[1], False

    def _free(self) -> None:
        """Drop what the last backend left: its GPU memory, and dynamo's compiled frames (every
        compiled row compiles the same HTDemucs.forward, and dynamo stops compiling a frame after
        its recompile limit; the on-disk Inductor cache is kept)."""
        import torch

        torch._dynamo.reset()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def row(self, case: Case) -> BackendRow:
        window_s = case.window_s
        samples = round(window_s * self.rate)
        row = BackendRow(case.backend, self.device, window_s, self.hop_ms, case.batch)
        started = time.perf_counter()
        try:
            separator, fresh = self._separator(case)
            windows = _windows(self.rate, samples, case.batch)
            out = separator.separate_batch(windows)
            if fresh or case.compiled:  # a new batch size compiles again
                row.start_s = time.perf_counter() - started
            for _ in range(2):
                separator.separate_batch(windows)
            times = np.asarray(time_ms(lambda: separator.separate_batch(windows), self.runs))
        except Exception as exc:  # a backend that cannot run here is a row with its reason
            self._built = None
            row.note = f"{type(exc).__name__}: {exc}"[:300]
            return row
        reference = np.stack([self.reference(window_s, samples, seed) for seed in range(case.batch)])
        row.ms_median, row.ms_p95, row.ms_p99 = (float(np.percentile(times, q)) for q in (50, 95, 99))
        row.ms_max = float(times.max())
        row.rtf = row.ms_median / self.hop_ms
        row.sdr_vs_fp32_db = sdr(reference, out)
        row.gflop_per_window = self.gflop(window_s, samples)
        row.tflops = row.gflop_per_window * case.batch / row.ms_median  # GFLOP / ms = TFLOP / s
        return row


def random_model(size: str):
    from stemd.engines import demucs_backend

    config = demucs_backend.HTDEMUCS_SIZE if size == "htdemucs" else demucs_backend.SMALL_SIZE
    return demucs_backend.random_htdemucs(**config)


def run(runner: Runner, cases: list[Case], deadline: float = float("inf"),
        on_row: Callable[[BackendRow], None] | None = None) -> list[BackendRow]:
    """Every case that fits before `deadline` (time.monotonic()), in order; the ones that do not fit
    are rows saying so. `on_row` sees each row as soon as it is measured."""
    rows = []
    for case in cases:
        estimate = COMPILE_ESTIMATE_S if case.compiled else ROW_ESTIMATE_S
        if time.monotonic() + estimate > deadline:
            row = BackendRow(case.backend, runner.device, case.window_s, runner.hop_ms, case.batch,
                             note="skipped: would not fit the time budget")
        else:
            row = runner.row(case)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def first_start(size: str, device: str, backend: str, window_s: float, cache: Path, timeout_s: float) -> float:
    """Seconds from nothing to the first separated window for `backend`, in a fresh process (so no
    in-memory cache helps) with Inductor's cache in `cache`: cold when `cache` is empty, warm after.
    Raises RuntimeError when it fails or outlives `timeout_s`."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "stemd.benchmarks.backends", "--start-only", backend, "--size", size,
               "--device", device, "--windows", str(window_s)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"first start of {backend} took over {timeout_s:.0f} s (the budget left)") from exc
    if done.returncode != 0:
        raise RuntimeError(f"first start of {backend} failed: {done.stderr.strip()[-300:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _start_only(size: str, device: str, backend: str, window_s: float) -> float:
    started = time.perf_counter()
    model = random_model(size)
    separator = builders(model, device, window_s)[backend]()
    separator.separate(probe_window(int(model.samplerate), round(window_s * model.samplerate)))
    return time.perf_counter() - started


def bench_row(model: str, r: BackendRow):
    """A BackendRow as a `stemd bench` row: the same table from the GPU check and `stemd bench`."""
    from stemd.benchmarks.streaming import BenchRow

    facts = [f"batch {r.batch}" if r.batch > 1 else "",
             f"p99 {r.ms_p99:.2f} ms" if r.ms_p99 is not None else "",
             f"{r.gflop_per_window:.3g} GFLOP/window" if r.gflop_per_window is not None else "",
             f"{r.tflops:.3g} TFLOP/s" if r.tflops is not None else "",
             f"first call {r.start_s:.1f} s" if r.start_s is not None else ""]
    extra = {} if r.sdr_vs_fp32_db is None else {"sdr vs torch-fp32 (dB)": round(r.sdr_vs_fp32_db, 1)}
    label = r.backend if r.batch == 1 else f"{r.backend} x{r.batch}"
    return BenchRow(model=model, backend=label, device=r.device, window_s=r.window_s, hop_ms=r.hop_ms,
                    ms_median=r.ms_median, ms_p95=r.ms_p95, ms_max=r.ms_max, rtf=r.rtf, extra=extra,
                    note=r.note or ", ".join(f for f in facts if f))


SIZES = {"small": "small", "htdemucs-size": "htdemucs"}


def backend_rows(options) -> list:
    """`stemd bench` provider "backends": the random-weight sizes in `options.models` through every
    runtime here; W = 7.8 / 4 / 1 s on CUDA (the GPU check's plan), else `options.window_s` or the
    demucs streaming window."""
    from stemd.engines.demucs_backend import STREAMING
    from stemd.engines.registry import resolve_device

    device = resolve_device(options.device)
    hop_ms = 1000.0 * (options.hop_s or STREAMING.hop_s)
    windows = (options.window_s,) if options.window_s else None
    out = []
    for model in (m for m in options.models if m in SIZES):
        runner = Runner(random_model(SIZES[model]), device, hop_ms, runs=30 if device != "cpu" else 5)
        out += [bench_row(model, r) for r in run(runner, plan(device, windows))]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "htdemucs"), default="small")
    parser.add_argument("--windows", type=float, nargs="+", help="windows W in s (default: the plan's)")
    parser.add_argument("--hop-ms", type=float, default=50.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backends", help="comma-separated subset of the backend names")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, *BATCHES], help="streams per call")
    parser.add_argument("--budget-s", type=float, default=float("inf"), help="skip rows that would not fit")
    parser.add_argument("--first-start", help="also time a cold and a warm first start of this backend")
    parser.add_argument("--json", help="write the rows (and the first-start figures) to this JSON file")
    parser.add_argument("--note", default="", help="a line about the machine, kept in the JSON")
    parser.add_argument("--start-only", help=argparse.SUPPRESS)  # first_start's child process
    args = parser.parse_args(argv)
    from stemd.engines.registry import resolve_device

    device = resolve_device(args.device)
    if args.start_only:
        print(_start_only(args.size, device, args.start_only, args.windows[0]))
        return 0
    report: dict = {"device": machine(device), "size": args.size, "note": args.note, "rows": [],
                    "first_start": {}}
    model_label = "htdemucs-size" if args.size == "htdemucs" else "small"
    started = time.monotonic()

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))

    def on_row(row: BackendRow) -> None:
        report["rows"].append(asdict(row))
        save()
        print(f"[{time.monotonic() - started:5.0f} s] {row.backend} W={row.window_s:g} x{row.batch}: "
              f"{row.ms_median if row.ms_median is None else round(row.ms_median, 2)} ms {row.note}",
              file=sys.stderr, flush=True)

    only = set(args.backends.split(",")) if args.backends else None
    cases = plan(device, tuple(args.windows) if args.windows else None, only, tuple(args.batches))
    deadline = started + args.budget_s
    runner = Runner(random_model(args.size), device, args.hop_ms, args.runs)
    # Eager and captured rows first (seconds each), then the first starts (a cold compile: minutes),
    # then the compiled rows, which start warm from the cache the first starts filled.
    rows = run(runner, [c for c in cases if not c.compiled], deadline, on_row)
    if args.first_start:
        report["first_start"] = first_starts(args, device, deadline)
        save()
    rows += run(runner, [c for c in cases if c.compiled], deadline, on_row)
    from stemd.cli.bench import table

    print(table([bench_row(model_label, r) for r in rows]))
    for key, value in report["first_start"].items():
        print(f"first start {key}: {value}")
    return 0


def first_starts(args, device: str, deadline: float) -> dict:
    """Cold then warm first start of `args.first_start` at the first window, sharing this run's
    Inductor cache (TORCHINDUCTOR_CACHE_DIR, which gpu_check.sh makes fresh; a temporary one when
    unset), so the compiled rows after it start warm."""
    import tempfile

    window_s = plan(device, tuple(args.windows) if args.windows else None)[0].window_s
    cache = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or tempfile.mkdtemp(prefix="stemd-inductor-"))
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    out: dict = {"backend": args.first_start, "window_s": window_s,
                 "cache_was_empty": not cache.exists() or not any(cache.iterdir())}
    for state in ("cold_s", "warm_s"):
        try:
            timeout_s = max(deadline - time.monotonic() - 30.0, 30.0)
            out[state] = round(first_start(args.size, device, args.first_start, window_s, cache, timeout_s), 1)
        except RuntimeError as exc:
            out[state] = None
            out["error"] = str(exc)
            break
        print(f"first start {args.first_start} {state}: {out[state]} s", file=sys.stderr, flush=True)
    return out


def machine(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        return f"{props.name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}, torch {torch.__version__}"


if __name__ == "__main__":
    sys.exit(main())
