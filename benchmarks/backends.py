"""Per-backend cost of one streaming hop: the same HTDemucs window through every runtime available.

Each row times `separate(window)` (host buffers in and out, as the worker calls it) after warm-up,
and scores the backend's output against the fp32 PyTorch output of the same window, so fp16 and
exported graphs report what they cost in quality as well as what they save in time. Backends that
cannot run here are listed with the reason instead of being silently left out.

Run it on a GPU machine with: python -m stemd.benchmarks.backends --size htdemucs --window 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from stemd.engines.metrics import sdr
from stemd.engines.separator import Separator


@dataclass
class BackendRow:
    backend: str
    device: str
    window_s: float
    hop_ms: float
    ms_median: float | None = None
    ms_p95: float | None = None
    ms_max: float | None = None
    rtf: float | None = None
    sdr_vs_fp32_db: float | None = None
    note: str = ""


def time_separator(separator: Separator, window: np.ndarray, runs: int, warmup: int = 3) -> tuple[np.ndarray, list[float]]:
    out = separator.separate(window)
    for _ in range(warmup - 1):
        separator.separate(window)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = separator.separate(window)
        times.append((time.perf_counter() - started) * 1000.0)
    return out, times


def _row(name: str, device: str, window_s: float, hop_ms: float, times: list[float],
         quality: float | None) -> BackendRow:
    ms = np.asarray(times)
    median = float(np.median(ms))
    return BackendRow(name, device, window_s, hop_ms, median, float(np.percentile(ms, 95)), float(ms.max()),
                      median / hop_ms, quality)


def candidate_backends(model, device: str, window_s: float) -> dict[str, Callable[[], Separator]]:
    """Name -> constructor of every backend worth trying for `model` on `device`."""
    from stemd.engines.cuda_graph import CudaGraphSeparator
    from stemd.engines.demucs_backend import DemucsSeparator
    from stemd.engines.onnx_backend import demucs_geometry, onnx_demucs
    from stemd.engines.tensorrt_backend import tensorrt_demucs

    backends = {"torch-fp32": lambda: DemucsSeparator(model, "htdemucs", device, fp16=False)}
    if device.startswith("cuda"):
        backends["torch-fp16"] = lambda: DemucsSeparator(model, "htdemucs", device, fp16=True)
        geometry = demucs_geometry(window_s)
        for fp16 in (False, True):
            backends[f"graph-{'fp16' if fp16 else 'fp32'}"] = (
                lambda fp16=fp16: CudaGraphSeparator(model, "htdemucs", device, fp16, geometry))
        backends["tensorrt-fp16"] = lambda: tensorrt_demucs(model, "htdemucs", device, True, window_s)
    backends["onnx"] = lambda: onnx_demucs(model, "htdemucs", device, False, window_s)
    return backends


def run(size: str, window_s: float, hop_ms: float, device: str, runs: int,
        only: set[str] | None = None) -> list[BackendRow]:
    import torch

    from stemd.engines import demucs_backend

    config = demucs_backend.HTDEMUCS_SIZE if size == "htdemucs" else demucs_backend.SMALL_SIZE
    model = demucs_backend.random_htdemucs(**config)
    rate = int(model.samplerate)
    n = round(window_s * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(0)
    tones = sum(np.sin(2 * np.pi * f * t) for f in (55.0, 220.0, 880.0, 3520.0)) * 0.1
    window = (tones + rng.standard_normal((2, n)) * 0.05).astype(np.float32)
    rows, reference = [], None
    for name, build in candidate_backends(model, device, window_s).items():
        if only and name not in only:
            continue
        try:
            separator = build()
            out, times = time_separator(separator, window, runs)
        except Exception as exc:  # a backend that cannot run here is a row with its reason
            rows.append(BackendRow(name, device, window_s, hop_ms, note=f"{type(exc).__name__}: {exc}"[:300]))
            continue
        if reference is None:
            reference = out
        rows.append(_row(name, device, window_s, hop_ms, times, sdr(reference, out)))
        print(format_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        del separator
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def backend_rows(options) -> list:
    """`stemd bench` provider "backends": the random-weight sizes in `options.models` through every
    runtime here, at `options.window_s` (default: the demucs streaming window)."""
    from stemd.engines.demucs_backend import STREAMING
    from stemd.engines.registry import resolve_device
    from stemd.benchmarks.streaming import BenchRow

    sizes = {"small": "small", "htdemucs-size": "htdemucs"}
    window_s = options.window_s or STREAMING.window_s
    hop_ms = 1000.0 * (options.hop_s or STREAMING.hop_s)
    device = resolve_device(options.device)
    out = []
    for model in (m for m in options.models if m in sizes):
        for r in run(sizes[model], window_s, hop_ms, device, runs=10):
            extra = {} if r.sdr_vs_fp32_db is None else {"sdr vs torch-fp32 (dB)": round(r.sdr_vs_fp32_db, 1)}
            out.append(BenchRow(model=model, backend=r.backend, device=device, window_s=window_s, hop_ms=hop_ms,
                                ms_median=r.ms_median, ms_p95=r.ms_p95, ms_max=r.ms_max, rtf=r.rtf,
                                extra=extra, note=r.note or "one window per call, host buffers in and out"))
    return out


def format_table(rows: list[BackendRow]) -> str:
    head = f"{'backend':<15}{'device':<8}{'W s':>6}{'hop ms':>8}{'median':>9}{'p95':>9}{'max':>9}{'RTF':>7}{'SDR dB':>8}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        def f(v, spec):
            return format(v, spec) if v is not None else "-"
        lines.append(f"{r.backend:<15}{r.device:<8}{r.window_s:>6.2f}{r.hop_ms:>8.1f}{f(r.ms_median, '>9.2f')}"
                     f"{f(r.ms_p95, '>9.2f')}{f(r.ms_max, '>9.2f')}{f(r.rtf, '>7.3f')}{f(r.sdr_vs_fp32_db, '>8.1f')}  {r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "htdemucs"), default="small")
    parser.add_argument("--window", type=float, default=4.0, help="window W in seconds")
    parser.add_argument("--hop-ms", type=float, default=50.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backends", help="comma-separated subset of the backend names")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    from stemd.engines.registry import resolve_device

    only = set(args.backends.split(",")) if args.backends else None
    rows = run(args.size, args.window, args.hop_ms, resolve_device(args.device), args.runs, only)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in rows], fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
