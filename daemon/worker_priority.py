"""Run the engine worker below the audio: a higher nice value and a batch/idle scheduling policy.

On a 2-core machine the worker (torch, numpy, a whole core per hop) competes with jackd's thread and
the daemon's Python process callback. The kernel's fair scheduler gives a nice-10 process about a
tenth of the share of a nice-0 one when both want the CPU, and SCHED_BATCH also tells it the worker
never needs a quick wake-up, so it does not preempt the audio threads when it becomes runnable. Both
only lower the worker's priority, which every unprivileged process may do; neither can be undone
without privilege, which is why a standby worker is never started at a priority lower than the one
it will run at.
"""

from __future__ import annotations

import os

POLICIES = {"normal": "SCHED_OTHER", "batch": "SCHED_BATCH", "idle": "SCHED_IDLE"}


def lower_priority(nice: int, policy: str) -> str:
    """Apply `nice` (0-19, added to the current value) and `policy` to this process; returns what it
    runs at now, for the status line. Raises OSError when the kernel refuses."""
    if nice:
        os.nice(nice)
    os.sched_setscheduler(0, getattr(os, POLICIES[policy]), os.sched_param(0))
    return describe(os.getpid())


def describe(pid: int) -> str:
    """'SCHED_BATCH, nice 10' for process `pid`."""
    names = {getattr(os, name): name for name in POLICIES.values()}
    return f"{names.get(os.sched_getscheduler(pid), '?')}, nice {os.getpriority(os.PRIO_PROCESS, pid)}"
