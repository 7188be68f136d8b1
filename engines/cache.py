"""Files shared by every stemd process on a machine (ONNX exports, TensorRT plans): built once,
written atomically, safe when several processes want the same file at the same time.

Two daemons, a `stemd bench` and a test run can all start on a machine whose cache is cold. A file
is only ever written under a unique temporary name in its own folder and renamed into place once it
is complete (and flushed), so a reader sees either no file or the whole one, never a half-written
graph. A per-file lock (flock, released by the kernel if the holder dies) makes the second process
wait for the first one's result instead of building the same file again.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`; when the block ends without an error the file written there
    becomes `path` in one rename, otherwise it is removed and `path` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold the machine-wide lock for `path` (a `.<name>.lock` file beside it, kept afterwards:
    removing it would let a third process lock a different file under the same name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def build_once(path: Path, build: Callable[[Path], object]) -> Path:
    """`path`, made by `build(partial)` unless it exists. `build` writes the file at the path it is
    given; other processes asking for the same `path` meanwhile wait and then use that file."""
    if path.exists():
        return path
    with file_lock(path):
        if not path.exists():  # another process may have built it while we waited
            with atomic_file(path) as partial:
                build(partial)
    return path
