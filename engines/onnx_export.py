"""Export HTDemucs to ONNX for one fixed streaming window.

The stock exporters fail on HTDemucs (complex STFT, `Fraction` segment, a random positional shift,
the fused MultiheadAttention op). demucs-onnx's `patch_htdemucs_for_onnx` fixes exactly those four
things on a model instance — STFT/iSTFT as convolutions over windowed DFT kernels, float segment, no
shift, plain attention — so we use it rather than repeat it. The window length is baked into the
graph: the streaming engine always hands the model W seconds, so one fixed shape is all it needs and
is what TensorRT optimises best.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from stemd.engines.cache import atomic_file, build_once
from stemd.engines.metrics import sdr

INPUT_NAME = "mix"
OUTPUT_NAME = "stems"
OPSET = 17


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """Parity of the exported graph against the PyTorch model on the same random input."""

    path: Path
    window_samples: int
    max_abs_error: float
    sdr_db: float
    export_s: float


def cache_dir(kind: str) -> Path:
    """Where exported graphs and built engines live: $XDG_CACHE_HOME/stemd/<kind>."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "stemd" / kind


def onnx_cache_path(model: torch.nn.Module, window_samples: int, cache_dir: Path) -> Path:
    """One file per (weights, window, opset, torch version): a change to any of them re-exports."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    digest.update(f"{window_samples}-{OPSET}-{torch.__version__}".encode())
    return cache_dir / f"htdemucs-{window_samples}-{digest.hexdigest()[:16]}.onnx"


def export_htdemucs(model: torch.nn.Module, path: Path, window_samples: int,
                    tolerance: float = 1e-3) -> ExportReport:
    """Export `model` (an HTDemucs, left untouched) to `path` and verify it in ONNX Runtime; `path`
    appears only once verified (atomically, engines/cache.py).

    Raises RuntimeError when the exported graph disagrees with PyTorch by more than `tolerance`
    (max abs): a wrong graph must never reach a stage.
    """
    with atomic_file(path) as partial:
        report = _export_verified(model, partial, window_samples, tolerance)
    return dataclasses.replace(report, path=path)


def _export_verified(model: torch.nn.Module, path: Path, window_samples: int, tolerance: float) -> ExportReport:
    from demucs_onnx.export.patch import patch_htdemucs_for_onnx

    patched = patch_htdemucs_for_onnx(copy.deepcopy(model).cpu().float())
    patched.use_train_segment = False
    probe = torch.randn(1, 2, window_samples, generator=torch.Generator().manual_seed(0)) * 0.1
    started = time.perf_counter()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            patched, (probe,), str(path), opset_version=OPSET, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], do_constant_folding=True, dynamo=False,
        )
    export_s = time.perf_counter() - started
    reference = _torch_reference(model, probe)
    got = _run_onnx(path, probe.numpy())
    error = float(np.abs(got - reference).max())
    if not error <= tolerance:
        raise RuntimeError(f"ONNX export disagrees with PyTorch: max abs error {error:.3g} > {tolerance:g}")
    return ExportReport(path, window_samples, error, sdr(reference, got), export_s)


def exported(model: torch.nn.Module, window_samples: int) -> Path:
    """The cached ONNX file for `model` at this window, exporting (and verifying) it on first use;
    concurrent processes share one export (engines/cache.py)."""
    path = onnx_cache_path(model, window_samples, cache_dir("onnx"))
    return build_once(path, lambda partial: _export_verified(model, partial, window_samples, 1e-3))


def _torch_reference(model: torch.nn.Module, probe: torch.Tensor) -> np.ndarray:
    original = copy.deepcopy(model).cpu().float().eval()
    original.use_train_segment = False
    with torch.inference_mode():
        return original(probe).numpy()


def _run_onnx(path: Path, mix: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: mix})[0]
