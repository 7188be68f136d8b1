"""Every script in examples/ runs and does what its docstring says it teaches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from osc_harness import start_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, *args: str, timeout: float = 180) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_every_example_is_listed_and_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    listed = (EXAMPLES / "README.md").read_text()
    tested = Path(__file__).read_text()
    assert scripts and all(s in listed and f'"{s}"' in tested for s in scripts)


def test_osc_feedback_gets_answers_refusals_and_feedback(tmp_path):
    server = start_server(str(tmp_path), parser=True)
    try:
        out = _run("osc_feedback.py", "--port", str(server.address[1]), "--listen", "1.0")
    finally:
        server.stop()
    assert '/stemd/ok [{"action":"mute","stem":"vocals"},{"action":"unmute","stem":"bass"}]' in out
    assert "/stemd/error I don't know 'heavier'" in out
    assert "/stemd/stem/vocals/mute 1" in out and "/stemd/stem/drums/gain 0.6" in out


def test_midi_map_toggles_follows_the_fader_and_lights_the_led():
    out = _run("midi_map.py")
    assert "after pad 36: {'vocals': True, 'bass': False}" in out
    assert "bass after the fader moved to 20: 0.0 dB" in out  # soft takeover: no jump
    assert "bass after the fader moved up to 120: 2.36 dB" in out
    assert "LED bytes sent: ['90 24 00', '90 24 7f', '90 24 00']" in out


def test_custom_backend_streams_aligned_with_the_input():
    out = _run("custom_backend.py")
    error_db = float(out.rsplit("vocals vs the true centre: ", 1)[1].split(" dB")[0])
    assert error_db < -60


def test_offline_separation_writes_the_stems_and_the_remix(tmp_path):
    out = _run("offline_separation.py", "-o", str(tmp_path), "--seconds", "3")
    assert "spleeter2 (vocals, accompaniment)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fixture.accompaniment.wav", "fixture.remix.wav", "fixture.vocals.wav"]
