"""Who may talk to the OSC server, how fast, and where it may touch the disk.

UDP has no session: anyone who can reach the port can change the mix, so the default allow-list is
loopback only and opening the LAN is an explicit line in config.toml. Every sender is also held to a
token bucket, so a stuck controller or a flood cannot starve the other clients or the daemon.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from pathlib import Path
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowList:
    """Client networks allowed to send; everything else is dropped and counted (never answered,
    so a scan learns nothing and a spoofed source cannot use the daemon as a reflector)."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self.dropped = 0
        self._seen: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        verdict = self._seen.get(host)
        if verdict is None:
            verdict = self._check(host)
            if len(self._seen) >= 4096:  # spoofed sources must not grow it without bound
                self._seen.clear()
            self._seen[host] = verdict
        if not verdict:
            self.dropped += 1
        return verdict

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class RateLimiter:
    """Per-client token bucket: `rate` messages per second sustained, bursts up to one second's worth.

    A client over its budget gets one `/stemd/error` per second (so a person learns why) and the rest
    is dropped and counted. Idle buckets are forgotten so spoofed sources cannot grow the table."""

    def __init__(self, rate_per_s: float, max_clients: int = 4096) -> None:
        self.rate = float(rate_per_s)
        self.burst = max(1.0, self.rate)
        self.max_clients = max_clients
        self.limited = 0
        self._buckets: dict[str, list[float]] = {}  # host -> [tokens, last refill, last notice]
        self._lock = threading.Lock()

    def admit(self, host: str, cost: int = 1) -> tuple[bool, bool]:
        """(admitted, tell_the_sender) for `cost` messages from `host`."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(host)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._forget_idle(now)
                bucket = self._buckets[host] = [self.burst, now, -1.0]
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= cost:
                bucket[0] = tokens - cost
                return True, False
            bucket[0] = tokens
            self.limited += cost
            notify = now - bucket[2] >= 1.0
            if notify:
                bucket[2] = now
            return False, notify

    @property
    def clients(self) -> int:
        """Senders with a bucket now (bounded by `max_clients`)."""
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled anyway; if every one is busy (a spoofing flood), all."""
        full_after = self.burst / self.rate
        for host in [h for h, b in self._buckets.items() if now - b[1] > full_after]:
            del self._buckets[host]
        if len(self._buckets) >= self.max_clients:
            self._buckets.clear()


def state_file(state_dir: str | Path, name: str) -> Path:
    """A file directly inside the state folder; refuses any name that would land elsewhere."""
    root = Path(os.path.expanduser(str(state_dir))).resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise ValueError(f"{name!r} is not a file name inside the state folder {root}")
    return path
