from pathlib import Path

import pytest

from stemd.cli import main as cli
from stemd.config import ConfigError, load_config, render_default

ROOT = Path(__file__).resolve().parents[1]


def test_config_toml_is_the_rendered_schema():
    assert (ROOT / "config.toml").read_text() == render_default(), "run: stemd config default > config.toml"


def test_every_key_is_commented():
    lines = render_default().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[i - 1].startswith("#"), line


def test_defaults_load():
    cfg = load_config(ROOT / "config.toml")
    assert cfg.audio.latency_ms == 0.0 and cfg.osc.port == 9000  # 0 = auto
    assert load_config(None) == cfg


@pytest.mark.parametrize(
    "body, expected",
    [
        ("[osc]\nport = 70000\n", ":2: [osc] port: must be ≤ 65535"),
        ("[mixer]\n\n# note\nramp_ms = \"fast\"\n", ":4: [mixer] ramp_ms: must be float"),
        ("[audio]\nlatncy_ms = 100\n", ":2: [audio] latncy_ms: unknown key"),
        ("[audio]\nlatency_ms = 5\n", ":2: [audio] latency_ms: must be 0 (auto) or at least 20"),
        ("[sound]\nx = 1\n", ":1: [sound]: unknown section"),
        ("[engine]\nbackend = \"cuda\"\n", "[engine] backend: must be one of auto, torch, onnx, tensorrt, cuda-graph"),
        ("[jack]\nconnect_inputs = [1, 2]\n", "[jack] connect_inputs: every entry must be str"),
        ("[osc\n", "not valid TOML"),
    ],
)
def test_errors_name_key_and_line(tmp_path, body, expected):
    path = tmp_path / "c.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_int_is_accepted_for_float_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[audio]\nlatency_ms = 150\n")
    assert load_config(path).audio.latency_ms == 150.0


def test_cli_config_check(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[osc]\nport = -1\n")
    assert cli(["config", "check", str(bad)]) == 2
    assert "[osc] port" in capsys.readouterr().err
    assert cli(["config", "check", str(ROOT / "config.toml")]) == 0
