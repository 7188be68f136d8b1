"""PyTorch backend for the HTDemucs family, loaded through demucs's own pretrained loader.

Why demucs's loader and not our own: a user who already ran `demucs` has the weights in demucs's
caches (the Hugging Face hub cache, or torch.hub's `checkpoints/`), and a model repo folder made for
`demucs --repo` works here unchanged. Only `stemd models fetch` downloads (`download_demucs_model`):
loading reads the cached files by path through demucs's own pieces, because `get_model` asks the
Hugging Face hub first even when the files are cached, and offline that retries five times (30 s
here where DNS fails at once; longer where lookups time out) before it falls back. A missing file is one error naming the exact file and folder, at once.

Streaming runs the model on short windows, so every HTDemucs is switched to `use_train_segment=False`:
otherwise it pads each window to its 7.8 s training segment and a 1 s window costs as much as 7.8 s.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from stemd.engines.registry import ModelNotAvailable
from stemd.engines.separator import BatchSeparator, Separator, StreamingDefaults

# Streaming geometry (W, H, R in seconds), whole multiples of HTDemucs's 1024-sample frame grid so
# that fixed-window backends (ONNX, CUDA graphs) and the streaming engine agree on the window length:
# W = 43 x 1024 (0.998 s), H = R = 2048 (46.4 ms). See docs/decisions/engine.md "Streaming geometry".
STREAMING = StreamingDefaults(window_s=43 * 1024 / 44100, hop_s=2048 / 44100, right_s=2048 / 44100)


def _remote_root() -> Path:
    from demucs.pretrained import REMOTE_ROOT

    return Path(REMOTE_ROOT)


def signatures(name: str) -> list[str]:
    """The single-model signatures a named demucs bag is made of (from demucs's own yaml)."""
    import yaml

    bag = _remote_root() / f"{name}.yaml"
    if not bag.exists():
        raise ModelNotAvailable(f"demucs has no pretrained model named {name!r}")
    return list(yaml.safe_load(bag.read_text())["models"])


def checkpoint_dir() -> Path:
    """Where demucs's legacy loader (torch.hub) keeps weight files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_files(name: str) -> list[Path]:
    """The torch.hub checkpoint files demucs loads `name` from (what `stemd models` shows)."""
    from demucs.pretrained import _parse_remote_files

    urls = _parse_remote_files(_remote_root() / "files.txt")
    return [checkpoint_dir() / urls[sig].rsplit("/", 1)[1] for sig in signatures(name)]


def _hf_cached_files(name: str) -> list[Path] | None:
    """The bag's yaml and safetensors in the Hugging Face cache (no request), None unless all are."""
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name

    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # demucs then loads from torch.hub's cache only
        return None

    repo = f"{DEFAULT_NAMESPACE}/{hf_repo_name(name)}"
    found = [try_to_load_from_cache(repo, f) for f in [f"{name}.yaml"] + [f"{s}.safetensors" for s in signatures(name)]]
    return [Path(f) for f in found] if all(isinstance(f, str) for f in found) else None


def in_hf_cache(name: str) -> bool:
    return _hf_cached_files(name) is not None


def weights_present(name: str) -> bool:
    """True when demucs can load `name` without the network."""
    return in_hf_cache(name) or all(p.exists() for p in weight_files(name))


def _missing_message(name: str) -> str:
    files = [p for p in weight_files(name) if not p.exists()]
    if not files:
        return f"model {name}: its weight files in {checkpoint_dir()} are there but did not load"
    listed = ", ".join(p.name for p in files)
    return (
        f"model {name}: weight file {listed} not found in {checkpoint_dir()} (nor in the Hugging Face "
        f"cache); put it there, or run `stemd models fetch demucs {name}` on a machine with internet, "
        "or set engine.model_path to a weight file or demucs repo folder"
    )


def load_demucs_model(name: str, model_path: str = "") -> torch.nn.Module:
    """An HTDemucs or a BagOfModels, from demucs's caches, a repo folder, or a single weight file."""
    from demucs.pretrained import get_model
    from demucs.repo import ModelLoadingError

    if model_path:
        path = Path(model_path).expanduser()
        if path.is_dir():
            try:
                return get_model(name, repo=path)
            except ModelLoadingError as exc:
                raise ModelNotAvailable(
                    f"model {name}: the repo folder {path} has neither {name}.yaml nor {name}.th ({exc})"
                ) from exc
        if not path.is_file():
            raise ModelNotAvailable(f"model {name}: weight file {path} does not exist")
        return _load_file(path)
    if not weights_present(name):
        raise ModelNotAvailable(_missing_message(name))
    try:
        return _from_caches(name)
    except Exception as exc:  # demucs reports damaged files with many types
        raise ModelNotAvailable(f"{_missing_message(name)} ({exc})") from exc


def _from_caches(name: str) -> torch.nn.Module:
    """What `get_model(name)` returns, from the cached files only: the Hugging Face cache's
    safetensors, else torch.hub's checkpoints through demucs's legacy repo, which reads a file that
    is there without a request."""
    from demucs.apply import BagOfModels
    from demucs.pretrained import _parse_remote_files
    from demucs.repo import AnyModelRepo, BagOnlyRepo, RemoteRepo

    hf_files = _hf_cached_files(name)
    if hf_files is not None:
        import yaml

        from demucs.hf import load_safetensors_model

        bag = yaml.safe_load(hf_files[0].read_text())
        models = [load_safetensors_model(path) for path in hf_files[1:]]
        return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()
    models = RemoteRepo(_parse_remote_files(_remote_root() / "files.txt"))
    return AnyModelRepo(models, BagOnlyRepo(_remote_root(), models)).get_model(name).eval()


def download_demucs_model(name: str) -> torch.nn.Module:
    """The one path that uses the network: demucs's `get_model`, the Hugging Face hub first, then
    demucs's legacy repo (for `stemd models fetch demucs NAME`)."""
    from demucs.pretrained import get_model

    return get_model(name)


def _load_file(path: Path) -> torch.nn.Module:
    from demucs.states import load_model

    try:
        if path.suffix == ".safetensors":
            from demucs.hf import load_safetensors_model

            model = load_safetensors_model(path)
        else:
            model = load_model(path)
    except Exception as exc:
        raise ModelNotAvailable(f"{path} is not a demucs model file: {exc}") from exc
    return model.eval()


class DemucsSeparator(BatchSeparator):
    """One HTDemucs, or a bag of them averaged with demucs's per-source weights (htdemucs_ft)."""

    def __init__(self, model: torch.nn.Module, name: str, device: str = "cpu", fp16: bool = True,
                 streaming: StreamingDefaults = STREAMING) -> None:
        from demucs.apply import BagOfModels

        self.bag = model if isinstance(model, BagOfModels) else BagOfModels([model])
        self.models = list(self.bag.models)
        for m in self.models:
            if hasattr(m, "use_train_segment"):
                m.use_train_segment = False
            m.to(device).eval()
        weights = torch.tensor(self.bag.weights, dtype=torch.float32)
        self._weights = (weights / weights.sum(0, keepdim=True)).to(device)
        self.name = name
        self.sources = list(self.bag.sources)
        self.sample_rate = int(self.bag.samplerate)
        self.streaming = streaming
        # Offline separation uses windows as long as the models were trained on.
        self.offline_window_s = float(min(m.segment for m in self.models))
        self.grid = math.lcm(*(m.hop_length for m in self.models), *(m.stride ** m.depth for m in self.models))
        self.device = torch.device(device)
        self.fp16 = fp16 and self.device.type == "cuda"

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.fp16:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def separate_batch(self, windows: np.ndarray) -> np.ndarray:
        """One forward per model for all B windows (HTDemucs normalises each item on its own, so a
        window's stems do not depend on its batch neighbours)."""
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self.device)
        with torch.inference_mode(), self._autocast():
            out = None
            for model, weight in zip(self.models, self._weights):
                y = model(x).float() * weight[:, None, None]
                out = y if out is None else out + y
        return out.cpu().numpy()

    def separate_offline(self, mix: np.ndarray) -> np.ndarray:
        """demucs's own `apply_model` on a whole track (7.8 s segments, 25 % overlap, no shifts,
        training-segment padding): the reference streaming output is scored against."""
        from demucs.apply import apply_model

        x = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32))[None]
        with _train_segment(self.models), torch.inference_mode(), self._autocast():
            out = apply_model(self.bag, x, shifts=0, split=True, overlap=0.25, device=self.device)
        return out[0].float().cpu().numpy()


