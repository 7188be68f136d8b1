"""Hand-off of Commands from control threads to the real-time thread.

`collections.deque.append` and `popleft` are atomic in CPython (no lock is taken that another Python
thread could hold across a wait), so one producer side and the JACK process callback as the single
consumer need nothing else. The bound keeps a flood of control messages from growing memory without
limit; the producer learns of it and can tell the sender.
"""

from __future__ import annotations

from collections import deque

from stemd.control.commands import Command


class QueueFull(RuntimeError):
    """The RT side has not drained the queue; the command is refused, never silently dropped."""


class CommandQueue:
    def __init__(self, capacity: int = 1024) -> None:
        self._items: deque[Command] = deque()
        self._capacity = capacity

    def put(self, command: Command) -> None:
        if len(self._items) >= self._capacity:
            raise QueueFull(f"command queue full ({self._capacity} pending); is the audio thread running?")
        self._items.append(command)

    def pop(self) -> Command | None:
        """Next command or None; never blocks (called on the RT thread)."""
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def __len__(self) -> int:
        return len(self._items)
