"""`stemd models` (list, with where the weights go), `stemd models check NAME`, and
`stemd models fetch demucs NAME` (downloads through demucs, on a machine with internet), and
`stemd models fetch vosk [NAME]` (the voice model, through Vosk's downloader), and
`stemd models fetch clap [REPO]` (the intent parser's CLAP checkpoint, through transformers), and
`stemd models fetch spleeter4|spleeter5` (Deezer's release archives, checksum-verified)."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "List models and whether their weights are here, load one to check it, or fetch weights."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action")
    sub.add_parser("list", help="models, weights present or not, and where they go (the default)")
    check = sub.add_parser("check", help="load a model and print what it separates")
    check.add_argument("name")
    check.add_argument("--model-path", default="")
    check.add_argument("--device", default="auto")
    check.add_argument("--backend", default="torch")
    fetch = sub.add_parser("fetch", help="download weights (needs internet)")
    fetch.add_argument("family", choices=["demucs", "vosk", "clap", "spleeter4", "spleeter5"])
    fetch.add_argument("name", nargs="?", default="", help="vosk: default vosk-model-small-en-us-0.15; "
                       "clap: default laion/clap-htsat-unfused")
    fetch.add_argument("--release-url", default="", help="spleeter4/5: the release folder holding "
                       "<n>stems.tar.gz and checksum.json (default: Deezer's v1.4.0 release; a mirror)")


def main(args: argparse.Namespace) -> int:
    from stemd.engines.registry import ModelNotAvailable

    try:
        if args.action == "check":
            return _check(args)
        if args.action == "fetch":
            if args.family == "clap":
                return _fetch_clap(args.name)
            if args.family.startswith("spleeter"):
                return _fetch_spleeter(args.family, args.release_url)
            return _fetch_vosk(args.name) if args.family == "vosk" else _fetch(args.name)
        return _list()
    except ModelNotAvailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _list() -> int:
    from stemd.engines.registry import MODELS, weight_status

    for name in MODELS:
        status = weight_status(name)
        present = all(ok for _, ok in status)
        print(f"{name:14} {'ready' if present else 'missing weights'}")
        for where, ok in status:
            print(f"    {'ok  ' if ok else 'need'} {where}")
    from stemd.control.intent.clap import default_clap_dir, find_checkpoint

    clap = find_checkpoint("")[0] is not None
    print(f"{'clap':14} {'ready' if clap else 'missing weights'} (intent parser: semantic layer, audio routing)")
    print(f"    {'ok  ' if clap else 'need'} {default_clap_dir()} (or set [intent] clap_path)")
    from stemd.control.voice.models import DEFAULT_MODEL, VoiceUnavailable, resolve, search_dirs

    try:
        print(f"{'vosk':14} ready (voice control)\n    ok   {resolve('')}")
    except VoiceUnavailable:
        print(f"{'vosk':14} missing model (voice control; or set [voice] model_path)")
        print(f"    need {search_dirs()[-1] / DEFAULT_MODEL}")
    from stemd.control.voice.models import choose_engine

    print(f"{'pocketsphinx':14} ready (voice control, English; its model ships in the pocketsphinx wheel)")
    print(f"    voice engine now: {' - '.join(choose_engine('auto', ''))}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from stemd.engines.registry import load_separator

    separator = load_separator(args.name, model_path=args.model_path, device=args.device, backend=args.backend)
    print(separator.describe())
    return 0


def _fetch_vosk(name: str) -> int:
    """The voice model, through Vosk's own downloader (into ~/.cache/vosk, where the daemon looks)."""
    from stemd.control.voice.models import DEFAULT_MODEL, VoiceUnavailable, fetch

    try:
        print(f"ok   {fetch(name or DEFAULT_MODEL)}")
    except (VoiceUnavailable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _fetch_clap(repo: str) -> int:
    """CLAP for the intent parser's semantic layer and audio routing, saved where `[intent] clap_path`
    = "" looks (transformers format; loaded later with local_files_only)."""
    from stemd.control.intent.clap import CLAP_REPO, fetch
    from stemd.engines.registry import ModelNotAvailable, hub_offline

    if hub_offline():
        raise ModelNotAvailable("HF_HUB_OFFLINE is set; unset it to download")
    os.environ.pop("HF_HUB_OFFLINE", None)
    print(f"ok   {fetch(repo=repo or CLAP_REPO)}")
    return 0


def _fetch_spleeter(name: str, release_url: str) -> int:
    """Deezer's archive for spleeter4/5 into stemd's models folder, where `engine.model` finds it."""
    from stemd.engines.spleeter_fetch import RELEASE_URL, fetch
    from stemd.engines.spleeter_models import CONFIGS

    print(f"ok   {fetch(CONFIGS[name], release_url or RELEASE_URL)}")
    return 0


def _fetch(name: str) -> int:
    from stemd.engines.registry import DEMUCS_NAMES, ModelNotAvailable, hub_offline, weight_status

    if name not in DEMUCS_NAMES:
        raise ModelNotAvailable(f"demucs model {name!r} is not one stemd runs; choose {', '.join(DEMUCS_NAMES)}")
    if hub_offline():
        raise ModelNotAvailable("HF_HUB_OFFLINE is set; unset it to download")
    os.environ.pop("HF_HUB_OFFLINE", None)
    from stemd.engines.demucs_backend import download_demucs_model

    download_demucs_model(name)
    for where, ok in weight_status(name):
        print(f"{'ok  ' if ok else 'need'} {where}")
    return 0
