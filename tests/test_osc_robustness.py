"""Hostile and broken input: the server answers with a reason and keeps serving everyone else."""

import random
import struct
import time

import pytest
from pythonosc.osc_message_builder import build_msg
from pythonosc.parsing import osc_types

from osc_harness import osc, surface  # noqa: F401 (fixtures)
from stemd.control.commands import Action


@pytest.fixture
def server(osc):
    return osc(rate_limit_per_s=100000.0)


@pytest.fixture
def tablet(server, surface):
    return surface(server)


def still_serving(tablet):
    address, args = tablet.ask("/stemd/stem/vocals/mute", 0)
    assert address == "/stemd/ok", args
    assert tablet.ask("/stemd/status")[0] == "/stemd/status.reply"


MUTE = build_msg("/stemd/stem/bass/mute", [1]).dgram
HEADER = b"#bundle\x00" + b"\x00" * 7 + b"\x01"


def bundle(*dgrams, at=None):
    """A bundle of raw datagrams, immediate or at wall-clock time `at`."""
    header = HEADER if at is None else b"#bundle\x00" + osc_types.write_date(at)
    return header + b"".join(struct.pack(">i", len(d)) + d for d in dgrams)


def nested(depth):
    inner = MUTE
    for _ in range(depth):
        inner = HEADER + struct.pack(">i", len(inner)) + inner
    return inner


@pytest.mark.parametrize(
    "packet,reason",
    [
        (b"", "neither"),
        (b"hello world", "neither"),
        (HEADER + struct.pack(">i", -4), "impossible size"),  # hangs python-osc 1.10 on its own
        (HEADER + struct.pack(">i", 0), "impossible size"),
        (HEADER + struct.pack(">i", 6) + MUTE, "impossible size"),
        (HEADER + struct.pack(">i", 4096) + MUTE, "impossible size"),
        (HEADER + struct.pack(">i", 8) + b"garbage!", "neither"),
        (HEADER[:10], "shorter than its header"),
        (HEADER + b"\x00\x00", "cut off"),
        (nested(12), "nested deeper"),
        (bundle(*[build_msg("/stemd/tap", []).dgram for _ in range(300)]), "more than 256 messages"),
        (b"/stemd/tempo\x00\x00\x00\x00,x\x00\x00", "unsupported OSC type tag"),
        (b"/stemd/intent\x00\x00\x00,s\x00\x00abc", "malformed"),  # string without terminator
        (b"/stemd/midi/learn\x00\x00\x00,b\x00\x00\x7f\xff\xff\xff", "malformed"),  # blob claims 2 GB
    ],
)
def test_broken_framing_is_refused_with_a_reason(server, tablet, packet, reason):
    address, args = tablet.ask_raw(packet)
    assert address == "/stemd/error" and reason in args[0], args
    still_serving(tablet)


def test_nesting_within_the_limit_is_served(server, tablet):
    assert tablet.ask_raw(nested(4))[0] == "/stemd/ok"
    assert server.session.snapshot()["stems"]["bass"]["muted"]


def test_huge_strings_are_refused_not_parsed(server, tablet):
    address, args = tablet.ask("/stemd/intent", "drop " * 12000)  # 60 kB, near the UDP limit
    assert address == "/stemd/error" and "the limit is" in args[0] and len(args[0]) < 200
    address, args = tablet.ask("/stemd/" + "x" * 30000)
    assert address == "/stemd/error" and "unknown address" in args[0] and len(args[0]) < 200
    still_serving(tablet)


def test_a_failing_command_owner_costs_one_message(server, tablet):
    def broken(command):
        raise RuntimeError("engine exploded")

    server.session.on(Action.REFINE, broken)
    address, args = tablet.ask("/stemd/stem/vocals/refine", "clean")
    assert address == "/stemd/error" and "internal error" in args[0]
    still_serving(tablet)


def test_fuzz_of_random_and_truncated_packets(server, tablet):
    rng = random.Random(7)
    valid = [
        MUTE,
        build_msg("/stemd/intent", ["drop the vocals"]).dgram,
        build_msg("/stemd/stem/drums/gain", [0.5]).dgram,
        bundle(MUTE, build_msg("/stemd/tempo", [120.0]).dgram),
    ]
    packets = [p[:n] for p in valid for n in range(len(p))]  # every truncation
    for _ in range(600):
        prefix = rng.choice([b"", b"/", b"/stemd/", HEADER])
        packets.append(prefix + rng.randbytes(rng.randrange(0, 400)))
    for _ in range(200):  # valid packets with random bytes flipped
        p = bytearray(rng.choice(valid))
        for _ in range(rng.randrange(1, 4)):
            p[rng.randrange(len(p))] = rng.randrange(256)
        packets.append(bytes(p))
    answered = 0
    for start in range(0, len(packets), 50):
        chunk = packets[start:start + 50]
        expected = 0
        for p in chunk:
            tablet.send_raw(p)
            expected += max(1, p.count(b"/stemd/stem/") if p.startswith(HEADER) else 1)
        answered += len(tablet.answers(len(chunk), timeout=5.0))
    assert answered >= len(packets)  # every packet got its answer (a valid bundle may get two)
    assert server.stats()["malformed"] > len(packets) // 2
    still_serving(tablet)


def test_a_full_command_queue_is_reported_not_hidden(osc, surface):
    srv = osc(rate_limit_per_s=100000.0)
    srv.session.realtime = True  # commands wait for a JACK cycle that never comes
    tablet = surface(srv)
    capacity = 1024
    answers = []
    for start in range(0, capacity + 5, 100):  # in chunks, so no UDP buffer overflows on the way back
        chunk = range(start, min(start + 100, capacity + 5))
        for i in chunk:
            tablet.send("/stemd/stem/vocals/mute", i % 2)
        answers += tablet.answers(len(chunk), timeout=5.0)
    refused = [a for a in answers if a[0] == "/stemd/error"]
    assert len(answers) == capacity + 5 and len(refused) == 5
    assert "command queue full" in refused[0][1][0]
    assert tablet.ask("/stemd/status")[0] == "/stemd/status.reply"


def test_pending_timed_messages_are_bounded(server, tablet):
    at = time.time() + 60.0
    message = build_msg("/stemd/tap", []).dgram
    for count in (256, 256, 256, 256, 26):  # 1050 sent, 1024 may wait
        tablet.send_raw(bundle(*[message] * count, at=at))
    refused = tablet.answers(26, timeout=5.0)
    assert len(refused) == 26 and all("already pending" in a[1][0] for a in refused)
    assert server.stats()["timed_pending"] == 1024
    still_serving(tablet)
