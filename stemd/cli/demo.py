"""`stemd demo`: the whole live path on any machine, no audio hardware needed.

It joins the running JACK server, or starts a private dummy-backend jackd when there is none; runs the
daemon with the default config and the best model available (`auto`); plays a generated song into
stemd's inputs; types scripted intents over OSC as a performer would; records the mix and every stem;
and prints what was applied when, with latency, xruns and underruns. Everything it started, it stops.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from stemd.config import load_config

HELP = ("Self-contained demo: private jackd (dummy backend) unless one runs, the daemon with the best "
        "model available, a generated song, scripted intents over OSC, WAVs of the mix and the stems.")

SCRIPT = (  # (fraction of the song, what the performer types)
    (0.2, "drop the vocals"),
    (0.4, "bring them back"),
    (0.6, "solo the drums"),
    (0.8, "reset"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: built-in defaults)")
    parser.add_argument("--model", help="overrides [engine] model (default: auto, the best available)")
    parser.add_argument("--seconds", type=float, default=24.0, help="length of the generated song")
    parser.add_argument("--out", default="stemd-demo", help="folder for the WAV files (created)")


class Deck:
    """One JACK client that plays the song into stemd and records stemd's outputs, counting its own
    periods so the recording lines up with what was played."""

    def __init__(self, server: str | None, song: np.ndarray, sources: list[str], record_s: float) -> None:
        import jack

        self.client = jack.Client("stemd-demo", servername=server, no_start_server=True)
        self.song = song
        self.play = [self.client.outports.register(f"play_{c}") for c in "LR"]
        self.names = ["out_L", "out_R"] + [f"{s}_{c}" for s in sources for c in "LR"]
        self.rec = [self.client.inports.register(f"rec_{name}") for name in self.names]
        self.data = np.zeros((len(self.rec), round(record_s * self.client.samplerate)), np.float32)
        self.pos = -1  # frames since playback started; -1 before
        self.client.set_process_callback(self._process)
        self.client.activate()
        for port, target in zip(self.play, ("stemd:in_L", "stemd:in_R")):
            self.client.connect(port, target)
        for port, name in zip(self.rec, self.names):
            self.client.connect(f"stemd:{name}", port)

    def _process(self, n: int) -> None:
        pos = self.pos
        for c, port in enumerate(self.play):
            buf = port.get_array()
            chunk = self.song[c, pos:pos + n] if pos >= 0 else self.song[c, :0]
            buf[:chunk.shape[0]] = chunk
            buf[chunk.shape[0]:] = 0.0
        if pos < 0 or pos >= self.data.shape[1]:
            return
        m = min(n, self.data.shape[1] - pos)
        for c, port in enumerate(self.rec):
            self.data[c, pos:pos + m] = port.get_array()[:m]
        self.pos = pos + n

    def start(self) -> None:
        self.pos = 0

    @property
    def seconds(self) -> float:
        return max(self.pos, 0) / self.client.samplerate

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def _free_udp_port(host: str, preferred: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, preferred))
        except OSError:
            sock.bind((host, 0))
        return sock.getsockname()[1]


def _write_wavs(out: Path, deck: Deck, song: np.ndarray, rate: int) -> list[Path]:
    import soundfile

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "input.wav", out / "mix.wav"]
    soundfile.write(written[0], song.T, rate, subtype="FLOAT")
    soundfile.write(written[1], deck.data[:2].T, rate, subtype="FLOAT")
    for i in range(2, len(deck.names), 2):
        path = out / f"{deck.names[i][:-2]}.wav"
        soundfile.write(path, deck.data[i:i + 2].T, rate, subtype="FLOAT")
        written.append(path)
    return written


def _row(at: float, text: str, answer: str, stats: dict[str, Any]) -> str:
    return (f"{at:6.1f} s  {text:<18} {answer:<44} output {stats.get('output', '?'):<9} "
            f"underruns {stats.get('underruns', 0):<5} xruns {stats.get('xruns', 0)}")


def _answer(reply: Any) -> str:
    if not reply.ok:
        return f"refused: {reply.text}"
    commands = ", ".join(" ".join(str(v) for v in c.values()) for c in json.loads(reply.text))
    notes = "".join(f" ({n})" for n in reply.args[1:])
    return (commands or "ok") + notes


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from stemd.control.osc.client import connect_host, request
    from stemd.daemon.app import Daemon
    from stemd.daemon.private_jackd import PrivateJackd, server_running
    from stemd.engines.fixtures import render_song

    if args.model:
        config.engine.model = args.model
    server = config.jack.server_name or None
    jackd = None
    if not server_running(server):
        server = f"stemd-demo-{os.getpid()}"
        print(f"no JACK server running: starting a private one ({server}, dummy backend, 48 kHz, 256 frames)")
        jackd = PrivateJackd(server).start()
    config.jack.server_name = server or ""
    config.jack.connect_inputs, config.jack.connect_outputs = [], []
    config.jack.stem_ports = True
    config.voice.enabled = False
    config.osc.enabled = True
    config.osc.port = _free_udp_port(config.osc.host, config.osc.port)
    config.state.dir = str(Path(args.out) / "state")  # the demo never touches the user's saved mixer
    daemon = deck = None
    try:
        print(f"loading model {config.engine.model} ...")
        daemon = Daemon(config).start()
        supervisor = threading.Thread(target=daemon.run, name="stemd-supervisor", daemon=True)
        supervisor.start()
        rate = daemon.rate
        stats = daemon.stats()
        print(f"model {daemon.model_name} ({', '.join(daemon.sources) or 'no stems: dry'}); latency "
              f"{stats['latency_ms']:.0f} ms; OSC on {config.osc.host}:{config.osc.port}\n  {stats['latency']['reason']}")
        if daemon.web is not None:
            print("web remote: http://%s:%d/ (open it while the demo plays)" % daemon.web.address)
        if daemon.engine_error:
            print(f"engine unavailable, the demo runs dry: {daemon.engine_error}")
        print("rendering the song (FluidSynth + espeak-ng; cached after the first time) ...")
        song = render_song(args.seconds, rate).mix
        tail_s = stats["latency_ms"] / 1000.0 + 0.5
        deck = Deck(server, song, daemon.sources, args.seconds + tail_s)
        host = connect_host(config.osc.host)
        print(f"\n{'time':>8}  {'performer types':<18} {'daemon applied':<44}")
        deck.start()
        for fraction, text in SCRIPT:
            while deck.seconds < fraction * args.seconds:
                time.sleep(0.01)
            reply = request(host, config.osc.port, "/stemd/intent", [text], timeout=5.0)
            print(_row(deck.seconds, f'"{text}"', _answer(reply), daemon.stats()))
        while deck.pos < deck.data.shape[1]:
            time.sleep(0.05)
        stats = daemon.stats()
        written = _write_wavs(Path(args.out), deck, song, rate)
    finally:
        if deck is not None:
            deck.close()
        if daemon is not None:
            daemon.stop()
        if jackd is not None:
            jackd.stop()
    engine = stats.get("engine", {})
    print(f"\nlatency {stats['latency_ms']:.0f} ms, xruns {stats['xruns']}, underruns {stats['underruns']} "
          f"of {stats['periods']} periods, hard switches {stats['hard_switches']}"
          + (f", engine RTF {engine['rtf']:.2f}" if engine.get("rtf") else ""))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
