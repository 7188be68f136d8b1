import multiprocessing as mp

import numpy as np
import pytest

from stemd.daemon.ring import RingSpec, SpscRing


@pytest.fixture
def ring():
    r = SpscRing.create(channels=2, capacity=1000)
    yield r
    r.close()


def ramp(start, n, channels=2):
    """Frames whose value is their absolute index (channel c adds c * 0.5), so positions are visible."""
    return (np.arange(start, start + n, dtype=np.float32) + 0.5 * np.arange(channels)[:, None]).astype(np.float32)


def test_frames_come_back_at_their_absolute_index_across_the_wrap(ring):
    for start in range(0, 2600, 260):
        ring.write(ramp(start, 260))
    out = np.empty((2, 300), np.float32)
    assert ring.read_at(2200, out)
    np.testing.assert_array_equal(out, ramp(2200, 300))
    assert ring.read == 2500


def test_missing_and_overwritten_frames_are_refused_not_returned(ring):
    ring.write(ramp(0, 900))
    ring.write(ramp(900, 900))
    out = np.empty((2, 100), np.float32)
    assert not ring.read_at(1750, out)  # not written yet
    assert not ring.read_at(700, out)  # lapped by the producer
    assert ring.read_at(800, out)


def test_seek_makes_older_slots_absent(ring):
    ring.write(ramp(0, 500))
    ring.seek(5000)
    out = np.empty((2, 10), np.float32)
    assert not ring.read_at(490, out)
    ring.write(ramp(5000, 100))
    assert not ring.read_at(4995, out)
    assert ring.read_at(5000, out)
    np.testing.assert_array_equal(out, ramp(5000, 10))


def _produce(spec, blocks, n):
    ring = SpscRing.attach(spec)
    for b in range(blocks):
        ring.write(ramp(b * n, n, spec.channels))
    ring.close()


def test_another_process_writes_what_this_one_reads():
    ring = SpscRing.create(channels=8, capacity=4096)
    try:
        child = mp.get_context("spawn").Process(target=_produce, args=(ring.spec, 64, 128))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        out = np.empty((8, 1000), np.float32)
        assert ring.written == 64 * 128
        assert ring.read_at(64 * 128 - 1000, out)
        np.testing.assert_array_equal(out, ramp(64 * 128 - 1000, 1000, 8))
    finally:
        ring.close()


def test_spec_round_trips_and_attach_sees_the_same_memory(ring):
    other = SpscRing.attach(RingSpec(ring.spec.name, 2, 1000))
    ring.write(ramp(0, 10))
    out = np.empty((2, 10), np.float32)
    assert other.read_at(0, out)
    other.close()
