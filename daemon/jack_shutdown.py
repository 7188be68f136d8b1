"""`jack_on_shutdown`, the plain server-gone callback, which JACK-Client does not wrap.

JACK-Client's `set_shutdown_callback` registers `jack_on_info_shutdown`. jackd2 calls that one, but
PipeWire's libjack (0.3.x, Debian 12's `pw-jack`) calls only the plain `jack_on_shutdown` when the
PipeWire daemon goes away: without this a client under PipeWire never learns that its server died
and never reconnects. Registering both is safe whichever libjack calls which: both only set the
same flag, and setting it twice changes nothing.
"""

from __future__ import annotations

import ctypes.util
from typing import Callable

import cffi
import jack

_ffi = cffi.FFI()
_ffi.cdef("void jack_on_shutdown(void *client, void (*function)(void *arg), void *arg);")
_lib = _ffi.dlopen(ctypes.util.find_library("jack") or "libjack.so.0")


def on_plain_shutdown(client: jack.Client, handler: Callable[[], None]) -> object:
    """Call `handler()` (from a libjack thread) when the server behind `client` goes away. Returns
    the cffi callback: the caller keeps it alive as long as `client` lives."""
    callback = _ffi.callback("void(void *)", lambda _arg: handler())
    pointer = _ffi.cast("void *", int(jack._ffi.cast("uintptr_t", client._ptr)))
    _lib.jack_on_shutdown(pointer, callback, _ffi.NULL)
    return callback
