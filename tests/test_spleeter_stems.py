"""Spleeter 4 and 5 stems without their real weights: the port's variable layout is the one
Spleeter's own TensorFlow graph builds (fixture from scripts/spleeter_graph_variables.py), its
output equals that graph's for the same random weights, `stemd models fetch` verifies and installs
archives in the release's format from a local HTTP server (and a broken one leaves nothing behind),
a bad checkpoint is refused naming its first bad variable with nothing loaded, and a checkpoint in
the released format runs through `stemd separate` and the daemon, which auto picks it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from release_server import ReleaseServer

from stemd.cli import main as stemd
from stemd.engines.registry import ModelNotAvailable, explain_auto, load_separator
from stemd.engines.spleeter import OnnxUNets, Spleeter, load_spleeter
from stemd.engines.spleeter_fetch import FetchFailed, fetch
from stemd.engines.spleeter_layout import graph_variables, random_tensors
from stemd.engines.spleeter_models import CONFIGS, checkpoint_dir, default_checkpoint_prefix
from stemd.engines.tf_checkpoint import Checkpoint, CheckpointError
from stemd.engines.tf_checkpoint_writer import write_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
PARITY_SEED, PARITY_SAMPLES, PARITY_FRAMES = 17, 2048, 64  # as in scripts/spleeter_graph_variables.py
SPLEETER4 = CONFIGS["spleeter4"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _archive(checkpoint: Path, out: Path) -> Path:
    """A release archive as Deezer packs it: the checkpoint's files and TF's `checkpoint` file at the
    top level (gzip level 0 keeps the test fast; it is still a .tar.gz)."""
    (checkpoint / "checkpoint").write_text('model_checkpoint_path: "model"\n')
    with tarfile.open(out, "w:gz", compresslevel=0) as tar:
        for path in sorted(checkpoint.iterdir()):
            tar.add(path, arcname=path.name)
    return out


def _publish(folder: Path, archives: dict[str, Path], checksums: dict[str, str] | None = None) -> None:
    for name, archive in archives.items():
        os.link(archive, folder / f"{name}.tar.gz")
    sums = checksums or {name: _sha256(archive) for name, archive in archives.items()}
    (folder / "checksum.json").write_text(json.dumps(sums))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A local release server with folders: good (4stems), badsum (wrong digest), truncated (half the
    archive, its own digest), wrongmodel (the 4-stem archive published as 5stems)."""
    root = tmp_path_factory.mktemp("release")
    staged = root / "staged"
    write_checkpoint(staged / "model", random_tensors(4, seed=4))
    good = _archive(staged, root / "4stems.tar.gz")
    truncated = root / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with ReleaseServer(root / "www") as server:
        _publish(server.release_dir("good"), {"4stems": good})
        _publish(server.release_dir("badsum"), {"4stems": good}, {"4stems": "0" * 64})
        _publish(server.release_dir("truncated"), {"4stems": truncated})
        _publish(server.release_dir("wrongmodel"), {"5stems": good})
        yield server


@pytest.fixture
def models_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data" / "stemd" / "models"


@pytest.fixture(scope="module")
def installed(release, tmp_path_factory) -> Path:
    """spleeter4 fetched from the good release into a models folder the module's tests share."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("installed")))
        folder = fetch(SPLEETER4, release.url("good"))
        yield folder


@pytest.fixture
def home_with_spleeter4(installed, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(installed.parents[3]))
    return installed


def test_the_layout_is_the_variables_spleeters_own_graph_builds_in_its_order() -> None:
    fixture = json.loads((FIXTURES / "spleeter_graph_variables.json").read_text())
    assert fixture["spleeter"] == "2.4.2"
    for release, instruments in (("2stems", 2), ("4stems", 4), ("5stems", 5)):
        theirs = [(name, tuple(shape)) for name, shape in fixture["graphs"][release]]
        assert [(v.name, v.shape) for v in graph_variables(instruments)] == theirs, release
    assert len(fixture["graphs"]["5stems"]) == 370 and fixture["graphs"]["5stems"][-2][0] == "conv2d_34/kernel"


@pytest.mark.parametrize("name", ["spleeter4", "spleeter5"])
def test_the_port_separates_as_spleeters_tensorflow_graph_does(name, tmp_path) -> None:
    """Same random weights, same input: TF's waveforms (recorded by the fixture script) to ~1e-6, in
    PyTorch and (5 stems) ONNX Runtime. The 2-stem activations (LeakyReLU/ReLU) or sigmoid masks in
    place of 5 stems' softmax miss by far more."""
    config = CONFIGS[name]
    write_checkpoint(tmp_path / "model", random_tensors(len(config.instruments), PARITY_SEED))
    audio = (0.1 * np.random.default_rng(PARITY_SEED).standard_normal((PARITY_SAMPLES, 2))).astype(np.float32)
    expected = np.load(FIXTURES / "spleeter_graph_outputs.npz")[config.release]

    def separate(model: Spleeter) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(audio.T.copy()), PARITY_FRAMES).numpy()

    model = load_spleeter(config, tmp_path)
    np.testing.assert_allclose(separate(model), expected, atol=1e-5)
    if config.softmax:  # the ONNX export carries the softmax across instruments too
        model.unet_runtime = OnnxUNets(model, threads=1)
        np.testing.assert_allclose(separate(model), expected, atol=1e-5)
        model.unet_runtime = None
        model.masker.softmax = False
        for unet in model.unets:
            unet.logits = False
    else:
        for unet in model.unets:
            unet.elu = False
    assert np.abs(separate(model) - expected).max() > 1e-3


