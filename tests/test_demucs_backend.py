"""The PyTorch HTDemucs backend, loaded through demucs's own loaders from random-weight checkpoints
of the real architecture: a weight file, a repo folder (with a weighted bag), and torch.hub's cache
the way `demucs` itself leaves it. Offline with nothing there, one error names the file and folder."""

import numpy as np
import pytest
import torch

from stemd.engines.demucs_backend import (
    checkpoint_dir, demucs_separator, random_htdemucs, save_checkpoint, torch_threads, weight_files, weights_present, write_repo,
)
from stemd.engines.registry import DEMUCS_NAMES, MODELS, ModelNotAvailable, explain_auto, load_separator

SOURCES = ["drums", "bass", "other", "vocals"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread, as the engine worker runs on a 2-core rig (and fast on a shared CI box)."""
    with torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    """torch.hub's cache in a fresh folder, hub downloads forbidden."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no spleeter4/5 weights for auto
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def mixture(seconds=1.0, rate=44100):
    rng = np.random.default_rng(3)
    return (0.2 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32)


def test_weight_file_loads_through_demucs_and_matches_the_model(tmp_path):
    model = random_htdemucs(channels=8, t_layers=1)
    path = save_checkpoint(model, tmp_path / "small.th")
    sep = load_separator("htdemucs", model_path=str(path), device="cpu")
    x = mixture(0.5)
    got = sep.separate(x)
    assert sep.sources == SOURCES and sep.sample_rate == 44100
    assert got.shape == (4, 2, x.shape[1]) and got.dtype == np.float32
    model.use_train_segment = False
    with torch.no_grad():
        want = model(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_cost_follows_the_window_not_the_training_segment(tmp_path):
    """use_train_segment=False: a short window is not padded to 7.8 s (output length = input)."""
    sep = load_separator("htdemucs", model_path=str(save_checkpoint(random_htdemucs(8, t_layers=1),
                                                                   tmp_path / "m.th")), device="cpu")
    assert all(not m.use_train_segment for m in sep.models)
    assert sep.separate(mixture(0.3)).shape[-1] == int(0.3 * 44100)


def test_repo_folder_bag_applies_per_source_weights(tmp_path):
    a, b = random_htdemucs(8, t_layers=1, seed=1), random_htdemucs(8, t_layers=1, seed=2)
    weights = [[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 0.5]]
    write_repo(tmp_path / "repo", "mybag", [a, b], weights)
    sep = demucs_separator("mybag", model_path=str(tmp_path / "repo"), device="cpu")
    x = mixture(0.3)
    got = sep.separate(x)
    for m in (a, b):
        m.use_train_segment = False
    with torch.no_grad():
        ya, yb = (m(torch.from_numpy(x)[None])[0].numpy() for m in (a, b))
    w = np.array(weights, dtype=np.float32)
    want = (w[0, :, None, None] * ya + w[1, :, None, None] * yb) / w.sum(0)[:, None, None]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_repo_folder_without_the_model_names_the_folder(tmp_path):
    write_repo(tmp_path / "repo", "other", [random_htdemucs(8, t_layers=1)])
    with pytest.raises(ModelNotAvailable, match=r"repo"):
        load_separator("htdemucs", model_path=str(tmp_path / "repo"), device="cpu")


def test_missing_weights_offline_name_the_exact_file_and_folder():
    assert not weights_present("htdemucs")
    with pytest.raises(ModelNotAvailable) as err:
        load_separator("htdemucs", device="cpu")
    message = str(err.value)
    assert "955717e8-8726e21a.th" in message and str(checkpoint_dir()) in message


def test_weights_in_torch_hub_cache_load_offline_through_demucs_legacy_repo():
    """The file demucs would have downloaded, pre-placed: demucs's legacy repo reads it with no request."""
    (path,) = weight_files("htdemucs")
    save_checkpoint(random_htdemucs(8, t_layers=1), path)
    assert weights_present("htdemucs") and explain_auto("cuda")[0] == "htdemucs"
    assert explain_auto("cpu")[0] == "spleeter2"  # htdemucs is not a CPU model, weights or not
    sep = load_separator("htdemucs", device="cpu")
    assert sep.name == "htdemucs" and sep.separate(mixture(0.2)).shape == (4, 2, 8820)


def test_six_source_model_and_offline_reference(tmp_path):
    sources = SOURCES + ["guitar", "piano"]
    model = random_htdemucs(8, sources=sources, t_layers=1, segment=0.5)  # apply_model pads to it
    path = save_checkpoint(model, tmp_path / "six.th")
    sep = load_separator("htdemucs_6s", model_path=str(path), device="cpu")
    x = mixture(0.8)
    assert sep.sources == sources
    assert sep.separate_offline(x).shape == (6, 2, x.shape[1])


def test_registry_lists_the_demucs_family():
    assert set(DEMUCS_NAMES) <= set(MODELS)


def test_bad_weight_file_and_unknown_names_are_clear(tmp_path):
    junk = tmp_path / "junk.th"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelNotAvailable, match="not a demucs model file"):
        load_separator("htdemucs", model_path=str(junk), device="cpu")
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        load_separator("htdemucs", model_path=str(tmp_path / "nope.th"), device="cpu")
    with pytest.raises(ModelNotAvailable, match="unknown model"):
        load_separator("nosuchmodel", device="cpu")
    with pytest.raises(ModelNotAvailable, match="backend"):
        load_separator("htdemucs", model_path=str(junk), device="cpu", backend="nosuch")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_agrees_with_cpu(tmp_path):
    path = save_checkpoint(random_htdemucs(8, t_layers=1), tmp_path / "m.th")
    x = mixture(1.0)
    cpu = load_separator("htdemucs", model_path=str(path), device="cpu").separate(x)
    gpu = load_separator("htdemucs", model_path=str(path), device="cuda", fp16=True).separate(x)
    from stemd.engines.metrics import sdr

    assert sdr(cpu, gpu) > 30


def test_models_command_shows_what_is_missing_and_where_it_goes(capsys):
    from stemd.cli import main

    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert f"need {weight_files('htdemucs')[0]}" in listing and "htdemucs " in listing
    save_checkpoint(random_htdemucs(8, t_layers=1), weight_files("htdemucs")[0])
    assert main(["models", "list"]) == 0
    assert "htdemucs       ready" in capsys.readouterr().out
    assert main(["models", "check", "htdemucs", "--device", "cpu"]) == 0
    assert "drums, bass, other, vocals" in capsys.readouterr().out


def test_fetch_refuses_offline_and_unknown_names(capsys):
    from stemd.cli import main

    assert main(["models", "fetch", "demucs", "htdemucs"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert main(["models", "fetch", "demucs", "mdx_extra"]) == 2
    assert "not one stemd runs" in capsys.readouterr().err


def test_weights_in_the_hugging_face_cache_load_by_path_with_no_request(tmp_path, monkeypatch):
    """The hub layout `demucs` (or `stemd models fetch`) leaves, pre-placed: loading reads it by path.
    HF_HUB_OFFLINE is unset and name resolution refused, so a request to the hub would show."""
    import json
    import socket

    import huggingface_hub.constants
    from safetensors.torch import save_file

    tried = []

    def refuse(host, *args, **kwargs):  # recorded: the hub client would swallow a raise and use the cache
        tried.append(host)
        raise OSError(f"no network in this test ({host})")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read at its import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    repo = tmp_path / "hub" / "models--adefossez--HTDemucs"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    (snapshot / "htdemucs.yaml").write_text("models: ['955717e8']\n")
    model = random_htdemucs(8, t_layers=1)
    args, kwargs = model._init_args_kwargs
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "955717e8.safetensors"),
              metadata={"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(args), "kwargs": json.dumps(kwargs)})
    assert weights_present("htdemucs")
    sep = load_separator("htdemucs", device="cpu")
    x = mixture(0.2)
    model.use_train_segment = False
    with torch.no_grad():
        want = model(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(sep.separate(x), want, atol=1e-5)
    assert tried == []
