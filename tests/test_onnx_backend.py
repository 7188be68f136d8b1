"""The ONNX path on CPU: the exported random-weight HTDemucs must match PyTorch, and the TensorRT
backend must refuse clearly where TensorRT or a GPU is missing (GPU runs: `stemd bench` on a GPU)."""

import numpy as np
import pytest

from stemd.engines.demucs_backend import STREAMING, DemucsSeparator, random_htdemucs
from stemd.engines.metrics import sdr
from stemd.engines.onnx_backend import OnnxSeparator, onnx_demucs, single_htdemucs
from stemd.engines.onnx_export import export_htdemucs, onnx_cache_path
from stemd.engines.tensorrt_backend import tensorrt_missing

WINDOW = round(STREAMING.window_s * 44100)  # the demucs streaming window, on HTDemucs's frame grid


@pytest.fixture(scope="module")
def model():
    return random_htdemucs(channels=8, t_layers=1)


@pytest.fixture(scope="module")
def cache(model, tmp_path_factory):
    """One export for the module, placed where the backend's cache looks for it."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(root))
        report = export_htdemucs(model, onnx_cache_path(model, WINDOW, root / "stemd" / "onnx"), WINDOW)
        yield root, report


def test_export_matches_pytorch(cache):
    _, report = cache
    print(f"\nONNX vs PyTorch: max abs {report.max_abs_error:.2e}, SDR {report.sdr_db:.1f} dB, "
          f"export {report.export_s:.1f} s")
    assert report.max_abs_error < 1e-3
    assert report.sdr_db > 60


def test_onnx_separator_agrees_with_torch_separator(model, cache, monkeypatch):
    root, report = cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    onnx = onnx_demucs(model, "htdemucs", "cpu", fp16=False)
    assert onnx.session is not None and report.path.exists()
    assert isinstance(onnx, OnnxSeparator) and onnx.window_samples == WINDOW
    torch_sep = DemucsSeparator(model, "htdemucs", "cpu")
    window = (np.random.default_rng(1).standard_normal((2, WINDOW)) * 0.1).astype(np.float32)
    a, b = torch_sep.separate(window), onnx.separate(window)
    assert a.shape == b.shape == (4, 2, WINDOW)
    assert sdr(a, b) > 60
    assert list(onnx.sources) == torch_sep.sources
    assert [p.suffix for p in (root / "stemd" / "onnx").iterdir()] == [".onnx"]  # reused, not re-exported
    with pytest.raises(ValueError, match=f"exported for {WINDOW} samples"):
        onnx.separate(np.zeros((2, WINDOW + 1), np.float32))


def test_bags_of_several_models_are_refused(model):
    from demucs.apply import BagOfModels

    with pytest.raises(RuntimeError, match="bag of 2 models"):
        single_htdemucs(BagOfModels([model, model]), "htdemucs_ft")


def test_tensorrt_absence_is_explained():
    reason = tensorrt_missing()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present: the GPU bench exercises the backend")
    assert "TensorRT" in reason


def test_auto_and_cuda_graph_backends_run_eager_torch_on_cpu(model):
    from stemd.engines.demucs_backend import BACKENDS

    for name in ("auto", "cuda-graph"):
        assert isinstance(BACKENDS[name](model, "htdemucs", "cpu", True), DemucsSeparator)
