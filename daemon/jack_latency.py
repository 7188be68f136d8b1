"""JACK's port latency API (`jack_set_latency_callback`, `jack_port_{get,set}_latency_range`).

JACK-Client 0.5 does not wrap this part of libjack, so it is declared here with cffi (which
JACK-Client itself is built on) against the same libjack. A client that adds latency must answer the
latency callback: in capture mode every output's range is the inputs' capture range plus its own
delay, in playback mode every input's range is the outputs' playback range plus the delay. Setting
the callback replaces libjack's default propagation, so both directions are always answered.
"""

from __future__ import annotations

import ctypes.util
import logging
from typing import Sequence

import cffi
import jack

log = logging.getLogger(__name__)

_ffi = cffi.FFI()
_ffi.cdef(
    """
    typedef uint32_t jack_nframes_t;
    typedef struct { jack_nframes_t min; jack_nframes_t max; } jack_latency_range_t;
    typedef enum { JackCaptureLatency, JackPlaybackLatency } jack_latency_callback_mode_t;
    typedef void (*JackLatencyCallback)(jack_latency_callback_mode_t mode, void *arg);
    int jack_set_latency_callback(void *client, JackLatencyCallback cb, void *arg);
    void jack_port_get_latency_range(void *port, jack_latency_callback_mode_t mode, jack_latency_range_t *range);
    void jack_port_set_latency_range(void *port, jack_latency_callback_mode_t mode, jack_latency_range_t *range);
    """
)
_lib = _ffi.dlopen(ctypes.util.find_library("jack") or "libjack.so.0")

CAPTURE = _lib.JackCaptureLatency
PLAYBACK = _lib.JackPlaybackLatency


def _handle(obj: jack.Client | jack.Port) -> object:
    """The libjack pointer behind a JACK-Client object, as a pointer of this module's ffi."""
    return _ffi.cast("void *", int(jack._ffi.cast("uintptr_t", obj._ptr)))


def get_latency(port: jack.Port, mode: int) -> tuple[int, int]:
    """(min, max) latency in frames of `port` in `mode` (CAPTURE or PLAYBACK)."""
    rng = _ffi.new("jack_latency_range_t *")
    _lib.jack_port_get_latency_range(_handle(port), mode, rng)
    return rng.min, rng.max


def _set_latency(port: jack.Port, mode: int, low: int, high: int) -> None:
    rng = _ffi.new("jack_latency_range_t *")
    rng.min, rng.max = low, high
    _lib.jack_port_set_latency_range(_handle(port), mode, rng)


class LatencyReporter:
    """Reports that `outputs` carry `inputs` delayed by `frames` (the daemon's L)."""

    def __init__(
        self, client: jack.Client, inputs: Sequence[jack.Port], outputs: Sequence[jack.Port], frames: int,
        unrelated: Sequence[jack.Port] = (),
    ) -> None:
        self.frames = frames
        self._client = client
        self._inputs = list(inputs)
        self._outputs = list(outputs)
        self._unrelated = list(unrelated)  # ports whose signal does not reach the outputs (mic)
        self._callback = _ffi.callback("void(jack_latency_callback_mode_t, void *)", self._answer,
                                       onerror=self._error)
        if _lib.jack_set_latency_callback(_handle(client), self._callback, _ffi.NULL) != 0:
            raise jack.JackError("jack_set_latency_callback failed")

    def _answer(self, mode: int, _arg: object) -> None:
        sources, targets = (self._inputs, self._outputs) if mode == CAPTURE else (self._outputs, self._inputs)
        ranges = [get_latency(p, mode) for p in sources] or [(0, 0)]
        low = min(r[0] for r in ranges) + self.frames
        high = max(r[1] for r in ranges) + self.frames
        for port in targets:
            _set_latency(port, mode, low, high)
        for port in self._unrelated:
            _set_latency(port, mode, 0, 0)

    @staticmethod
    def _error(exc_type: type, value: BaseException, _tb: object) -> None:
        log.error("latency callback failed: %s: %s", exc_type.__name__, value)
