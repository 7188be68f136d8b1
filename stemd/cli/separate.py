"""`stemd separate IN -o DIR [--model M] [--stems vocals,drums] [--intent "vocals only"]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Separate an audio file into one file per stem plus a remix, in bounded memory. --stems picks "
        "the stems to write (the remix is those stems); --intent reshapes the remix in plain words.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="audio file (anything libsndfile reads: wav, flac, ogg, ...)")
    parser.add_argument("-o", "--out", type=Path, default=Path("separated"), help="output folder")
    parser.add_argument("--model", default="auto", help="auto, htdemucs, htdemucs_6s, htdemucs_ft, spleeter2, spleeter4, spleeter5")
    parser.add_argument("--model-path", default="", help="local weight file or demucs repo folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--backend", default="torch", help="inference backend (torch, onnx, ...)")
    parser.add_argument("--stems", default="", help="comma-separated stems to write (default: all)")
    parser.add_argument("--intent", default="", help='plain-words remix, e.g. "vocals only"')
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from stemd.engines.offline import InputError, check_input, separate_file
    from stemd.engines.registry import ModelNotAvailable, load_separator

    try:
        info = check_input(args.input)
        separator = load_separator(args.model, model_path=args.model_path, device=args.device,
                                   backend=args.backend)
        if separator.chosen_because:
            print(f"model {separator.name} ({separator.chosen_because})", file=sys.stderr)
        stems = [s.strip() for s in args.stems.split(",") if s.strip()]
        commands = _intent(args.intent, separator.sources) if args.intent else []
        from tqdm import tqdm

        with tqdm(total=info.frames, unit="s", unit_scale=1.0 / info.rate, disable=args.quiet,
                  desc=f"{args.input.name} ({separator.name})", bar_format=_BAR) as bar:
            written = separate_file(args.input, args.out, separator, stems, commands, progress=bar.update)
    except (InputError, ModelNotAvailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"


def _intent(text: str, stems: list[str]) -> list:
    """Commands for the remix; the intent parser's rejection reason is the error message."""
    try:
        from stemd.control.intent import parse
    except ImportError as exc:
        raise ValueError(f"--intent needs the intent parser, which this install lacks ({exc})") from exc
    return parse(text, stems)
