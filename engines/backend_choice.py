"""Fast backends prove themselves at start, and `backend = "auto"` picks the fastest that did.

A fast path (fp16, a compiled or captured graph) is only worth having if it separates like the model:
each one separates the same probe window as eager fp32 PyTorch on the same device and is refused,
with the figure in the log, below MIN_SDR_DB. `auto` then times every candidate that passed on this
machine and keeps the fastest: which path wins depends on the GPU, the driver and the window, so it is
measured, not assumed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from stemd.engines.metrics import sdr
from stemd.engines.separator import Separator

log = logging.getLogger(__name__)

MIN_SDR_DB = 40.0
TIMED_RUNS = 5


@dataclass
class Verdict:
    """How one backend did at start: its SDR against eager fp32, its median ms per window, and why
    it was refused ("" when it passed)."""

    backend: str
    sdr_db: float | None = None
    ms_median: float | None = None
    start_s: float | None = None
    refused: str = ""


def probe_window(sample_rate: int, samples: int, seed: int = 0) -> np.ndarray:
    """A stereo window with tones across the spectrum and some noise: every band of the model has
    signal, so a wrong kernel anywhere shows in the SDR."""
    t = np.arange(samples) / sample_rate
    tones = sum(np.sin(2 * np.pi * f * t) for f in (55.0, 220.0, 880.0, 3520.0)) * 0.1
    noise = np.random.default_rng(seed).standard_normal((2, samples)) * 0.05
    return (tones + noise).astype(np.float32)


def time_ms(call: Callable[[], object], runs: int) -> list[float]:
    """Wall ms of `runs` calls (a separation with host buffers in and out, as the worker makes it)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def check(name: str, build: Callable[[], Separator], reference: np.ndarray, window: np.ndarray,
          runs: int = TIMED_RUNS) -> tuple[Separator | None, Verdict]:
    """Build a backend, separate `window` (its first call: compiling or capturing happens here) and
    score it against `reference`; time it when it passes. A backend that cannot be built is refused
    with its error."""
    started = time.perf_counter()
    try:
        separator = build()
        out = separator.separate(window)
    except Exception as exc:  # any failure to build or run refuses this backend, never the engine
        return None, Verdict(name, refused=f"{type(exc).__name__}: {exc}"[:300])
    verdict = Verdict(name, sdr_db=sdr(reference, out), start_s=time.perf_counter() - started)
    if not verdict.sdr_db >= MIN_SDR_DB:
        verdict.refused = f"SDR {verdict.sdr_db:.1f} dB against eager fp32, under {MIN_SDR_DB:.0f} dB"
        return None, verdict
    if runs:
        separator.separate(window)  # one more warm-up: autotuners and allocators settle
        verdict.ms_median = float(np.median(time_ms(lambda: separator.separate(window), runs)))
    return separator, verdict


def _log(verdict: Verdict) -> None:
    if verdict.refused:
        log.warning("backend %s refused: %s", verdict.backend, verdict.refused)
    else:
        timing = "" if verdict.ms_median is None else f", {verdict.ms_median:.2f} ms per window"
        log.info("backend %s passed: SDR %.1f dB against eager fp32, started in %.1f s%s",
                 verdict.backend, verdict.sdr_db, verdict.start_s, timing)


def verified(name: str, build: Callable[[], Separator], eager: Separator, window: np.ndarray) -> Separator | None:
    """The backend `build` makes when it passes its check against `eager` (fp32), else None (the
    caller runs plain PyTorch: a refused fast path costs speed, never the music)."""
    separator, verdict = check(name, build, eager.separate(window), window, runs=0)
    _log(verdict)
    return separator


