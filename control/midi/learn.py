"""MIDI learn persistence: learned bindings as JSON in the state folder, written atomically.

The file holds config-entry dicts (the `[[midi.map]]` form), so a learned binding can be copied into
config.toml as it is. A write goes to a temporary file in the same folder, is fsynced and renamed
over the old one, so a crash or power loss leaves either the old set or the new one, never half.
A damaged file is reported and ignored rather than stopping the daemon.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable

from stemd.control.midi.mapping import Binding, MappingError, bindings_from_entries

log = logging.getLogger("stemd.midi")

FILE_NAME = "midi-learn.json"


class LearnStore:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir).expanduser() / FILE_NAME

    def load(self) -> list[Binding]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["map"] if isinstance(data, dict) else None
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise MappingError(f"{self.path}: expected {{\"map\": [entries]}}")
            return bindings_from_entries(entries, str(self.path))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError) as exc:  # JSONDecodeError and MappingError are ValueErrors
            log.warning("MIDI learn: ignoring %s: %s", self.path, exc)
            return []

    def save(self, bindings: Iterable[Binding]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"map": [b.to_entry() for b in bindings]}, indent=1, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
