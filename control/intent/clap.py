"""LAION CLAP through transformers (ClapModel / ClapProcessor) from a local folder.

Why not the `laion-clap` package: 1.1.7 imports torchvision without declaring it (installing it pulls a
CUDA torch), pins numpy < 2, and fetches tokenizers from the Hugging Face hub at import, which hangs
offline. transformers loads the same checkpoints (laion/clap-htsat-unfused, ...) from a folder with
`local_files_only=True`, so a daemon never touches the network.

One loaded model serves both uses: text embeddings for the semantic layer, audio embeddings of the
live stems for routing instruments the separation model has no stem for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

CLAP_REPO = "laion/clap-htsat-unfused"
CLAP_RATE = 48000


def default_clap_dir() -> Path:
    """Where `stemd models fetch clap` puts the checkpoint."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stemd" / "models" / "clap"


def find_checkpoint(clap_path: str = "") -> tuple[Path | None, str]:
    """The checkpoint folder to load, or None and why not (said by `stemd status`)."""
    folder = Path(clap_path).expanduser() if clap_path else default_clap_dir()
    where = "[intent] clap_path" if clap_path else "`stemd models fetch clap`'s folder"
    if not (folder / "config.json").is_file():
        return None, f"no CLAP checkpoint at {folder} ({where})"
    return folder, ""


def fetch(target: Path | None = None, repo: str = CLAP_REPO) -> Path:
    """Download the checkpoint into `target` (needs internet; `stemd models fetch clap`)."""
    from transformers import ClapModel, ClapProcessor

    target = target or default_clap_dir()
    target.mkdir(parents=True, exist_ok=True)
    ClapModel.from_pretrained(repo).save_pretrained(target)
    ClapProcessor.from_pretrained(repo).save_pretrained(target)
    return target


class Clap:
    """A loaded CLAP model: unit-norm text and audio embeddings as numpy rows."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        import torch
        from transformers import ClapModel, ClapProcessor

        from stemd.control.intent.semantic import quiet_loading

        quiet_loading()
        self.folder = Path(folder)
        self.model = ClapModel.from_pretrained(self.folder, local_files_only=True).eval()
        self.processor = ClapProcessor.from_pretrained(self.folder, local_files_only=True)
        self.sample_rate = int(getattr(self.processor.feature_extractor, "sampling_rate", CLAP_RATE))
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        from stemd.control.intent.semantic import single_thread

        inputs = self.processor.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        with self._torch.inference_mode(), single_thread():
            out = self.model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return _rows(out)

    def embed_audio(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Embed mono clips; they are resampled to the model's rate (48 kHz for LAION CLAP)."""
        if sample_rate != self.sample_rate:
            import soxr

            clips = [soxr.resample(np.asarray(c, dtype=np.float32), sample_rate, self.sample_rate) for c in clips]
        # The fused and unfused checkpoints expect different mel stacks; clips shorter than the
        # extractor's 10 s are never cropped, so "rand_trunc" stays deterministic here.
        fused = bool(getattr(self.model.config.audio_config, "enable_fusion", False))
        features = self.processor.feature_extractor(
            [np.asarray(c, dtype=np.float32) for c in clips], sampling_rate=self.sample_rate,
            truncation="fusion" if fused else "rand_trunc", return_tensors="pt",
        )
        with self._torch.inference_mode():
            out = self.model.get_audio_features(
                input_features=features["input_features"], is_longer=features.get("is_longer")
            )
        return _rows(out)


def _rows(out) -> np.ndarray:
    """transformers 5 returns an output whose pooler_output is the normalized projection; 4.x a tensor."""
    tensor = getattr(out, "pooler_output", out)
    rows = tensor.detach().float().cpu().numpy()
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
