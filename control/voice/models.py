"""Where the Vosk model lives: the configured folder, else the folders Vosk itself searches.

Voice control is optional equipment: a rig without a model runs everything else, and `status()` of the
voice service carries the reason built here, so `stemd status` can say exactly what to do about it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from stemd.control.commands import CommandError

# The small English model: ~40 MB, runs in real time on one core of a Raspberry Pi.
DEFAULT_MODEL = "vosk-model-small-en-us-0.15"
# A folder is a Vosk model when it holds the acoustic model and its decoding configuration.
_MARKERS = ("am/final.mdl", "conf/model.conf")


class VoiceUnavailable(CommandError):
    """Voice control cannot run; the message says why and what to do."""


def is_model(folder: Path) -> bool:
    return all((folder / marker).is_file() for marker in _MARKERS)


def search_dirs() -> list[Path]:
    """Vosk's own model folders ($VOSK_MODEL_PATH, /usr/share/vosk, ~/.cache/vosk), in its order."""
    import vosk

    return [Path(d) for d in vosk.MODEL_DIRS if d is not None]


def resolve(model_path: str) -> Path:
    """The model folder to load, or VoiceUnavailable naming what is missing."""
    if model_path:
        folder = Path(model_path).expanduser()
        if not folder.is_dir():
            raise VoiceUnavailable(f"[voice] model_path {folder}: no such folder")
        if not is_model(folder):
            raise VoiceUnavailable(
                f"[voice] model_path {folder}: not a Vosk model folder (needs {' and '.join(_MARKERS)})"
            )
        return folder
    for parent in search_dirs():
        for folder in sorted(parent.glob(f"{DEFAULT_MODEL}*")):
            if is_model(folder):
                return folder
    where = ", ".join(str(d) for d in search_dirs())
    raise VoiceUnavailable(
        f"no Vosk model: set [voice] model_path, or run `stemd models fetch vosk` (installs "
        f"{DEFAULT_MODEL} into one of: {where})"
    )


def fetch(name: str = DEFAULT_MODEL) -> Path:
    """Download `name` with Vosk's own downloader (needs internet) unless present, and prove it loads."""
    import vosk

    try:
        return installed(name)
    except VoiceUnavailable:
        vosk.Model(model_name=name)  # downloads into ~/.cache/vosk, unpacks, loads
        return installed(name)


def installed(name: str) -> Path:
    for parent in search_dirs():
        if is_model(parent / name):
            return parent / name
    raise VoiceUnavailable(f"Vosk model {name} is not in any of {', '.join(map(str, search_dirs()))}")


@functools.lru_cache(maxsize=2)
def load(folder: Path) -> Any:
    """The loaded Vosk model (1-3 s and a few hundred MB: loaded once per process and folder)."""
    import vosk

    vosk.SetLogLevel(-1)
    try:
        return vosk.Model(str(folder))
    except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
        raise VoiceUnavailable(f"Vosk could not load the model in {folder}: {exc}") from None


ENGINES = ("auto", "vosk", "pocketsphinx")


def choose_engine(engine: str, model_path: str) -> tuple[str, str]:
    """(recogniser, why): `auto` takes Vosk when a model is installed (or configured), else PocketSphinx,
    whose English model ships in its wheel, so voice works out of the box. A configured model_path
    that is broken is an error, not a silent switch to another engine."""
    if engine not in ENGINES:
        raise VoiceUnavailable(f"[voice] engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "auto":
        return engine, f"[voice] engine = {engine}"
    if model_path:
        resolve(model_path)
        return "vosk", "auto: [voice] model_path is a Vosk model"
    try:
        return "vosk", f"auto: Vosk model {resolve('')} is installed"
    except VoiceUnavailable:
        return "pocketsphinx", "auto: no Vosk model installed, so PocketSphinx en-us (ships with stemd)"
