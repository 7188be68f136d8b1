"""CUDA fast path for one HTDemucs: fp16 autocast, pinned host buffers, and a captured CUDA graph.

The streaming engine calls the model on the same window shape every hop, which is exactly what a CUDA
graph wants: HTDemucs launches hundreds of small kernels per call, and replaying them as one graph
removes the per-launch CPU cost that dominates at batch one. Autocast keeps the fp32-sensitive parts
in fp32 (torch.stft/istft and the normalisations run in fp32 under autocast; only matmuls and convs go
to fp16). The model is captured with demucs-onnx's patches (STFT as convolutions over device-resident
DFT kernels, plain attention), which are graph-safe and match PyTorch to ~1e-7. Pinned host buffers make the copies in and out asynchronous and cheap. If capture fails on
some driver or model, the caller falls back to the eager DemucsSeparator.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging

import numpy as np
import torch

from stemd.engines.separator import Separator, StreamingDefaults

log = logging.getLogger(__name__)


def _cache_2d_positional_embedding() -> None:
    """demucs builds the cross-transformer's 2-D positional embedding on the CPU and copies it to the
    GPU on every call; a host copy inside capture invalidates the graph. The embedding depends only
    on shapes, so memoising it (filled during warm-up, before capture) is exact."""
    import demucs.transformer as transformer

    if not hasattr(transformer.create_2d_sin_embedding, "cache_info"):
        transformer.create_2d_sin_embedding = functools.lru_cache(maxsize=16)(transformer.create_2d_sin_embedding)


class CudaGraphSeparator(Separator):
    def __init__(self, model: torch.nn.Module, name: str, device: str, fp16: bool,
                 streaming: StreamingDefaults, warmup: int = 3) -> None:
        if not device.startswith("cuda"):
            raise RuntimeError("the CUDA graph path needs device cuda")
        from demucs_onnx.export.patch import patch_htdemucs_for_onnx

        # demucs builds its STFT window on the CPU every call (a host copy a graph cannot capture);
        # the export patch's convolution STFT keeps its DFT kernels on the device as buffers.
        _cache_2d_positional_embedding()
        self.model = patch_htdemucs_for_onnx(copy.deepcopy(model)).to(device).eval()
        self.model.use_train_segment = False
        self.fp16 = fp16
        self.name = f"{name}/cuda-graph-{'fp16' if fp16 else 'fp32'}"
        self.sources = list(model.sources)
        self.sample_rate = int(model.samplerate)
        self.streaming = streaming
        self.window_samples = round(streaming.window_s * self.sample_rate)
        shape = (1, 2, self.window_samples)
        self._host_in = torch.zeros(shape, dtype=torch.float32).pin_memory()
        self._static_in = torch.zeros(shape, dtype=torch.float32, device=device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode(), self._autocast():
            for _ in range(warmup):
                self.model(self._static_in)
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.inference_mode():
            with torch.cuda.graph(self._graph), self._autocast():
                self._static_out = self.model(self._static_in).float()
        self._host_out = torch.zeros(self._static_out.shape, dtype=torch.float32).pin_memory()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.fp16:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def separate(self, window: np.ndarray) -> np.ndarray:
        n = window.shape[-1]
        if n != self.window_samples:
            raise ValueError(f"the CUDA graph was captured for {self.window_samples} samples; got {n}")
        self._host_in[0].numpy()[...] = window
        with torch.inference_mode():
            self._static_in.copy_(self._host_in, non_blocking=True)
            self._graph.replay()
            self._host_out.copy_(self._static_out, non_blocking=True)
        torch.cuda.current_stream().synchronize()
        return self._host_out[0].numpy().copy()


def graph_demucs(model, name: str, device: str, fp16: bool, window_s: float | None = None) -> Separator:
    """demucs_backend.BACKENDS entry for CUDA: the captured graph, or eager PyTorch if capture fails."""
    from stemd.engines.demucs_backend import DemucsSeparator
    from stemd.engines.onnx_backend import demucs_geometry, single_htdemucs

    geometry = demucs_geometry(window_s)
    if device.startswith("cuda"):
        try:
            return CudaGraphSeparator(single_htdemucs(model, name), name, device, fp16, geometry)
        except RuntimeError as exc:
            log.warning("CUDA graph capture unavailable for %s (%s); running eager PyTorch", name, exc)
    return DemucsSeparator(model, name, device, fp16)
