"""Run the engine worker below the audio: a higher nice value, a batch/idle scheduling policy, and
CPUs of its own.

On a 2-core machine the worker (ONNX Runtime or torch, a whole core per hop) competes with jackd's
thread and the daemon's process callback. The kernel's fair scheduler gives a nice-10 process about
a tenth of the share of a nice-0 one when both want the CPU, and SCHED_BATCH also tells it the worker
never needs a quick wake-up, so it does not preempt the audio threads when it becomes runnable. Both
only lower the worker's priority, which every unprivileged process may do; neither can be undone
without privilege, which is why a standby worker is never started at a priority lower than the one
it will run at.

A lower priority is not enough when the worker's threads sit on every core: a woken audio thread
still waits for the scheduler to preempt one of them, and jackd's timer wakes late (driver xruns).
With `cpus = "auto"` the worker keeps off the lowest CPU this process may use, so the audio threads
always find a core with no worker on it (docs/decisions/daemon.md, "The worker's CPUs").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

POLICIES = {"normal": "SCHED_OTHER", "batch": "SCHED_BATCH", "idle": "SCHED_IDLE"}


def parse_cpus(value: str) -> str | None:
    """None when `value` is "auto", "all" or a CPU list ("1", "1-3,6"); else what is wrong with it."""
    if value in ("auto", "all"):
        return None
    try:
        _cpu_list(value)
    except ValueError:
        return 'must be "auto", "all" or a CPU list such as "1" or "1-3,6"'
    return None


def worker_cpus(value: str, allowed: set[int]) -> set[int]:
    """The CPUs the worker may run on, of those this process may use (`allowed`): all of them for
    "all"; all but the lowest for "auto" when there are at least two; else the listed ones."""
    if value == "all" or (value == "auto" and len(allowed) < 2):
        return set(allowed)
    if value == "auto":
        return set(allowed) - {min(allowed)}
    wanted = _cpu_list(value) & allowed
    if not wanted:
        raise OSError(f"[engine] cpus = {value!r}: none of those CPUs is available (this process may use "
                      f"{_format(allowed)})")
    return wanted


@dataclass(frozen=True)
class Placement:
    """Where a worker runs, fixed by the daemon before the worker starts, so applying it again (the
    worker does, for the threads its interpreter started) changes nothing."""

    nice: int  # absolute: the daemon's own nice value plus [engine] nice, at most 19
    policy: str  # a POLICIES key
    cpus: str  # [engine] cpus: auto | all | a CPU list
    allowed: frozenset[int]  # the daemon's CPUs, the ones `cpus` picks from


def placement(nice: int, policy: str, cpus: str = "all") -> Placement:
    """The placement for a worker of this (the daemon's) process: `nice` added to its own."""
    return Placement(min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice), policy, cpus,
                     frozenset(os.sched_getaffinity(0)))


def lower_priority(pid: int, where: Placement) -> str:
    """Put every thread of process `pid` (0: this one) at `where`; returns what the process runs at
    now, for the status line. Raises OSError when the kernel refuses or no CPU is left. Every thread,
    because Linux keeps nice, policy and affinity per thread: one started before (numpy's BLAS pool
    starts at import) would stay at the daemon's priority on every CPU."""
    own = pid or os.getpid()
    chosen = worker_cpus(where.cpus, set(where.allowed))
    for tid in _threads(own):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, where.nice)
            os.sched_setscheduler(tid, getattr(os, POLICIES[where.policy]), os.sched_param(0))
            os.sched_setaffinity(tid, chosen)
        except ProcessLookupError:
            if tid == own:
                raise
    return describe(own)


def _threads(pid: int) -> list[int]:
    """The thread ids of process `pid`, its main thread first."""
    others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    return [pid, *others]


def describe(pid: int) -> str:
    """'SCHED_BATCH, nice 10, CPUs 1' for process `pid` (no CPUs when it may run on every one)."""
    names = {getattr(os, name): name for name in POLICIES.values()}
    text = f"{names.get(os.sched_getscheduler(pid), '?')}, nice {os.getpriority(os.PRIO_PROCESS, pid)}"
    cpus = os.sched_getaffinity(pid)
    return text if len(cpus) >= (os.cpu_count() or 1) else f"{text}, CPUs {_format(cpus)}"


def usable_cpus() -> int:
    """How many CPUs this process may run on: what its compute threads should be sized by."""
    return len(os.sched_getaffinity(0))


def _cpu_list(value: str) -> set[int]:
    cpus: set[int] = set()
    for part in value.split(","):
        lo, _, hi = part.strip().partition("-")
        first, last = int(lo), int(hi or lo)
        if first < 0 or last < first:
            raise ValueError(value)
        cpus.update(range(first, last + 1))
    return cpus


def _format(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
