"""Run the real daemon in-process against a test jackd: config for a private server, a supervision
thread, and clean teardown."""

from __future__ import annotations

import functools
import json
import threading
from contextlib import contextmanager
from pathlib import Path

from oracle_separator import load_oracle

from stemd.config import validate
from stemd.daemon.app import Daemon


def daemon_config(jackd, tmp_path, model: str = "oracle", **sections):
    data = {
        "audio": {"latency_ms": 200.0, "dry_crossfade_ms": 10.0},
        "jack": {"server_name": jackd.name, "connect_inputs": [], "connect_outputs": [],
                 "reconnect_interval_s": 0.2},
        # Normal priority on every CPU: a test worker must not lose its CPU to other test runs on a
        # shared machine (pinned to one core it fell behind the tests' own load in CI); the lowered
        # priority and the pinning have their own test and the xrun soak benchmark.
        "engine": {"model": "dry" if model == "dry" else "auto", "threads": 1, "nice": 0, "policy": "normal",
                   "cpus": "all"},
        "osc": {"enabled": False},
        "web": {"enabled": False},
        "voice": {"enabled": False},
        # MIDI has its own tests; its hook has no detach() yet, so a JACK restart would abort (see jack_io).
        "midi": {"jack_ports": False},
        "state": {"dir": str(tmp_path / "state")},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return validate(data)


@contextmanager
def running_daemon(jackd, tmp_path, model: str = "oracle", busy_ms: float = 0.0, load_s: float = 0.0,
                   **sections):
    """The daemon started and supervised on a thread; `model="oracle"` uses the test-only oracle
    separator, `"dry"` no engine, anything else the real registry."""
    config = daemon_config(jackd, tmp_path, model, **sections)
    if model == "oracle":
        loader = functools.partial(load_oracle, busy_ms=busy_ms, load_s=load_s)
    else:
        loader = None
        if model != "dry":
            config.engine.model = model
    daemon = Daemon(config, loader=loader).start()
    thread = threading.Thread(target=daemon.run, name="test-supervisor", daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stopping.set()
        thread.join(5)
        daemon.stop()


def write_config(path: Path, **sections: dict) -> Path:
    """A config file for `stemd run` in a subprocess: these sections, each value as TOML (JSON's
    strings, numbers, booleans and lists are TOML too)."""
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
