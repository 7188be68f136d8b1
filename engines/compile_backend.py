"""torch.compile (Inductor) backend for one HTDemucs, behind the Separator interface.

HTDemucs at batch one is launch-bound on a GPU (hundreds of small kernels per window). Inductor fuses
the pointwise work between the convolutions and matmuls, and in `reduce-overhead` mode replays the
whole forward as CUDA graphs; `max-autotune` also benchmarks kernel choices at compile time. The
model compiled is the capture-safe HTDemucs (engines/capture_safe.py): device-only, no graph breaks,
so `fullgraph=True` holds and reduce-overhead's CUDA graphs are not skipped.

Compiling htdemucs-size takes minutes cold. Inductor's own caches (its FX-graph and AOTAutograd
caches, and the Triton / C++ kernels) live under stemd's cache folder, `$XDG_CACHE_HOME/stemd/inductor`
(TORCHINDUCTOR_CACHE_DIR, unless the user set it), so a restart reuses them: no cache format of our
own. One compiled graph exists per batch size (shapes are static, which is what CUDA graphs want).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import torch

from stemd.engines.capture_safe import capture_safe_htdemucs
from stemd.engines.onnx_export import cache_dir
from stemd.engines.precision import autocast
from stemd.engines.separator import BatchSeparator, StreamingDefaults

log = logging.getLogger(__name__)

MODES = ("default", "reduce-overhead", "max-autotune")


def use_stemd_inductor_cache() -> str:
    """Point Inductor's on-disk caches at stemd's cache folder (a user's TORCHINDUCTOR_CACHE_DIR
    wins) and make sure the FX-graph and AOTAutograd caches are on; returns the folder."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    folder = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir("inductor")))
    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True
    return folder


class CompiledSeparator(BatchSeparator):
    """One HTDemucs through torch.compile at `mode`, under autocast at `precision`.

    `compile_s` maps batch size -> seconds its first call took (tracing and compiling, or loading
    from the cache): what a start costs."""

    def __init__(self, model: torch.nn.Module, name: str, device: str, streaming: StreamingDefaults,
                 mode: str = "default", precision: str = "fp32", compiler: str = "inductor") -> None:
        """`compiler` is torch.compile's backend: Inductor for speed; "aot_eager" traces the same
        full graph without generating kernels (a quick check that the model compiles at all)."""
        if mode not in MODES:
            raise ValueError(f"compile mode {mode!r}: expected one of {', '.join(MODES)}")
        use_stemd_inductor_cache()
        self.device = torch.device(device)
        self.net = capture_safe_htdemucs(model).to(self.device)
        options = {"mode": mode} if compiler == "inductor" else {}
        self._forward = torch.compile(self.net, backend=compiler, fullgraph=True, dynamic=False, **options)
        self.mode, self.precision = mode, precision
        self.name = f"{name}/compile-{mode}-{precision}"
        self.sources = list(model.sources)
        self.sample_rate = int(model.samplerate)
        self.streaming = streaming
        self.compile_s: dict[int, float] = {}

    def separate_batch(self, windows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self.device)
        first = x.shape[0] not in self.compile_s
        started = time.perf_counter()
        if self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # the last replay's outputs were copied out
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self._forward(x).float().cpu().numpy()
        if first:
            self.compile_s[x.shape[0]] = time.perf_counter() - started
            log.info("%s: batch %d compiled in %.1f s (cache %s)", self.name, x.shape[0],
                     self.compile_s[x.shape[0]], os.environ["TORCHINDUCTOR_CACHE_DIR"])
        return out