@contextlib.contextmanager
def _train_segment(models: Sequence[torch.nn.Module]):
    for m in models:
        m.use_train_segment = True
    try:
        yield
    finally:
        for m in models:
            m.use_train_segment = False


# Backend name -> wrapper around a loaded demucs model. Other backends (ONNX, TensorRT) register here.
def _onnx(model, name: str, device: str, fp16: bool) -> Separator:
    from stemd.engines.onnx_backend import onnx_demucs

    return onnx_demucs(model, name, device, fp16)


def _tensorrt(model, name: str, device: str, fp16: bool) -> Separator:
    from stemd.engines.tensorrt_backend import tensorrt_demucs

    return tensorrt_demucs(model, name, device, fp16)


def _fast_path(kind: str) -> Callable[..., Separator]:
    def wrap(model, name: str, device: str, fp16: bool) -> Separator:
        from stemd.engines.backend_choice import demucs_fast_path

        return demucs_fast_path(kind, model, name, device, fp16)

    return wrap


def _auto(model, name: str, device: str, fp16: bool) -> Separator:
    """On CUDA the fastest backend that passes its check against eager fp32, measured at start."""
    from stemd.engines.backend_choice import auto_demucs

    return auto_demucs(model, name, device, fp16)


BACKENDS: dict[str, Callable[..., Separator]] = {
    "torch": lambda model, name, device, fp16: DemucsSeparator(model, name, device, fp16),
    "onnx": _onnx,
    "tensorrt": _tensorrt,
    "cuda-graph": _fast_path("cuda-graph"),
    "compile": _fast_path("compile"),
    "auto": _auto,
}


