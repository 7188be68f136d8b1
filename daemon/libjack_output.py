"""libjack's error output: caught, so the daemon decides what reaches the log, instead of stderr.

libjack prints its errors to stderr by default. A failed `jack_client_open` prints five or six lines
("Cannot connect to server socket", "jack server is not running or cannot be started",
"JackShmReadWritePtr ... skipping unlock"); a server that dies prints as many through the client's
own thread. The daemon retries every `[jack] reconnect_interval_s` while a server is gone, so a
one-minute outage used to put hundreds of such lines in the journal; it logs one line per outage
and one when the server is back instead.

libjack's error hook is process-wide and may be called from any of its threads, so one hook is
installed once, at import, and never swapped (two threads swapping it would undo each other):
- inside `quiet()` (an attempt to join a server that may not be there) messages are dropped;
- while a `collect()` queue is set (the daemon runs) they go there, and the supervisor logs them
  or, during an outage, drops them;
- otherwise they go to stderr as before.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import jack

KEEP = 100  # messages queued between two supervision ticks at most; older ones are dropped

_lock = threading.Lock()
_quiet = 0
_queue: deque[str] | None = None


def _on_error(message: str) -> None:
    if _quiet:
        return
    queue = _queue
    if queue is not None:
        queue.append(message)  # deque.append: atomic, never blocks
    else:
        print(message, file=sys.stderr)


jack.set_error_function(_on_error)


@contextmanager
def quiet() -> Iterator[None]:
    """Drop libjack's messages inside the block ("cannot connect" is an answer, not an error)."""
    global _quiet
    with _lock:
        _quiet += 1
    try:
        yield
    finally:
        with _lock:
            _quiet -= 1


def collect() -> deque[str]:
    """From now on libjack's messages queue up in the returned deque (the caller drains it)."""
    global _queue
    _queue = deque(maxlen=KEEP)
    return _queue


def release() -> None:
    """Back to stderr."""
    global _queue
    _queue = None
