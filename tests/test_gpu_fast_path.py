"""The GPU fast path's CPU-side logic (issue 16): the capture-safe HTDemucs has no host copies or
syncs (proved on the meta device, which is what a CUDA graph needs), batched separation equals one
window at a time, backends are refused below 40 dB against eager fp32 and auto keeps the fastest
that passed, torch.compile runs through Inductor with its cache under stemd's, and the GPU check
script runs end to end on the CPU. CUDA graphs themselves and GPU timings need a GPU:
benchmarks/gpu_check.sh."""

import copy
import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from stemd.engines import capture_safe
from stemd.engines.backend_choice import MIN_SDR_DB, check, fastest, probe_window, verified
from stemd.engines.demucs_backend import STREAMING, DemucsSeparator, random_htdemucs
from stemd.engines.metrics import sdr
from stemd.engines.precision import autocast

ROOT = Path(__file__).resolve().parents[1]
WINDOW = round(STREAMING.window_s * 44100)
TINY = {"channels": 8, "depth": 2, "t_layers": 1}  # the real architecture, small enough to compile in CI


@pytest.fixture(scope="module")
def model():
    return random_htdemucs(channels=8, t_layers=1)


@pytest.fixture(scope="module")
def windows():
    return np.stack([probe_window(44100, WINDOW, seed) for seed in range(2)])


def test_device_embedding_equals_demucs():
    import importlib.util

    spec = importlib.util.find_spec("demucs.transformer")
    pristine = importlib.util.module_from_spec(spec)  # demucs's own function, whatever is installed
    spec.loader.exec_module(pristine)
    for shape in ((48, 8, 10), (512, 8, 43), (16, 3, 5)):
        assert torch.equal(pristine.create_2d_sin_embedding(*shape), capture_safe.device_2d_sin_embedding(*shape))


def test_capture_safe_forward_touches_no_host_memory(model):
    from demucs_onnx.export.patch import patch_htdemucs_for_onnx

    onnx_patched = patch_htdemucs_for_onnx(copy.deepcopy(model))
    onnx_patched.use_train_segment = False
    found = capture_safe.host_traffic(onnx_patched, WINDOW)
    assert any("cpu" in f for f in found), found  # the probe sees the host embedding ...
    assert capture_safe.host_traffic(capture_safe.capture_safe_htdemucs(model), WINDOW, batch=2) == []


def test_capture_safe_model_separates_like_the_original(model, windows):
    eager = DemucsSeparator(model, "htdemucs", "cpu", fp16=False)
    safe = capture_safe.capture_safe_htdemucs(model)
    with torch.inference_mode():
        out = safe(torch.from_numpy(windows)).numpy()
    assert sdr(eager.separate_batch(windows), out) > 100


def test_half_precision_keeps_the_stft_in_fp32(model):
    """bf16 autocast on the CPU runs the same autocast logic the GPU's fp16 / bf16 paths run."""
    window = probe_window(44100, 8 * 1024)  # short: bf16 is emulated on most CPUs
    safe = capture_safe.capture_safe_htdemucs(model)
    with torch.inference_mode(), autocast("cpu", "bf16"):
        assert safe.real_stft(torch.from_numpy(window)[None]).dtype == torch.float32
        out = safe(torch.from_numpy(window)[None]).float().numpy()
    assert sdr(DemucsSeparator(model, "htdemucs", "cpu", fp16=False).separate(window), out[0]) > MIN_SDR_DB


def test_a_batch_separates_like_its_windows_one_at_a_time(model, windows):
    eager = DemucsSeparator(model, "htdemucs", "cpu", fp16=False)
    batched = eager.separate_batch(windows)
    assert batched.shape == (2, 4, 2, WINDOW)
    for item, window in zip(batched, windows):
        assert sdr(eager.separate(window), item) > 100


