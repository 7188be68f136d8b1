"""TensorRT backend: an fp16 engine built from the exported ONNX graph, cached per GPU.

Written against the TensorRT 10 Python API, with torch CUDA tensors as the device buffers (no pycuda).
Building an engine takes minutes, so the serialized plan is cached under a key of GPU name, compute
capability, TensorRT version and the ONNX file's hash (which already encodes weights and window
length). The STFT/iSTFT convolutions and the normalisations are pinned to fp32: their fp16 error is
audible (the DFT kernels sum 4096 products), the rest of the network is not.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from stemd.engines.cache import build_once
from stemd.engines.onnx_export import INPUT_NAME, OUTPUT_NAME, cache_dir, exported
from stemd.engines.separator import Separator, StreamingDefaults

log = logging.getLogger(__name__)

FP32_LAYER_HINTS = ("real_stft", "real_istft", "norm", "Norm", "ReduceMean", "Pow", "Sqrt")


def tensorrt_missing() -> str | None:
    """Why the TensorRT backend cannot run here, or None when it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (pip install tensorrt-cu12, on a machine with an NVIDIA GPU)"
    import torch

    if not torch.cuda.is_available():
        return "TensorRT needs a CUDA GPU; torch sees none"
    return None


def engine_cache_path(onnx_path: Path, cache_dir: Path, fp16: bool) -> Path:
    import tensorrt as trt
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    gpu = props.name.replace(" ", "_")
    return cache_dir / f"{onnx_path.stem}-{digest}-{gpu}-sm{props.major}{props.minor}-trt{trt.__version__}-{'fp16' if fp16 else 'fp32'}.plan"


def build_engine(onnx_path: Path, plan_path: Path, fp16: bool = True, workspace_gb: float = 4.0) -> None:
    """Parse the ONNX graph and build a serialized engine, written to `plan_path` (the cache hands a
    temporary name, engines/cache.py); raises RuntimeError with the parser's errors."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if any(hint in layer.name for hint in FP32_LAYER_HINTS):
                layer.precision = trt.float32
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    plan_path.write_bytes(bytes(plan))


class TensorRTSeparator(Separator):
    def __init__(self, onnx_path: Path, sources: Sequence[str], sample_rate: int, window_samples: int,
                 streaming: StreamingDefaults, cache_dir: Path, fp16: bool = True,
                 name: str = "htdemucs") -> None:
        missing = tensorrt_missing()
        if missing:
            raise RuntimeError(missing)
        import tensorrt as trt
        import torch

        plan_path = engine_cache_path(onnx_path, cache_dir, fp16)
        if not plan_path.exists():
            log.info("building TensorRT engine %s (once per GPU and version; takes minutes)", plan_path.name)
        plan = build_once(plan_path, lambda partial: build_engine(onnx_path, partial, fp16)).read_bytes()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self._input = torch.zeros((1, 2, window_samples), dtype=torch.float32, device="cuda")
        self._output = torch.zeros((1, len(sources), 2, window_samples), dtype=torch.float32, device="cuda")
        self._host_output = torch.zeros(self._output.shape, dtype=torch.float32).pin_memory()
        self._context.set_tensor_address(INPUT_NAME, self._input.data_ptr())
        self._context.set_tensor_address(OUTPUT_NAME, self._output.data_ptr())
        self.name = f"{name}/tensorrt-{'fp16' if fp16 else 'fp32'}"
        self.sources = list(sources)
        self.sample_rate = sample_rate
        self.streaming = streaming
        self.window_samples = window_samples

    def separate(self, window: np.ndarray) -> np.ndarray:
        import torch

        n = window.shape[-1]
        if n > self.window_samples:
            raise ValueError(f"the TensorRT engine was built for {self.window_samples} samples; got {n}")
        with torch.cuda.stream(self._stream):
            self._input.zero_()
            self._input[0, :, :n].copy_(torch.from_numpy(np.ascontiguousarray(window)), non_blocking=True)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            self._host_output.copy_(self._output, non_blocking=True)
        self._stream.synchronize()
        return self._host_output[0, :, :, :n].numpy().copy()


def tensorrt_demucs(model, name: str, device: str, fp16: bool, window_s: float | None = None) -> TensorRTSeparator:
    """demucs_backend.BACKENDS entry: ONNX export (cached), then a TensorRT engine (cached per GPU)."""
    from stemd.engines.onnx_backend import demucs_geometry, single_htdemucs

    net = single_htdemucs(model, name)
    geometry = demucs_geometry(window_s)
    window = round(geometry.window_s * net.samplerate)
    return TensorRTSeparator(exported(net, window), net.sources, net.samplerate, window, geometry,
                             cache_dir("tensorrt"), fp16, name)
