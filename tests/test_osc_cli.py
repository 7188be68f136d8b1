"""`stemd send` as a user runs it: a separate process talking to a real OscServer over UDP."""

import json
import os
import socket
import subprocess
import sys

import pytest

from osc_harness import osc, real_parser  # noqa: F401 (fixtures)
from stemd.cli import main as stemd
from stemd.control.osc.client import NoReply, request, status


@pytest.fixture
def server(osc):
    return osc(parser=real_parser(()) is not None)


def send(server, *words, timeout="2"):
    """The real command line in its own process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "stemd", "send", "--port", str(server.address[1]), "--timeout", timeout, *words]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def test_send_an_address_with_typed_arguments(server):
    done = send(server, "/stemd/stem/bass/mute", "1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"action": "mute", "stem": "bass"}]
    assert server.session.snapshot()["stems"]["bass"]["muted"]


def test_send_a_sentence(server):
    if server.session.parser is None:
        pytest.skip("the intent parser (stemd.control.intent) is not built yet")
    done = send(server, "drop", "the", "vocals")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"action": "mute", "stem": "vocals"}]


def test_error_answer_exits_1_and_no_answer_exits_2(server, capsys):
    port = str(server.address[1])
    assert stemd(["send", "--port", port, "/stemd/stem/bass/mute", "7"]) == 1
    assert "expects 0 or 1" in capsys.readouterr().err
    assert stemd(["send", "--port", port, "/stemd/stem/other/gain_db", "-6.5"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["db"] == -6.5  # "-6.5" went as a float
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        quiet_port = str(silent.getsockname()[1])
        assert stemd(["send", "--port", quiet_port, "--timeout", "0.3", "/stemd/status"]) == 2
    assert "no answer" in capsys.readouterr().err


def test_client_helpers(server):
    host, port = server.address
    assert status(host, port)["model"] == "test-model"
    assert request(host, port, "/stemd/stem/vocals/refine", ["x"]).ok is False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(NoReply):
            request("127.0.0.1", silent.getsockname()[1], "/stemd/status", (), timeout=0.2)
