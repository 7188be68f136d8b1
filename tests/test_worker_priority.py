"""`[engine] cpus`: which CPUs the engine worker may run on, parsed and applied to a real process."""

import multiprocessing as mp
import os

import pytest

from stemd.config import ConfigError, validate
from stemd.daemon.worker_priority import describe, lower_priority, parse_cpus, placement, worker_cpus


def test_auto_keeps_the_worker_off_the_lowest_cpu_when_there_are_two_or_more():
    assert worker_cpus("auto", {0, 1}) == {1}
    assert worker_cpus("auto", {2, 3, 5}) == {3, 5}
    assert worker_cpus("auto", {4}) == {4}  # one CPU: nothing to leave free
    assert worker_cpus("all", {0, 1}) == {0, 1}
    assert worker_cpus("1-3,6", set(range(8))) == {1, 2, 3, 6}
    assert worker_cpus("1,9", {0, 1}) == {1}


def test_a_cpu_list_with_nothing_available_is_a_clear_error():
    with pytest.raises(OSError, match=r"none of those CPUs is available \(this process may use 0,1\)"):
        worker_cpus("5-6", {0, 1})


@pytest.mark.parametrize("bad", ["", "one", "3-1", "-1", "1,,2"])
def test_bad_cpu_lists_are_refused_by_the_config(bad):
    assert parse_cpus(bad) is not None
    with pytest.raises(ConfigError, match=r"\[engine\] cpus"):
        validate({"engine": {"cpus": bad}})


def _apply(cpus, out):
    out.put(lower_priority(0, placement(0, "normal", cpus)))
    out.put(sorted(os.sched_getaffinity(0)))


def test_lower_priority_pins_a_real_process_and_says_so():
    allowed = os.sched_getaffinity(0)
    out = mp.get_context("spawn").Queue()
    process = mp.get_context("spawn").Process(target=_apply, args=("auto", out))
    process.start()
    said, pinned = out.get(timeout=30), out.get(timeout=30)
    process.join(10)
    assert set(pinned) == worker_cpus("auto", allowed)
    if len(pinned) < (os.cpu_count() or 1):
        assert said.endswith(f", CPUs {','.join(map(str, pinned))}")
    assert describe(os.getpid()).startswith("SCHED_OTHER, nice ")


def _thread_then_apply(where, out, done):
    import threading

    early = threading.Thread(target=done.wait, daemon=True)  # like the BLAS pool numpy starts at import
    early.start()
    lower_priority(0, where)
    out.put(lower_priority(0, where))  # twice: the daemon applies it at start, the worker again
    out.put(sorted(int(t) for t in os.listdir("/proc/self/task")))
    done.wait(30)


def test_every_thread_of_the_worker_is_placed_and_applying_twice_changes_nothing():
    ctx = mp.get_context("spawn")
    out, done = ctx.Queue(), ctx.Event()
    where = placement(3, "batch", "auto")
    process = ctx.Process(target=_thread_then_apply, args=(where, out, done))
    process.start()
    try:
        said, tids = out.get(timeout=30), out.get(timeout=30)
        assert len(tids) >= 2
        for tid in tids:
            assert os.getpriority(os.PRIO_PROCESS, tid) == where.nice
            assert os.sched_getscheduler(tid) == os.SCHED_BATCH
            assert os.sched_getaffinity(tid) == worker_cpus("auto", set(where.allowed))
        assert said.startswith(f"SCHED_BATCH, nice {where.nice}")
    finally:
        done.set()
        process.join(10)
