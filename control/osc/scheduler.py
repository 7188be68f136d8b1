"""Work taken off the OSC receive thread and run in order on one thread of its own: bundles with a
future time tag (run at their time), and sentences for the parser (run as soon as possible).

The receive loop must never sleep on a time tag (one bundle for tomorrow would freeze the surface)
nor wait for a parse, so that work waits in a heap served by one thread. The heap is bounded in size
and in horizon so a sender cannot park unbounded memory in the daemon.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Callable


class ScheduleFull(RuntimeError):
    """Too many pending timed messages, or a time tag too far ahead; the reason goes to the sender."""


class Scheduler:
    def __init__(self, run: Callable[[Any], None], max_pending: int = 1024, horizon_s: float = 3600.0,
                 what: str = "items") -> None:
        self._run_item = run
        self.max_pending = max_pending
        self.horizon_s = horizon_s
        self.what = what  # for the refusal: "1024 timed messages already pending"
        self._heap: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="stemd-osc-timed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; timed messages still pending are dropped with it."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def at(self, when: float, item: Any) -> None:
        """Run `item` at wall-clock time `when` (seconds since the epoch, as OSC time tags are)."""
        ahead = when - time.time()
        if ahead > self.horizon_s:
            raise ScheduleFull(f"time tag {ahead:.0f} s ahead; the limit is {self.horizon_s:.0f} s")
        with self._wake:
            if len(self._heap) >= self.max_pending:
                raise ScheduleFull(f"{self.max_pending} {self.what} already pending")
            heapq.heappush(self._heap, (when, next(self._order), item))
            self._wake.notify()

    @property
    def pending(self) -> int:
        return len(self._heap)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.time()):
                    timeout = self._heap[0][0] - time.time() if self._heap else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                _, _, item = heapq.heappop(self._heap)
            self._run_item(item)
