"""`stemd separate`: a fixture song through a random-weight HTDemucs (loaded from a weight file by
demucs's loader), in blocks, to one file per stem plus the remix; stems and intents choose the
remix; bad input files get one clear error each."""

import numpy as np
import pytest
import soundfile as sf

from stemd.cli import main
from stemd.engines.demucs_backend import DemucsSeparator, random_htdemucs, save_checkpoint, torch_threads
from stemd.engines.fixtures import render_song
from stemd.engines.metrics import sdr
from stemd.engines.offline import separate_file

SOURCES = ["drums", "bass", "other", "vocals"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small HTDemucs trained (randomly) on 1 s segments, so offline windows stay short."""
    with torch_threads(1):
        yield save_checkpoint(random_htdemucs(8, t_layers=1, segment=1.0),
                              tmp_path_factory.mktemp("model") / "small.th")


@pytest.fixture(scope="module")
def song_file(tmp_path_factory):
    song = render_song(3.0, 44100, seed=5)
    path = tmp_path_factory.mktemp("in") / "song.wav"
    sf.write(path, song.mix.T, 44100, subtype="FLOAT")
    return path, song


def read(path):
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return audio.T, rate


def test_every_stem_and_the_remix_in_blocks(tmp_path, model_file, song_file):
    path, song = song_file
    from stemd.engines.demucs_backend import load_demucs_model

    separator = DemucsSeparator(load_demucs_model("htdemucs", str(model_file)), "htdemucs")
    seen = []
    written = separate_file(path, tmp_path, separator, block=8192, progress=seen.append)
    assert sum(seen) == song.mix.shape[1] and max(seen) <= 8192
    assert set(written) == set(SOURCES) | {"remix"}
    stems = {}
    for name, out in written.items():
        stems[name], rate = read(out)
        assert rate == 44100 and stems[name].shape == song.mix.shape
    np.testing.assert_allclose(stems["remix"], sum(stems[s] for s in SOURCES), atol=1e-5)
    whole = separator.separate(song.mix)  # one pass over the whole song: the offline ideal
    scores = [sdr(whole[i][:, 4410:-4410], stems[s][:, 4410:-4410]) for i, s in enumerate(SOURCES)]
    assert min(scores) > 12.0, scores  # 15.8-18.2 dB measured


def test_cli_stems_and_intent_shape_the_remix(tmp_path, model_file, song_file, capsys):
    path, _ = song_file
    code = main(["separate", str(path), "-o", str(tmp_path), "--model", "htdemucs", "--model-path",
                 str(model_file), "--stems", "vocals,drums", "--intent", "mute the drums", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.drums.wav", "song.remix.wav", "song.vocals.wav"]
    remix, vocals = read(tmp_path / "song.remix.wav")[0], read(tmp_path / "song.vocals.wav")[0]
    np.testing.assert_array_equal(remix, vocals)


def test_mono_input_is_separated_as_stereo(tmp_path, model_file):
    mono = tmp_path / "mono.wav"
    sf.write(mono, (0.1 * np.random.default_rng(0).standard_normal(22050)).astype(np.float32), 44100)
    assert main(["separate", str(mono), "-o", str(tmp_path / "o"), "--model-path", str(model_file),
                 "--model", "htdemucs", "--stems", "bass", "--quiet"]) == 0
    audio, _ = read(tmp_path / "o" / "mono.bass.wav")
    assert audio.shape == (2, 22050)


def bad_inputs(tmp):
    text = tmp / "notes.wav"
    text.write_text("this is not audio")
    surround = tmp / "surround.wav"
    sf.write(surround, np.zeros((100, 3), np.float32), 44100)
    empty = tmp / "empty.wav"
    sf.write(empty, np.zeros((0, 2), np.float32), 44100)
    return [(tmp / "missing.wav", "no such file"), (text, "not an audio file"),
            (surround, "has 3 channels"), (empty, "contains no samples"), (tmp, "is a folder")]


def test_bad_inputs_get_one_clear_error_each(tmp_path, capsys):
    for path, reason in bad_inputs(tmp_path):
        assert main(["separate", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert reason in err and str(path) in err and "Traceback" not in err


def test_unknown_stem_and_rejected_intent_are_errors(tmp_path, model_file, song_file, capsys):
    path, _ = song_file
    base = ["separate", str(path), "-o", str(tmp_path), "--model", "htdemucs", "--model-path", str(model_file),
            "--quiet"]
    assert main(base + ["--stems", "kazoo"]) == 2
    assert "no stem kazoo" in capsys.readouterr().err
    assert main(base + ["--intent", "make it sound purple"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
