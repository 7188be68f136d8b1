"""Command-to-ear delay: from an OSC command's send to the output sample it first changes, on the
live rig (private jackd2, `stemd run`, jack_simple_client's 240 Hz sine into stemd, a JACK client
here recording stemd:out_L on JACK's frame timeline).

    stemd bench command-delay [--model spleeter2] [--commands 10] [--json out.json]

Each round unmutes everything, waits, notes JACK's frame time and sends `/stemd/stem/all/mute 1`.
The mute is a `[mixer] ramp_ms` ramp to silence, so the change is where the output's envelope (its
maximum over one sine period) first falls below half its level just before, less half the ramp.
The delay includes the OSC hop and the command queue; with the compiled callback it includes the
render lead (daemon/render_ahead.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jack
import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from stemd.benchmarks.live_rig import LiveRig
from stemd.daemon.private_jackd import stop_process

SINE_PERIOD = 200  # jack_simple_client's table length: one sine period in samples
RAMP_MS = 20.0  # the default [mixer] ramp_ms
RECORD_S = 120


class Tap:
    """A JACK client recording stemd:out_L at its JACK frame times."""

    def __init__(self, server: str) -> None:
        self.client = jack.Client("delay-tap", servername=server, no_start_server=True)
        self.port = self.client.inports.register("in")
        self.data = np.zeros(RECORD_S * self.client.samplerate, np.float32)
        self.start = -1

        @self.client.set_process_callback
        def process(frames: int) -> None:
            now = self.client.last_frame_time
            if self.start < 0:
                self.start = now
            lo = now - self.start
            if lo + frames <= self.data.shape[0]:
                self.data[lo:lo + frames] = self.port.get_array()

        self.client.activate()
        self.client.connect("stemd:out_L", self.port)

    def change_after(self, frame: int) -> int | None:
        """Frames from `frame` to where the envelope falls below half its level just before."""
        at = frame - self.start
        rate = self.client.samplerate
        before = self.data[at - rate // 10:at]
        level = float(np.median(np.abs(before).reshape(-1, SINE_PERIOD).max(axis=1)))
        after = np.abs(self.data[at:at + rate // 5])
        env = np.lib.stride_tricks.sliding_window_view(after, SINE_PERIOD).max(axis=1)
        below = np.flatnonzero(env < 0.5 * level)
        # the sliding maximum over one period lags the ramp by up to a period; the half-level point
        # of a linear ramp is half the ramp after its start
        return int(below[0]) + SINE_PERIOD - round(RAMP_MS / 2 * rate / 1000) if below.size and level > 0 else None

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def sine_into_stemd(rig: LiveRig) -> subprocess.Popen:
    env = dict(rig.env, JACK_NO_START_SERVER="1")
    player = subprocess.Popen(["jack_simple_client"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wiring = jack.Client("delay-wiring", servername=rig.jackd.name, no_start_server=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            for target in ("stemd:in_L", "stemd:in_R"):
                wiring.connect("jack_simple_client:output1", target)
            break
        except jack.JackError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    wiring.close()
    return player


def measure(model: str, commands: int, workdir: Path) -> list[float]:
    rig = LiveRig(workdir, {"model": model, "threads": 0, "standby": False})
    delays = []
    try:
        rig.start()
        player = sine_into_stemd(rig)
        tap = Tap(rig.jackd.name)
        osc = SimpleUDPClient("127.0.0.1", rig.osc_port)
        rate = tap.client.samplerate
        try:
            for _ in range(commands):
                osc.send_message("/stemd/stem/all/mute", 0)
                rig.wait(lambda s: s["daemon"]["output"] == "separated", 30)
                time.sleep(1.0)
                sent = tap.client.frame_time
                osc.send_message("/stemd/stem/all/mute", 1)
                time.sleep(0.5)
                frames = tap.change_after(sent)
                if frames is not None:
                    delays.append(round(1000.0 * frames / rate, 1))
        finally:
            tap.close()
            stop_process(player, 5)
    finally:
        rig.stop()
    return delays


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stemd bench command-delay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="spleeter2")
    parser.add_argument("--commands", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stemd-delay-") as tmp:
        delays = measure(args.model, args.commands, Path(tmp))
    load = os.getloadavg()[0]
    if not delays:
        print("no command's change was found in the output", file=sys.stderr)
        return 1
    print(f"command to ear ({args.model}, {len(delays)} commands): median {statistics.median(delays):.1f} ms, "
          f"range {min(delays):.1f}-{max(delays):.1f} ms; load average {load:.2f} on {os.cpu_count()} CPUs")
    print("each: " + ", ".join(f"{d:.1f}" for d in delays))
    if args.json is not None:
        args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "model": args.model,
                                         "load": load, "delays_ms": delays}, indent=2) + "\n")
    return 0
