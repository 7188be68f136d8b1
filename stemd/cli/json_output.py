"""`--json` output that is pure JSON on stdout, whatever the libraries underneath print.

Loading a model or a runtime can write to stdout: a library's `print`, a progress bar, a C library
writing to file descriptor 1 (ONNX Runtime, libjack). Any of that inside `stemd bench --json > rows.json`
makes the file unreadable. While a JSON command works, fd 1 and `sys.stdout` point at stderr (where
the noise stays visible to a person); the JSON alone goes to the real stdout at the end.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def json_stdout() -> Iterator[Callable[[str], None]]:
    """Yields `emit(text)` for the command's JSON text; whatever else the block writes to stdout
    goes to stderr instead, and the JSON is written to stdout once the block finished without error."""
    sys.stdout.flush()
    real_stdout, previous = os.dup(1), sys.stdout
    payload = io.StringIO()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield payload.write
    finally:
        sys.stderr.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
        sys.stdout = previous
    if payload.getvalue():  # reached only when the block did not raise
        print(payload.getvalue(), flush=True)
