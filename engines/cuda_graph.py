"""CUDA fast path for one HTDemucs: autocast (fp16 or bf16), pinned host buffers, and a captured CUDA
graph per batch size.

The streaming engine calls the model on the same window shape every hop, which is exactly what a CUDA
graph wants: HTDemucs launches hundreds of small kernels per call, and replaying them as one graph
removes the per-launch CPU cost that dominates at batch one. The model captured is the capture-safe
HTDemucs (engines/capture_safe.py), whose forward has no host copies or syncs; `host_traffic` proves
that on any machine, and the capture itself is what proves it on a GPU. Pinned host buffers make the
copies in and out asynchronous and cheap. Batch 1 is captured at start; another batch size is
captured the first time it is asked for. If capture fails, backend_choice falls back to eager PyTorch.
"""

from __future__ import annotations

import numpy as np
import torch

from stemd.engines.capture_safe import capture_safe_htdemucs
from stemd.engines.precision import autocast
from stemd.engines.separator import BatchSeparator, StreamingDefaults



class _Captured:
    """One captured forward for a fixed [B, 2, N] input: static device buffers and the graph."""

    def __init__(self, net: torch.nn.Module, shape: tuple[int, int, int], device: torch.device,
                 precision: str, warmup: int) -> None:
        self.host_in = torch.zeros(shape, dtype=torch.float32).pin_memory()
        self.static_in = torch.zeros(shape, dtype=torch.float32, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.inference_mode(), autocast(device, precision):
            for _ in range(warmup):  # cuDNN / cuBLAS pick their kernels outside the capture
                net(self.static_in)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode():
            with torch.cuda.graph(self.graph), autocast(device, precision):
                self.static_out = net(self.static_in).float()
        self.host_out = torch.zeros(self.static_out.shape, dtype=torch.float32).pin_memory()

    def run(self, windows: np.ndarray) -> np.ndarray:
        self.host_in.numpy()[...] = windows
        with torch.inference_mode():
            self.static_in.copy_(self.host_in, non_blocking=True)
            self.graph.replay()
            self.host_out.copy_(self.static_out, non_blocking=True)
        torch.cuda.current_stream(self.static_in.device).synchronize()
        return self.host_out.numpy().copy()


class CudaGraphSeparator(BatchSeparator):
    def __init__(self, model: torch.nn.Module, name: str, device: str, precision: str,
                 streaming: StreamingDefaults, warmup: int = 3) -> None:
        if not device.startswith("cuda"):
            raise RuntimeError("the CUDA graph path needs device cuda")
        self.device = torch.device(device)
        self.net = capture_safe_htdemucs(model).to(self.device)
        self.precision = precision
        self.warmup = warmup
        self.name = f"{name}/cuda-graph-{precision}"
        self.sources = list(model.sources)
        self.sample_rate = int(model.samplerate)
        self.streaming = streaming
        self.window_samples = round(streaming.window_s * self.sample_rate)
        self._graphs: dict[int, _Captured] = {}
        self._graph_for(1)

    def _graph_for(self, batch: int) -> _Captured:
        if batch not in self._graphs:
            self._graphs[batch] = _Captured(self.net, (batch, 2, self.window_samples), self.device,
                                            self.precision, self.warmup)
        return self._graphs[batch]

    def separate_batch(self, windows: np.ndarray) -> np.ndarray:
        n = windows.shape[-1]
        if n != self.window_samples:
            raise ValueError(f"the CUDA graph was captured for {self.window_samples} samples; got {n}")
        return self._graph_for(windows.shape[0]).run(windows)
