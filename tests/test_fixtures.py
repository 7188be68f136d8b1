"""The synthetic multitrack generator: real FluidSynth + GM soundfont and espeak-ng renders, a mixture
that is exactly the sum of its stems, drums on the grid the tempo says, and an on-disk cache."""

import numpy as np

from stemd.engines import fixtures
from stemd.engines.fixtures import STEMS, render_song


def test_mix_is_exactly_the_sum_of_four_audible_stems():
    song = render_song(4.0, 44100, seed=0, bpm=120.0)
    assert song.mix.shape == (2, 4 * 44100) and song.mix.dtype == np.float32
    assert set(song.stems) == set(STEMS)
    total = np.zeros_like(song.mix)
    for name in STEMS:
        assert song.stems[name].shape == song.mix.shape
        assert np.sqrt(np.mean(song.stems[name] ** 2)) > 1e-3, f"{name} is silent"
        total += song.stems[name]
    assert np.array_equal(song.mix, total)
    assert np.abs(song.mix).max() <= fixtures.PEAK + 1e-6
    assert song.stacked.shape == (4, 2, song.mix.shape[1])


def test_drum_hits_land_on_the_tempo_grid():
    """Energy right after each beat beats the energy a sixteenth later (between the hats)."""
    song = render_song(4.0, 44100, seed=0, bpm=120.0)
    drums = np.abs(song.stems["drums"]).sum(0)
    sr, beat = song.sr, 60.0 / song.bpm
    window = int(0.03 * sr)

    def energy(t):
        i = int(t * sr)
        return float(np.sum(drums[i:i + window] ** 2))

    on = np.mean([energy(t) for t in song.beats[:-1]])
    off = np.mean([energy(t + beat / 4) for t in song.beats[:-1]])
    assert on > 3 * off
    assert np.allclose(song.beats[:4], [0.0, 0.5, 1.0, 1.5]) and len(song.hits["snare"]) > 0


def test_parameters_change_the_song_and_vocals_can_be_left_out(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMD_FIXTURE_CACHE", str(tmp_path))
    a = render_song(2.0, 48000, seed=1, bpm=97.0, vocals=False)
    assert a.sr == 48000 and a.mix.shape == (2, 96000)
    assert not a.stems["vocals"].any()
    assert len(list(tmp_path.glob("song-*.npz"))) == 1
    again = render_song(2.0, 48000, seed=1, bpm=97.0, vocals=False)  # from the cache
    assert np.array_equal(again.mix, a.mix) and again.bpm == 97.0
    other = render_song(2.0, 48000, seed=2, bpm=97.0, vocals=False)
    assert not np.array_equal(other.stems["bass"], a.stems["bass"])
    assert len(list(tmp_path.glob("song-*.npz"))) == 2


def test_a_damaged_cache_entry_is_rendered_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMD_FIXTURE_CACHE", str(tmp_path))
    first = render_song(1.0, 22050, seed=3, bpm=140.0)
    (entry,) = tmp_path.glob("song-*.npz")
    entry.write_bytes(b"garbage")
    assert np.array_equal(render_song(1.0, 22050, seed=3, bpm=140.0).mix, first.mix)
