import time

import numpy as np


def test_dummy_jackd_runs_a_process_callback(jackd):
    client = jackd.client("probe")
    port = client.outports.register("out")
    frames = []

    @client.set_process_callback
    def process(n):
        port.get_array()[:] = 0.0
        frames.append(n)

    assert client.samplerate == 48000
    client.activate()
    time.sleep(0.3)
    client.deactivate()
    client.close()
    assert frames and frames[0] == 256
    assert np.sum(frames) >= 48000 * 0.1
