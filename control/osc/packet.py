"""Bundle framing checked before python-osc sees a packet.

python-osc (1.10) trusts a bundle element's signed size: a size of -4 sends its parser back to the
same offset forever, logging a warning each turn, which would freeze the OSC thread with one 20-byte
packet. Walking the framing here first (sizes in bounds, multiples of 4, elements that are messages
or bundles, limited depth and count) makes every packet that reaches python-osc finite to parse, and
tells the rate limiter what a bundle costs before any parsing is spent on it.
"""

from __future__ import annotations

import struct

from pythonosc.osc_packet import OscPacket, TimedMessage

BUNDLE = b"#bundle\x00"
HEADER = len(BUNDLE) + 8  # prefix + time tag
MAX_DEPTH = 8
MAX_MESSAGES = 256
TYPE_TAGS = frozenset("ihfdsbrmtTFN[]")  # what python-osc parses; it skips others with a log line each


class MalformedPacket(ValueError):
    """Not a well-formed OSC packet; the message says what is wrong, for the sender."""


def count_messages(dgram: bytes, depth: int = 0) -> int:
    """Messages in a packet whose framing is sound; raise MalformedPacket otherwise."""
    if dgram[:1] == b"/":
        _check_type_tags(dgram)
        return 1
    if not dgram.startswith(BUNDLE):
        raise MalformedPacket("neither an OSC message (starts with '/') nor a bundle ('#bundle')")
    if depth >= MAX_DEPTH:
        raise MalformedPacket(f"bundles nested deeper than {MAX_DEPTH}")
    if len(dgram) < HEADER:
        raise MalformedPacket("bundle shorter than its header")
    total, index = 0, HEADER
    while index < len(dgram):
        if index + 4 > len(dgram):
            raise MalformedPacket(f"bundle element size cut off at byte {index}")
        (size,) = struct.unpack_from(">i", dgram, index)
        index += 4
        if size <= 0 or size % 4 or index + size > len(dgram):
            raise MalformedPacket(f"bundle element at byte {index - 4} has impossible size {size}")
        total += count_messages(dgram[index:index + size], depth + 1)
        if total > MAX_MESSAGES:
            raise MalformedPacket(f"more than {MAX_MESSAGES} messages in one packet")
        index += size
    if not total:
        raise MalformedPacket("empty bundle")
    return total


def _check_type_tags(dgram: bytes) -> None:
    end = dgram.find(b"\x00")
    if end < 0:
        raise MalformedPacket("address is not terminated")
    start = (end + 4) & ~3  # the type tag string starts at the next 4-byte boundary
    if start >= len(dgram):
        return  # no type tag string: a message without arguments
    if dgram[start:start + 1] != b",":
        raise MalformedPacket("type tag string missing (it must start with ',')")
    stop = dgram.find(b"\x00", start)
    tags = dgram[start + 1:stop if stop >= 0 else len(dgram)].decode("latin-1")
    unknown = sorted(set(tags) - TYPE_TAGS)
    if unknown:
        raise MalformedPacket(f"unsupported OSC type tag(s) {''.join(unknown)!r}")


def parse(dgram: bytes) -> list[TimedMessage]:
    """The packet's messages in time order (python-osc), once `count_messages` accepts its framing."""
    count_messages(dgram)
    return parse_checked(dgram)


def parse_checked(dgram: bytes) -> list[TimedMessage]:
    """`parse` for a packet `count_messages` has already accepted."""
    try:
        return OscPacket(dgram).messages
    except Exception as exc:  # python-osc raises ParseError, but also IndexError, struct.error, ...
        raise MalformedPacket(str(exc) or type(exc).__name__) from None