def fastest(candidates: dict[str, Callable[[], Separator]], eager: Separator,
            window: np.ndarray) -> tuple[Separator, list[Verdict]]:
    """The fastest of `candidates` that passes its check, timed here; `eager` (fp32) when none does.
    Every verdict is logged and returned (what `stemd bench` and the start log show)."""
    reference = eager.separate(window)
    best, verdicts = eager, []
    best_ms = float(np.median(time_ms(lambda: eager.separate(window), TIMED_RUNS)))
    verdicts.append(Verdict("torch-fp32", sdr_db=float("inf"), ms_median=best_ms))
    for name, build in candidates.items():
        separator, verdict = check(name, build, reference, window)
        _log(verdict)
        verdicts.append(verdict)
        if separator is not None and verdict.ms_median < best_ms:
            best, best_ms = separator, verdict.ms_median
    log.info("backend auto chose %s (%.2f ms per window)", best.name, best_ms)
    return best, verdicts


# ---- the HTDemucs family --------------------------------------------------------------------------

def demucs_candidates(model, name: str, device: str, fp16: bool) -> dict[str, Callable[[], Separator]]:
    """The fast paths worth trying for a demucs model on `device`, by backend name. On CUDA: fp16
    autocast, the captured CUDA graph, torch.compile with CUDA graphs (reduce-overhead) and TensorRT
    when installed; on the CPU: torch.compile (Inductor's C++ kernels)."""
    from stemd.engines.compile_backend import CompiledSeparator
    from stemd.engines.cuda_graph import CudaGraphSeparator
    from stemd.engines.demucs_backend import DemucsSeparator
    from stemd.engines.onnx_backend import demucs_geometry, single_htdemucs
    from stemd.engines.tensorrt_backend import tensorrt_demucs, tensorrt_missing

    geometry = demucs_geometry()
    if not device.startswith("cuda"):
        return {"compile-default-fp32": lambda: CompiledSeparator(single_htdemucs(model, name), name, device,
                                                                  geometry, "default", "fp32")}
    precision = "fp16" if fp16 else "fp32"
    out: dict[str, Callable[[], Separator]] = {}
    if fp16:
        out["torch-fp16"] = lambda: DemucsSeparator(model, name, device, fp16=True)
    out[f"cuda-graph-{precision}"] = lambda: CudaGraphSeparator(single_htdemucs(model, name), name, device,
                                                                precision, geometry)
    out[f"compile-reduce-overhead-{precision}"] = lambda: CompiledSeparator(
        single_htdemucs(model, name), name, device, geometry, "reduce-overhead", precision)
    if tensorrt_missing() is None:
        out["tensorrt-fp16"] = lambda: tensorrt_demucs(model, name, device, True)
    return out


def _eager(model, name: str, device: str) -> tuple[Separator, np.ndarray]:
    from stemd.engines.demucs_backend import DemucsSeparator

    eager = DemucsSeparator(model, name, device, fp16=False)
    return eager, probe_window(eager.sample_rate, round(eager.streaming.window_s * eager.sample_rate))


def demucs_fast_path(kind: str, model, name: str, device: str, fp16: bool) -> Separator:
    """`backend = "cuda-graph"` or `"compile"`: that path when it can run here and passes its check,
    else plain PyTorch with the reason in the log."""
    from stemd.engines.demucs_backend import DemucsSeparator

    chosen = [(key, build) for key, build in demucs_candidates(model, name, device, fp16).items()
              if key.startswith(kind)]
    if not chosen:
        log.warning("backend %s needs a CUDA device (got %s); running eager PyTorch", kind, device)
        return DemucsSeparator(model, name, device, fp16)
    eager, window = _eager(model, name, device)
    key, build = chosen[0]
    return verified(key, build, eager, window) or DemucsSeparator(model, name, device, fp16)


def auto_demucs(model, name: str, device: str, fp16: bool) -> Separator:
    """`backend = "auto"`: on CUDA the fastest candidate that passes, measured at start; on the CPU
    eager PyTorch (compiling costs minutes of start there and did not win: docs/decisions/engine.md)."""
    from stemd.engines.demucs_backend import DemucsSeparator

    if not device.startswith("cuda"):
        return DemucsSeparator(model, name, device, fp16)
    eager, window = _eager(model, name, device)
    best, _ = fastest(demucs_candidates(model, name, device, fp16), eager, window)
    return best
