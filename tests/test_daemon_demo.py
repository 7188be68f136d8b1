"""`stemd demo` end to end: its own dummy jackd, the daemon, a generated song, intents over OSC, WAVs,
and nothing left running afterwards. Runs with `--model dry` so CI needs no model; the separated path
has its own tests."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from stemd.cli.demo import SCRIPT
from stemd.daemon.private_jackd import server_running

pytestmark = pytest.mark.jack


def test_demo_plays_records_and_stops_everything_it_started(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JACK_DEFAULT_SERVER"}
    private = not server_running(None)
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "stemd", "demo", "--model", "dry", "--seconds", "5",
                          "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    text = run.stdout
    for _, intent in SCRIPT:
        assert f'"{intent}"' in text
    assert re.search(r"latency 200 ms, xruns \d+, underruns \d+", text), text

    song, rate = soundfile.read(out / "input.wav", dtype="float32")
    mix, _ = soundfile.read(out / "mix.wav", dtype="float32")
    latency, period = round(0.2 * rate), 256
    corr = np.correlate(mix[:, 0], song[: rate, 0], mode="valid")  # where the first second reappears
    lag = int(np.argmax(corr))
    assert latency <= lag <= latency + period, lag  # + one period: the demo client feeds itself back

    if private:
        name = re.search(r"starting a private one \((\S+),", text).group(1)
        left = subprocess.run(["pgrep", "-f", f"jackd -n {name} "], capture_output=True, text=True)
        assert left.stdout == "", f"jackd {name} still running"
