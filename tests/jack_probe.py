"""Test instruments on a real JACK server: a player that plays a signal into ports and a recorder
that records ports, both stamped with JACK's absolute frame time so delays are measured exactly."""

from __future__ import annotations

import threading
import time

import numpy as np


class Player:
    """Plays `signal[2, N]` once (then silence) from two output ports, starting at `play()`."""

    def __init__(self, jackd, signal: np.ndarray, name: str = "player", loop: bool = False) -> None:
        self.signal = np.ascontiguousarray(signal, dtype=np.float32)
        self.loop = loop
        self.client = jackd.client(name)
        self.ports = [self.client.outports.register(f"out_{c}") for c in "LR"]
        self.pos = -1  # -1: not playing yet
        self.start_frame: int | None = None
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, n: int) -> None:
        outs = [p.get_array() for p in self.ports]
        length = self.signal.shape[1]
        if self.pos < 0 or (self.pos >= length and not self.loop):
            for o in outs:
                o.fill(0.0)
            return
        if self.start_frame is None:
            self.start_frame = self.client.last_frame_time
        idx = (np.arange(self.pos, self.pos + n) % length) if self.loop else slice(self.pos, self.pos + n)
        chunk = self.signal[:, idx]
        for c, o in enumerate(outs):
            o[:chunk.shape[1]] = chunk[c]
            o[chunk.shape[1]:] = 0.0
        self.pos += n

    def play(self) -> None:
        self.pos = 0

    def connect(self, *targets: str) -> None:
        for port, target in zip(self.ports, targets):
            self.client.connect(port, target)

    @property
    def done(self) -> bool:
        return self.pos >= self.signal.shape[1]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class Recorder:
    """Records `channels` input ports into a preallocated buffer of `seconds`."""

    def __init__(self, jackd, channels: int, seconds: float, name: str = "recorder") -> None:
        self.client = jackd.client(name)
        self.ports = [self.client.inports.register(f"in_{i}") for i in range(channels)]
        self.data = np.zeros((channels, round(seconds * self.client.samplerate)), np.float32)
        self.pos = 0
        self.start_frame: int | None = None
        # Positions in `data` where the server ran cycles this (Python) client missed: the recording
        # splices there, and a tone's continuity cannot be judged across the splice.
        self.splices: list[int] = []
        self._next_frame = 0
        self.recording = threading.Event()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, n: int) -> None:
        if not self.recording.is_set() or self.pos >= self.data.shape[1]:
            return
        frame = self.client.last_frame_time
        if self.start_frame is None:
            self.start_frame = frame
        elif frame != self._next_frame:
            self.splices.append(self.pos)
        self._next_frame = (frame + n) & 0xFFFFFFFF  # JACK frame times wrap at 32 bits
        m = min(n, self.data.shape[1] - self.pos)
        for c, p in enumerate(self.ports):
            self.data[c, self.pos:self.pos + m] = p.get_array()[:m]
        self.pos += m

    def connect(self, *sources: str) -> None:
        for port, source in zip(self.ports, sources):
            self.client.connect(source, port)

    def start(self) -> None:
        self.recording.set()

    @property
    def full(self) -> bool:
        return self.pos >= self.data.shape[1]

    def wait_full(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.full and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.full, f"recorded {self.pos} of {self.data.shape[1]} frames in {timeout} s"

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class XrunWatch:
    """Counts the xruns the server reports while it is open: a period the server could not finish
    (any client late) breaks every recording in it, whatever stemd did."""

    def __init__(self, jackd, name: str = "xrunwatch") -> None:
        self.count = 0
        self.client = jackd.client(name)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _xrun(self, delayed_usecs: float) -> None:
        self.count += 1

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
