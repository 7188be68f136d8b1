"""The MIDI byte-stream parser and the SPSC event ring (pure logic; the JACK path is in test_midi_jack)."""

from stemd.control.midi.messages import Message, Parser
from stemd.control.midi.ring import EventRing


def parse(*chunks: bytes) -> list[tuple[int, int, int]]:
    parser = Parser()
    out = []
    for chunk in chunks:
        out += [tuple(m) for m in parser.feed(chunk)]
    return out


def test_running_status_within_and_across_chunks():
    assert parse(b"\x90\x24\x7f\x25\x7f", b"\x26\x00") == [(0x90, 36, 127), (0x90, 37, 127), (0x90, 38, 0)]
    assert parse(b"\xc5\x01\x02") == [(0xC5, 1, 0), (0xC5, 2, 0)]  # one data byte per message


def test_realtime_bytes_interleave_anywhere_without_breaking_a_message():
    assert parse(b"\xb0\xf8\x07\xfa\x40") == [(0xF8, 0, 0), (0xFA, 0, 0), (0xB0, 7, 64)]
    assert parse(b"\xf0\x01\xf8\x02\xf7") == [(0xF8, 0, 0)]  # clock inside a sysex dump


def test_sysex_unknown_and_stray_bytes_are_skipped():
    parser = Parser()
    got = parser.feed(b"\x12\x34" + b"\xf0" + bytes(range(0x80)) * 50 + b"\xf7" + b"\xf4\xf5\xf9\xfd\x55")
    assert got == [] and parser.ignored > 6000
    # sysex split over chunks, then a new status: the dump's data never turns into notes
    assert parse(b"\x90\x24\x7f", b"\xf0\x24\x7f", b"\x24\x7f\xf7", b"\x24\x7f") == [(0x90, 36, 127)]


def test_system_common_cancels_running_status():
    assert parse(b"\x90\x24\x7f\xf2\x01\x02\x25\x7f") == [(0x90, 36, 127), (0xF2, 1, 2)]
    assert parse(b"\x90\x24\x7f\xf6\x25\x7f") == [(0x90, 36, 127), (0xF6, 0, 0)]


def test_a_new_status_byte_cuts_a_partial_message():
    assert parse(b"\x90\x24\xb0\x07\x10") == [(0xB0, 7, 16)]


def test_message_fields():
    m = Message(0x9A, 60, 100)
    assert (m.kind, m.channel, m.to_bytes()) == (0x90, 11, b"\x9a\x3c\x64")
    assert Message(0xC0, 5).to_bytes() == b"\xc0\x05" and Message(0xF8).channel == 0


def test_ring_wraps_and_keeps_order():
    ring = EventRing(capacity=64, max_event=8)
    seen = []
    for i in range(100):
        assert ring.put(float(i), bytes([i % 128]) * (1 + i % 8))
        t, data, gap = ring.get()
        seen.append((t, data, gap))
    assert seen == [(float(i), bytes([i % 128]) * (1 + i % 8), False) for i in range(100)]


def test_full_ring_drops_and_flags_the_gap():
    ring = EventRing(capacity=64, max_event=8)
    assert ring.put(0.0, b"\x90\x24\x7f")
    while ring.put(1.0, b"\x90\x24\x7f"):
        pass
    assert not ring.put(2.0, b"\x00" * 9)  # longer than max_event
    assert ring.dropped == 2
    while ring.get() is not None:
        pass
    assert ring.put(3.0, b"\xf8") and ring.get() == (3.0, b"\xf8", True)
    assert ring.put(4.0, b"\xf8") and ring.get() == (4.0, b"\xf8", False)