def test_backends_below_40_db_are_refused_with_the_figure(model, windows, caplog):
    eager = DemucsSeparator(model, "htdemucs", "cpu", fp16=False)
    other = random_htdemucs(channels=8, t_layers=1, seed=1)  # a different network: must be refused
    reference = eager.separate(windows[0])
    passed, verdict = check("same", lambda: DemucsSeparator(model, "htdemucs", "cpu"), reference, windows[0], runs=1)
    assert passed is not None and verdict.sdr_db > MIN_SDR_DB and verdict.ms_median > 0
    refused, verdict = check("other", lambda: DemucsSeparator(other, "x", "cpu"), reference, windows[0], runs=1)
    assert refused is None and f"SDR {verdict.sdr_db:.1f} dB" in verdict.refused
    with caplog.at_level(logging.WARNING, logger="stemd.engines.backend_choice"):
        assert verified("other", lambda: DemucsSeparator(other, "x", "cpu"), eager, windows[0]) is None
    assert "backend other refused: SDR" in caplog.text
    broken, verdict = check("broken", lambda: DemucsSeparator(model, "x", "no-such-device"), reference, windows[0])
    assert broken is None and "RuntimeError" in verdict.refused


def test_auto_keeps_the_fastest_backend_that_passed(model, windows):
    eager = DemucsSeparator(model, "htdemucs", "cpu", fp16=False)
    other = random_htdemucs(channels=8, t_layers=1, seed=1)
    chosen, verdicts = fastest({"wrong-weights": lambda: DemucsSeparator(other, "wrong", "cpu")}, eager, windows[0])
    assert chosen is eager  # the only faster-looking candidate separates differently
    assert [v.backend for v in verdicts] == ["torch-fp32", "wrong-weights"] and verdicts[1].refused


def test_inductor_caches_live_under_stemds_cache_folder(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    from stemd.engines.compile_backend import use_stemd_inductor_cache

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert use_stemd_inductor_cache() == cache_dir() == str(tmp_path / "stemd" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert use_stemd_inductor_cache() == cache_dir() == str(tmp_path / "mine")  # the user's wins


@pytest.mark.slow
def test_compile_backend_matches_eager(tmp_path, monkeypatch, request):
    """Short form: the capture-safe model traces as one full graph (aot_eager) and separates like
    eager. With --long: the configured `compile` backend, Inductor kernels, cached under stemd's."""
    from stemd.engines.compile_backend import CompiledSeparator
    from stemd.engines.demucs_backend import BACKENDS

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tiny = random_htdemucs(**TINY)
    window = probe_window(44100, WINDOW)
    eager = DemucsSeparator(tiny, "htdemucs", "cpu", fp16=False).separate(window)
    if request.config.getoption("--long"):
        compiled = BACKENDS["compile"](tiny, "htdemucs", "cpu", True)  # checked against eager at start
        assert isinstance(compiled, CompiledSeparator) and compiled.name == "htdemucs/compile-default-fp32"
        assert any((tmp_path / "stemd" / "inductor").rglob("*.py"))
    else:
        compiled = CompiledSeparator(tiny, "htdemucs", "cpu", STREAMING, compiler="aot_eager")
    assert sdr(eager, compiled.separate(window)) > MIN_SDR_DB and compiled.compile_s[1] > 0
    with pytest.raises(ValueError, match="compile mode 'fast'"):
        CompiledSeparator(tiny, "htdemucs", "cpu", STREAMING, mode="fast")


def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    """The prepared GPU check, as it will run there (a folder of links for stemd, nothing
    installed), on the CPU with the small model and one backend."""
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=str(ROOT / ".venv" / "bin" / "python"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = subprocess.run([str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--size", "small",
                           "--windows", "0.25", "--backends", "torch-fp32", "--runs", "2"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (written,) = tmp_path.glob("gpu-check-cpu-small-*.json")
    report = json.loads(written.read_text())
    assert [(r["backend"], r["batch"]) for r in report["rows"]] == [("torch-fp32", 1), ("torch-fp32", 2), ("torch-fp32", 4)]
    row = report["rows"][0]
    assert row["ms_p99"] >= row["ms_median"] > 0 and row["gflop_per_window"] > 0 and row["sdr_vs_fp32_db"] > 100
    assert "ms/hop med" in done.stdout and "GFLOP/window" in done.stdout and "== wrote" in done.stdout
