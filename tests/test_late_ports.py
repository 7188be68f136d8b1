"""Configured peer ports that do not exist yet (a sink PipeWire sets up after stemd joined, an
interface plugged in later) are connected when they appear, on a real jackd2."""

import pytest
from daemon_harness import running_daemon
from test_daemon_jack import wait_until

pytestmark = pytest.mark.jack


def test_a_configured_peer_that_appears_later_is_connected_and_remembered(jackd, tmp_path):
    jack_cfg = {"connect_inputs": ["late:capture"], "connect_outputs": ["system:playback_1", "late:playback"]}
    with running_daemon(jackd, tmp_path, model="dry", jack=jack_cfg) as daemon:
        assert daemon.jack.missing == {"in_L": ["late:capture"], "out_R": ["late:playback"]}
        late = jackd.client("late")
        try:
            late.outports.register("capture")
            late.inports.register("playback")
            late.activate()
            assert wait_until(lambda: not daemon.jack.missing, 5), daemon.jack.missing
            assert [p.name for p in late.get_all_connections("late:capture")] == ["stemd:in_L"]
            assert [p.name for p in late.get_all_connections("late:playback")] == ["stemd:out_R"]
            assert daemon.jack.connections["out_L"] == ["system:playback_1"]
            assert daemon.jack.connections["out_R"] == ["late:playback"]
        finally:
            late.close()
