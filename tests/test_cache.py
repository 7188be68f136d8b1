"""The shared-cache helper (engines/cache.py) and the ONNX export cache on it: several processes
asking for the same file at once get one complete file, built once; a failed build leaves nothing."""

import multiprocessing
import subprocess
import sys
import textwrap
import time

import pytest

from stemd.engines.cache import atomic_file, build_once


def _slow_build(path, log):
    """A builder that takes long enough for the others to arrive, and says who built."""
    with open(log, "a") as f:
        f.write("built\n")
    with open(path, "wb") as f:
        for _ in range(10):
            f.write(b"x" * 100_000)
            f.flush()
            time.sleep(0.05)


def _ask(target, log, results):
    path = build_once(target, lambda partial: _slow_build(partial, log))
    results.put((str(path), path.stat().st_size))


def test_concurrent_processes_build_a_file_once_and_all_get_it_whole(tmp_path):
    target, log = tmp_path / "cache" / "graph.onnx", tmp_path / "builds.log"
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    askers = [spawn.Process(target=_ask, args=(target, log, results)) for _ in range(3)]
    for p in askers:
        p.start()
    seen_partial_size = set()
    while any(p.is_alive() for p in askers):
        if target.exists():  # whoever looks meanwhile sees no file or the whole file
            seen_partial_size.add(target.stat().st_size)
        time.sleep(0.01)
    for p in askers:
        p.join()
        assert p.exitcode == 0
    got = [results.get(timeout=5) for _ in askers]
    assert got == [(str(target), 1_000_000)] * 3
    assert log.read_text() == "built\n"
    assert seen_partial_size <= {1_000_000}
    assert sorted(f.name for f in target.parent.iterdir()) == [".graph.onnx.lock", "graph.onnx"]


def test_a_failed_build_leaves_neither_the_file_nor_a_partial_one(tmp_path):
    target = tmp_path / "plan.bin"

    def broken(partial):
        partial.write_bytes(b"half")
        raise RuntimeError("the builder failed")

    with pytest.raises(RuntimeError, match="the builder failed"):
        build_once(target, broken)
    assert [f.name for f in tmp_path.iterdir()] == [".plan.bin.lock"]
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as partial:
        partial.write_bytes(b"new, half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"


# A short window (8 x 1024 samples, on HTDemucs's frame grid) keeps the two exports ~40 % cheaper.
EXPORT = textwrap.dedent("""
    import numpy as np
    from stemd.engines.demucs_backend import random_htdemucs
    from stemd.engines.onnx_export import _run_onnx, exported
    window = 8 * 1024
    path = exported(random_htdemucs(channels=8, t_layers=1), window)
    _run_onnx(path, np.zeros((1, 2, window), np.float32))
    print(path)
""")


def test_two_processes_exporting_the_same_model_share_one_verified_onnx_file(tmp_path):
    """The failure seen in the wild: a test errored while another stemd process exported the same
    model into the same cache."""
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    runs = [subprocess.Popen([sys.executable, "-c", EXPORT], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=240) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    folder = tmp_path / "stemd" / "onnx"
    names = sorted(f.name for f in folder.iterdir())
    assert [n for n in names if n.endswith(".onnx")] == [paths.pop().rsplit("/", 1)[1]]
    assert not [n for n in names if n.endswith(".partial")]
