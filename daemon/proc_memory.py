"""What a process costs in memory, from /proc (Linux): for the warm standby worker's report."""

from __future__ import annotations

from pathlib import Path

_FIELDS = {"Rss": "rss_mb", "Pss": "pss_mb", "Private_Clean": "private_mb", "Private_Dirty": "private_mb"}


def memory_mb(pid: int) -> dict[str, float] | None:
    """rss_mb (resident), pss_mb (resident with shared pages split between their users) and
    private_mb (pages only this process holds: what stopping it would free); None when the process
    is gone or /proc cannot say."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    out = dict.fromkeys(_FIELDS.values(), 0.0)
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in _FIELDS:
            out[_FIELDS[name]] += int(rest.split()[0]) / 1024.0  # kB
    return {k: round(v, 1) for k, v in out.items()}
