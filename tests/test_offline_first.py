"""Offline-first, as a new user on an offline rig meets it: no command but `stemd models fetch` tries
the network, `--json` output is pure JSON on stdout, and a missing model is one clear line at once.

Each command runs as a subprocess with HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE *unset* (a user does not
set them), empty model caches, and tests/network_guard on PYTHONPATH, which logs and refuses every
attempt to reach another host, in the command and in every process it starts.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from daemon_harness import write_config
from test_daemon_cli import free_udp_port

GUARD = Path(__file__).parent / "network_guard"
MISSING = "model htdemucs: weight file 955717e8-8726e21a.th not found"


@pytest.fixture
def offline(tmp_path):
    """The environment of an offline machine that never downloaded a model; `.tried()` lists the
    network accesses attempted so far."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    log = tmp_path / "network.log"
    env.update(PYTHONPATH=str(GUARD), STEMD_NETWORK_LOG=str(log), TORCH_HOME=str(tmp_path / "torch"),
               HF_HOME=str(tmp_path / "hf"), XDG_CACHE_HOME=str(tmp_path / "cache"))

    class Offline(dict):
        def tried(self) -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

    return Offline(env)


def stemd(env, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", "stemd", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_network_guard_sees_and_refuses_a_download(offline):
    """The guard itself: without it the other tests here could not fail."""
    fetch = subprocess.run([sys.executable, "-c", "import urllib.request; urllib.request.urlopen('https://huggingface.co')"],
                           env=offline, capture_output=True, text=True, timeout=60)
    assert fetch.returncode != 0 and "refused by the offline test guard" in fetch.stderr
    assert len(offline.tried()) == 1 and "huggingface.co" in offline.tried()[0]


def test_bench_json_without_htdemucs_weights_is_pure_json_and_never_asks_a_hub(offline):
    run = stemd(offline, "bench", "--json", "--only", "streaming", "--models", "htdemucs", "--seconds", "1")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)  # nothing else on stdout
    assert [r["model"] for r in rows] == ["htdemucs"] and MISSING in rows[0]["note"]
    assert "stemd models fetch demucs htdemucs" in rows[0]["note"]
    assert "Downloading" not in run.stdout + run.stderr
    assert offline.tried() == []


def test_separate_with_a_missing_model_says_so_in_one_line(offline, tmp_path):
    song = tmp_path / "song.wav"
    sf.write(song, (0.1 * np.random.default_rng(0).standard_normal((44100, 2))).astype(np.float32), 44100)
    run = stemd(offline, "separate", str(song), "--model", "htdemucs", "-o", str(tmp_path / "out"), "--quiet")
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith(f"error: {MISSING}"), run.stderr
    assert run.stdout == "" and offline.tried() == []


# "hush" is not in the grammar: the sentence goes through the semantic layer's MiniLM (transformers).
@pytest.mark.parametrize("command", [["parse", "--json", "hush the singer"], ["models"]])
def test_commands_run_offline(offline, command):
    run = stemd(offline, *command)
    assert run.returncode == 0, run.stderr
    if "--json" in command:
        assert json.loads(run.stdout) == [{"action": "mute", "stem": "vocals"}]
    assert offline.tried() == []


@pytest.mark.jack
def test_a_daemon_with_a_missing_model_runs_dry_says_why_in_one_line_and_status_json_is_pure(
        offline, jackd, tmp_path):
    port = free_udp_port()
    config = write_config(
        tmp_path / "stemd.toml", engine={"model": "htdemucs"},
        jack={"server_name": jackd.name, "connect_inputs": [], "connect_outputs": []},
        osc={"port": port}, voice={"enabled": False}, midi={"jack_ports": False},
        state={"dir": str(tmp_path / "state")},
    )
    daemon = subprocess.Popen([sys.executable, "-m", "stemd", "run", "--config", str(config)], env=offline,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            shown = stemd(offline, "status", "--json", "--port", str(port), "--timeout", "2", timeout=60)
            seen = json.loads(shown.stdout)["daemon"] if shown.returncode == 0 else {}
            # The engine's error reaches the stats a supervision tick before the state it leads to.
            if seen.get("engine", {}).get("error") and seen["state"] != "loading model":
                break
            assert time.monotonic() < deadline and daemon.poll() is None, shown.stderr
        state = json.loads(shown.stdout)["daemon"]
    finally:
        daemon.terminate()
        output = daemon.communicate(timeout=30)[0]
    assert state["state"] == "running dry (engine failed)" and state["output"] == "dry"
    error = state["engine"]["error"]
    assert MISSING in error and "\n" not in error and "stemd models fetch demucs htdemucs" in error
    assert "Traceback" not in output and "Downloading" not in output
    assert offline.tried() == []
