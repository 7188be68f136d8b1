"""ONNX Runtime backend: the exported HTDemucs graph behind the same Separator interface.

On a CUDA machine with onnxruntime-gpu it runs on the CUDA execution provider; elsewhere on the CPU.
The graph has one fixed window length (see onnx_export), which is what the streaming engine feeds it;
shorter inputs are zero-padded, longer ones are refused with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from stemd.engines.onnx_export import INPUT_NAME, OUTPUT_NAME, exported
from stemd.engines.separator import Separator, StreamingDefaults


def providers_for(device: str) -> list[str]:
    """Execution providers in preference order; CUDA only when asked for and present."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError(
                "device cuda asked for the ONNX backend, but this onnxruntime has no CUDA provider "
                "(install onnxruntime-gpu)"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxSeparator(Separator):
    def __init__(self, path: Path, sources: Sequence[str], sample_rate: int, window_samples: int,
                 streaming: StreamingDefaults, device: str = "cpu", name: str = "htdemucs",
                 threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=providers_for(device))
        self.name = f"{name}/onnx"
        self.sources = list(sources)
        self.sample_rate = sample_rate
        self.streaming = streaming
        self.window_samples = window_samples
        self._input = np.zeros((1, 2, window_samples), dtype=np.float32)

    def separate(self, window: np.ndarray) -> np.ndarray:
        n = window.shape[-1]
        if n > self.window_samples:
            raise ValueError(
                f"the ONNX graph was exported for {self.window_samples} samples; got {n} "
                "(re-export for a longer window)"
            )
        self._input.fill(0.0)
        self._input[0, :, :n] = window
        stems = self.session.run([OUTPUT_NAME], {INPUT_NAME: self._input})[0]
        return np.ascontiguousarray(stems[0, :, :, :n], dtype=np.float32)


def demucs_geometry(window_s: float | None = None) -> StreamingDefaults:
    """The demucs streaming geometry, with the window replaced for a backend built for another one."""
    from stemd.engines.demucs_backend import STREAMING

    return STREAMING if window_s is None else StreamingDefaults(window_s, STREAMING.hop_s, STREAMING.right_s)


def single_htdemucs(model, name: str):
    """The one HTDemucs inside `model`; bags of several (htdemucs_ft) are not exported as one graph."""
    from demucs.apply import BagOfModels

    if isinstance(model, BagOfModels):
        if len(model.models) != 1:
            raise RuntimeError(f"{name} is a bag of {len(model.models)} models; the ONNX and TensorRT "
                               "backends export single models (use htdemucs or htdemucs_6s)")
        return model.models[0]
    return model


def onnx_demucs(model, name: str, device: str, fp16: bool, window_s: float | None = None) -> OnnxSeparator:
    """demucs_backend.BACKENDS entry: export (once, cached) and run in ONNX Runtime. fp16 is a
    TensorRT matter; ONNX Runtime runs the fp32 graph. The graph's window is the streaming window."""
    net = single_htdemucs(model, name)
    geometry = demucs_geometry(window_s)
    window = round(geometry.window_s * net.samplerate)
    return OnnxSeparator(exported(net, window), net.sources, net.samplerate, window, geometry, device, name)
