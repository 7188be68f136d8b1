"""Run a separation offline from Python: one song in, one WAV per stem plus a remix out.

    .venv/bin/python examples/offline_separation.py [SONG.wav] [-o OUT_DIR] [--model spleeter2]

Without SONG it renders a short fixture song (FluidSynth drums/bass/piano plus an espeak-ng voice),
so the example runs on a fresh install. It uses the same pieces `stemd separate` uses: the model
registry, then `separate_file`, which streams the file through the live engine with a long window
in bounded memory and mixes the remix under Commands — here "drop the vocals".
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import soundfile as sf

from stemd.control.intent import parse
from stemd.engines.fixtures import render_song
from stemd.engines.offline import separate_file
from stemd.engines.registry import load_separator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("song", nargs="?", type=Path, help="a WAV/FLAC file (default: a rendered fixture song)")
    ap.add_argument("-o", "--out", type=Path, default=Path("stems"), help="output folder")
    ap.add_argument("--model", default="spleeter2", help="a model name from `stemd models`")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of the rendered song")
    args = ap.parse_args()

    separator = load_separator(args.model, device="cpu")
    print(f"model: {separator.describe()}")
    song_path = args.song
    if song_path is None:
        song = render_song(args.seconds, 44100, seed=1)
        song_path = Path(tempfile.mkdtemp()) / "fixture.wav"
        sf.write(song_path, song.mix.T, song.sr)
    commands = parse("drop the vocals", separator.sources)
    written = separate_file(song_path, args.out, separator, commands=commands)
    for stem, path in written.items():
        print(f"{stem:>14}: {path}")


if __name__ == "__main__":
    main()
