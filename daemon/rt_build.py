"""Builds the compiled process callback (rt_callback.c) into a shared library next to its source.

scripts/install.sh runs this once (`python -m stemd.daemon.rt_build`); `library()` builds again only
when the library is missing or older than its sources (a checkout that moved on), so a daemon or a
test never runs a stale callback. gcc is a build dependency of the project (it is on the machine and
on CI); the library links to libjack by soname, so under PipeWire (pw-jack) it binds to the libjack
the process already loaded, as JACK-Client does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = (HERE / "rt_callback.c", HERE / "rt_state.h")
LIBRARY = HERE / "_rt_callback.so"
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-fno-math-errno")


def _stale() -> bool:
    if not LIBRARY.exists():
        return True
    built = LIBRARY.stat().st_mtime
    return any(source.stat().st_mtime > built for source in SOURCES)


def build() -> Path:
    """Compile to a temporary name, then rename: processes building at once never load a torn file."""
    tmp = LIBRARY.with_name(f".{LIBRARY.name}.{os.getpid()}")
    cc = os.environ.get("CC", "gcc")
    subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(SOURCES[0]), "-l:libjack.so.0"], check=True)
    os.replace(tmp, LIBRARY)
    return LIBRARY


def library() -> Path:
    """The compiled callback's path, built first if need be."""
    return build() if _stale() else LIBRARY


if __name__ == "__main__":
    print(build())
    sys.exit(0)