def demucs_separator(name: str, *, model_path: str = "", device: str = "cpu", backend: str = "torch",
                     fp16: bool = True) -> Separator:
    """The registry's factory for htdemucs, htdemucs_6s and htdemucs_ft."""
    wrap = BACKENDS.get(backend)
    if wrap is None:
        raise ModelNotAvailable(f"backend {backend!r} is not available for {name}; "
                                f"available: {', '.join(sorted(BACKENDS))}")
    return wrap(load_demucs_model(name, model_path), name, device, fp16)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run with `n` intra-op threads (the worker's `engine.threads`), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- random-weight models of the real architecture (tests, benchmarks) -----------------------------

HTDEMUCS_SIZE = {"channels": 48, "bottom_channels": 512, "t_layers": 5}  # 41.5 M parameters
SMALL_SIZE = {"channels": 8, "t_layers": 1}


def random_htdemucs(channels: int = 8, sources: Sequence[str] = ("drums", "bass", "other", "vocals"),
                    seed: int = 0, **kwargs) -> torch.nn.Module:
    """A demucs.htdemucs.HTDemucs with random weights (built through demucs's `capture_init`, so it
    serializes like a trained checkpoint)."""
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    kwargs.setdefault("segment", 7.8)  # the pretrained models' training segment
    return HTDemucs(list(sources), channels=channels, **kwargs).eval()


def save_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    """Write `model` as a demucs package (klass, args, kwargs, state): the format demucs's
    `states.load_model` and `LocalRepo` read."""
    args, kwargs = model._init_args_kwargs
    package = {"klass": model.__class__, "args": args, "kwargs": kwargs,
               "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(package, path)
    return path


def write_repo(folder: Path, name: str, models: Sequence[torch.nn.Module],
               weights: list[list[float]] | None = None) -> Path:
    """A demucs model repo folder (`demucs --repo`): one `<sig>.th` per model and `<name>.yaml`
    (with per-source weights for a bag like htdemucs_ft)."""
    import yaml

    sigs = [f"{name}{i}" for i in range(len(models))]
    for sig, model in zip(sigs, models):
        save_checkpoint(model, folder / f"{sig}.th")
    bag = {"models": sigs} if weights is None else {"models": sigs, "weights": weights}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(bag))
    return folder