def test_fetch_verifies_unpacks_and_stemd_models_lists_it(release, models_home, capsys) -> None:
    assert stemd(["models", "fetch", "spleeter4", "--release-url", release.url("good")]) == 0
    installed = checkpoint_dir(SPLEETER4)
    assert installed.parent.parent == models_home
    assert capsys.readouterr().out.strip() == f"ok   {installed}"
    assert sorted(p.name for p in installed.iterdir()) == [
        ".probe", "checkpoint", "model.data-00000-of-00001", "model.index"]
    assert [p.name for p in installed.parent.iterdir()] == ["4stems"]  # no temporary folder left
    assert stemd(["models"]) == 0
    listing = capsys.readouterr().out
    assert "spleeter4      ready" in listing and f"ok   {installed / 'model.index'}" in listing
    assert "spleeter5      missing weights" in listing


@pytest.mark.parametrize("release_name, model, reason", [
    ("badsum", "spleeter4", "does not match 0000"),
    ("truncated", "spleeter4", "not a complete .tar.gz archive"),
    ("wrongmodel", "spleeter5", "not a spleeter5 checkpoint: variable conv2d_28/kernel is missing"),
])
def test_a_broken_download_leaves_nothing_behind(release, models_home, release_name, model, reason) -> None:
    with pytest.raises(FetchFailed, match=reason) as err:
        fetch(CONFIGS[model], release.url(release_name))
    assert f"nothing was installed in {checkpoint_dir(CONFIGS[model])}" in str(err.value)
    assert list((models_home / "spleeter").iterdir()) == []


def test_a_failed_fetch_keeps_the_installed_model(release, home_with_spleeter4: Path) -> None:
    installed = home_with_spleeter4
    before = _sha256(installed / "model.index")
    with pytest.raises(FetchFailed, match="sha256"):
        fetch(SPLEETER4, release.url("badsum"))
    assert _sha256(installed / "model.index") == before and (installed / ".probe").is_file()
    assert [p.name for p in installed.parent.iterdir()] == ["4stems"]


def test_fetch_without_a_release_names_the_url(models_home) -> None:
    with pytest.raises(FetchFailed, match=r"cannot download http://127.0.0.1:9/checksum.json"):
        fetch(SPLEETER4, "http://127.0.0.1:9")


def test_without_the_weights_the_error_names_file_folder_and_fetch_command(models_home) -> None:
    with pytest.raises(ModelNotAvailable) as err:
        load_separator("spleeter4", device="cpu")
    message = str(err.value)
    assert "model.index is missing in" in message and str(models_home / "spleeter" / "4stems") in message
    assert "`stemd models fetch spleeter4`" in message


def test_a_checkpoint_of_another_model_is_refused_naming_the_first_bad_variable(installed: Path) -> None:
    two_stems = default_checkpoint_prefix(CONFIGS["spleeter2"])
    with pytest.raises(ModelNotAvailable, match="variable conv2d_14/kernel is missing"):
        load_separator("spleeter4", device="cpu", model_path=str(two_stems))
    with pytest.raises(ModelNotAvailable, match="148 tensors it does not have, first batch_normalization_24/beta"):
        load_separator("spleeter2", device="cpu", model_path=str(installed))


def test_a_mis_shaped_or_truncated_checkpoint_loads_nothing(installed: Path, tmp_path: Path) -> None:
    tensors = Checkpoint(installed / "model").read_all()
    tensors["conv2d_9/kernel"] = tensors["conv2d_9/kernel"][..., :-1]
    write_checkpoint(tmp_path / "reshaped" / "model", tensors)
    model = Spleeter(SPLEETER4)
    untouched = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"variable conv2d_9/kernel has shape \(5, 5, 32, 63\); "
                                              r"spleeter4 needs \(5, 5, 32, 64\)"):
        model.load_checkpoint(Checkpoint(tmp_path / "reshaped" / "model"))

    cut = tmp_path / "cut"
    shutil.copytree(installed, cut)
    data = cut / "model.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size * 3 // 4])
    with pytest.raises(CheckpointError, match="data shard ends before the tensor does"):
        model.load_checkpoint(Checkpoint(cut / "model"))
    assert all(torch.equal(untouched[k], v) for k, v in model.state_dict().items())


def test_auto_takes_the_most_stems_whose_weights_are_here(models_home: Path, installed: Path) -> None:
    assert explain_auto("cpu")[0] == "spleeter2"
    four = checkpoint_dir(SPLEETER4)
    shutil.copytree(installed, four, copy_function=os.link)
    name, reason = explain_auto("cpu")
    assert name == "spleeter4" and reason == "auto: no GPU for htdemucs; spleeter4's weights are here"
    assert explain_auto("cuda")[0] == "spleeter4"  # hub offline in tests: no htdemucs to fetch
    five = checkpoint_dir(CONFIGS["spleeter5"])
    shutil.copytree(installed, five, copy_function=os.link)  # only presence counts for the choice
    assert explain_auto("cpu")[0] == "spleeter5"
    shutil.rmtree(five.parent)
    assert explain_auto("cpu") == ("spleeter2", "auto: no GPU for htdemucs; no spleeter5/spleeter4 weights "
                                                "(`stemd models fetch spleeter5`); spleeter2 ships with the install")


def test_stemd_separate_runs_spleeter4_on_a_checkpoint_in_the_released_format(home_with_spleeter4, tmp_path,
                                                                            capsys) -> None:
    rate = 44100
    mix = (0.1 * np.random.default_rng(3).standard_normal((rate, 2))).astype(np.float32)
    sf.write(tmp_path / "mix.wav", mix, rate)
    assert stemd(["separate", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "out"), "--model", "spleeter4",
                  "--backend", "onnx", "--quiet"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == [
        "vocals", "drums", "bass", "other", "remix"]
    stems = np.stack([sf.read(tmp_path / "out" / f"mix.{s}.wav", dtype="float32")[0]
                      for s in ("vocals", "drums", "bass", "other")])
    assert stems.shape == (4, rate, 2) and all(np.abs(s).max() > 1e-3 for s in stems)
    # Ratio masks sum to one below 11 kHz, whatever the weights: the stems add up to the mix there.
    total, reference = np.fft.rfft(stems.sum(0), axis=0), np.fft.rfft(mix, axis=0)
    low = slice(50, 10800)
    assert np.abs(total[low] - reference[low]).mean() < 0.01 * np.abs(reference[low]).mean()


@pytest.mark.jack
def test_the_daemon_picks_spleeter4_by_itself_says_why_and_plays_its_stems(home_with_spleeter4, jackd,
                                                                           tmp_path) -> None:
    from daemon_harness import running_daemon
    from test_daemon_jack import wait_until

    from stemd.cli.status import render

    auto_latency = {"latency_ms": 0.0, "dry_crossfade_ms": 10.0}
    with running_daemon(jackd, tmp_path, model="auto", audio=auto_latency, engine={"backend": "auto"}) as daemon:
        stats = daemon.stats()
        assert stats["model"] == "spleeter4", stats
        assert stats["model_reason"] == "auto: no GPU for htdemucs; spleeter4's weights are here"
        assert daemon.sources == ["vocals", "drums", "bass", "other"]
        assert stats["latency"]["mode"] == "auto" and "spleeter4 needs" in stats["latency"]["reason"]
        assert wait_until(lambda: daemon.jack.path.stats.wet, 60), daemon.stats()
        shown = render(daemon.session.snapshot())
    assert "spleeter4 (auto: no GPU for htdemucs; spleeter4's weights are here)" in shown
