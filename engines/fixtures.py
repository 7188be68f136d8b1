"""Synthetic songs with ground-truth stems, for tests and benchmarks.

Drums, bass and chords are generated as MIDI (mido) and rendered one stem at a time through FluidSynth
with Debian's General MIDI soundfont; the vocals are espeak-ng phrases placed on the beat. The mixture
is the sum of the stems by construction, so tests can check mixture consistency and benchmarks can
score separated stems against the truth (SDR / SI-SDR). Rendering takes seconds, so songs are cached
on disk keyed by their parameters (and the generator version); concurrent test processes share the
cache safely (atomic rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
import soundfile as sf
import soxr

from stemd.engines.cache import atomic_file

VERSION = 1
STEMS = ("vocals", "drums", "bass", "other")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TICKS = 480  # per beat
KICK, SNARE, HAT = 36, 38, 42
BASS_PROGRAM, KEYS_PROGRAM = 33, 4  # fingered electric bass, electric piano
PROGRESSION = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12))  # I V vi IV, semitones over the key
WORDS = ("la", "oh", "yeah", "na na", "baby", "tonight", "fire", "hey", "so high", "the night")
LEVELS = {"vocals": 0.08, "drums": 0.1, "bass": 0.08, "other": 0.06}  # target RMS per stem
PEAK = 0.9


class FixtureError(RuntimeError):
    """A renderer (fluidsynth, espeak-ng) or the soundfont is missing or failed."""


@dataclass
class Song:
    """A rendered song: `mix` [2, N] float32 equals `sum(stems[s] for s in STEMS)` exactly."""

    mix: np.ndarray
    stems: dict[str, np.ndarray]
    bpm: float
    sr: int
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0))  # beat times, seconds
    hits: dict[str, np.ndarray] = field(default_factory=dict)  # kick/snare/hats onset times, seconds

    @property
    def stacked(self) -> np.ndarray:
        """[4, 2, N] in STEMS order (the layout separators return)."""
        return np.stack([self.stems[s] for s in STEMS])


def cache_dir() -> Path:
    return Path(os.environ.get("STEMD_FIXTURE_CACHE", Path.home() / ".cache" / "stemd" / "fixtures"))


def render_song(seconds: float = 8.0, sr: int = 44100, seed: int = 0, bpm: float = 120.0,
                vocals: bool = True) -> Song:
    """The song for these parameters, from the cache or freshly rendered."""
    params = {"v": VERSION, "seconds": seconds, "sr": sr, "seed": seed, "bpm": bpm, "vocals": vocals}
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"song-{key}.npz"
    if path.exists():
        try:
            return _load(path, bpm, sr)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is rendered again
    song = _render(seconds, sr, seed, bpm, vocals)
    _save(song, path)
    return song


def _save(song: Song, path: Path) -> None:
    with atomic_file(path) as partial, partial.open("wb") as f:
        np.savez(f, beats=song.beats, **{f"stem_{k}": v for k, v in song.stems.items()},
                 **{f"hit_{k}": v for k, v in song.hits.items()})


def _load(path: Path, bpm: float, sr: int) -> Song:
    with np.load(path) as data:
        stems = {s: data[f"stem_{s}"] for s in STEMS}
        hits = {k[4:]: data[k] for k in data.files if k.startswith("hit_")}
        beats = data["beats"]
    return Song(_sum(stems), stems, bpm, sr, beats, hits)


def _sum(stems: dict[str, np.ndarray]) -> np.ndarray:
    mix = np.zeros_like(stems[STEMS[0]])
    for s in STEMS:
        mix += stems[s]
    return mix


# ---- rendering ---------------------------------------------------------------------------------------


def _render(seconds: float, sr: int, seed: int, bpm: float, vocals: bool) -> Song:
    for tool in ("fluidsynth", "espeak-ng"):
        if shutil.which(tool) is None:
            raise FixtureError(f"{tool} is not installed (scripts/install.sh installs it)")
    if not SOUNDFONT.exists():
        raise FixtureError(f"soundfont {SOUNDFONT} is missing (Debian package fluid-soundfont-gm)")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    beat_s = 60.0 / bpm
    n_beats = int(np.ceil(seconds / beat_s))
    key = int(rng.integers(0, 12))
    hits = _drum_pattern(rng, n_beats)
    with tempfile.TemporaryDirectory(prefix="stemd-fixture-") as tmp:
        work = Path(tmp)
        stems = {
            "drums": _fluidsynth(_midi(bpm, [(9, None, _hit_notes(hits))]), work / "drums", sr, n),
            "bass": _fluidsynth(_midi(bpm, [(0, BASS_PROGRAM, _bass_line(rng, n_beats, key))]),
                                work / "bass", sr, n),
            "other": _fluidsynth(_midi(bpm, [(1, KEYS_PROGRAM, _chords(n_beats, key))]), work / "other", sr, n),
            "vocals": _vocals(rng, n_beats, beat_s, sr, n, work) if vocals else np.zeros((2, n), np.float32),
        }
    stems = _levels(stems)
    hit_times = {part: np.array([b * beat_s for b, p, _ in hits if p == part]) for part in ("kick", "snare", "hats")}
    return Song(_sum(stems), stems, bpm, sr, np.arange(n_beats) * beat_s, hit_times)


def _drum_pattern(rng: np.random.Generator, n_beats: int) -> list[tuple[float, str, int]]:
    """(beat, part, velocity): kick on 1 and 3 (sometimes on the and of 3), snare on 2 and 4, hats
    on every eighth."""
    hits = []
    for beat in range(n_beats):
        if beat % 2 == 0:
            hits.append((beat, "kick", 110))
        else:
            hits.append((beat, "snare", 100))
        if beat % 4 == 2 and rng.random() < 0.5:
            hits.append((beat + 0.5, "kick", 90))
        for half in (0.0, 0.5):
            hits.append((beat + half, "hats", int(rng.integers(60, 90))))
    return sorted(hits)


def _hit_notes(hits: list[tuple[float, str, int]]) -> list[tuple[float, float, int, int]]:
    pitch = {"kick": KICK, "snare": SNARE, "hats": HAT}
    return [(beat, 0.25, pitch[part], velocity) for beat, part, velocity in hits]


def _bass_line(rng: np.random.Generator, n_beats: int, key: int) -> list[tuple[float, float, int, int]]:
    notes = []
    for beat in range(n_beats):
        root = 36 + key + PROGRESSION[(beat // 4) % len(PROGRESSION)][0]
        for half in (0.0, 0.5):
            pitch = root + (12 if rng.random() < 0.2 else 0)
            notes.append((beat + half, 0.45, pitch, 100))
    return notes


def _chords(n_beats: int, key: int) -> list[tuple[float, float, int, int]]:
    notes = []
    for beat in range(0, n_beats, 2):
        chord = PROGRESSION[(beat // 4) % len(PROGRESSION)]
        notes += [(beat, 1.9, 60 + key + interval, 70) for interval in chord]
    return notes


def _midi(bpm: float, tracks: list[tuple[int, int | None, list[tuple[float, float, int, int]]]]) -> mido.MidiFile:
    """One MIDI file; each track is (channel, program or None, notes as (beat, beats, pitch, velocity))."""
    midi = mido.MidiFile(ticks_per_beat=TICKS)
    for channel, program, notes in tracks:
        events = []
        for beat, length, pitch, velocity in notes:
            events.append((round(beat * TICKS), 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
            events.append((round((beat + length) * TICKS), 0, mido.Message("note_off", channel=channel, note=pitch)))
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
        if program is not None:
            track.append(mido.Message("program_change", channel=channel, program=program))
        now = 0
        for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    return midi


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise FixtureError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")


def _fluidsynth(midi: mido.MidiFile, stem: Path, sr: int, n: int) -> np.ndarray:
    midi.save(stem.with_suffix(".mid"))
    wav = stem.with_suffix(".wav")
    _run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sr), "-O", "float", "-T", "wav",
          "-F", str(wav), str(SOUNDFONT), str(stem.with_suffix(".mid"))])
    audio, _ = sf.read(wav, dtype="float32", always_2d=True)
    return _fit(audio.T, n)


def _vocals(rng: np.random.Generator, n_beats: int, beat_s: float, sr: int, n: int, work: Path) -> np.ndarray:
    """Short phrases on the first beat of most bars, each at its own pitch."""
    out = np.zeros((2, n), np.float32)
    for bar in range(0, n_beats, 4):
        if rng.random() < 0.2:
            continue
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 5))))
        wav = work / f"vocal{bar}.wav"
        _run(["espeak-ng", "-w", str(wav), "-p", str(int(rng.integers(30, 80))), "-s", "150", words])
        voice, rate = sf.read(wav, dtype="float32")
        voice = soxr.resample(voice, rate, sr).astype(np.float32)
        start = int(round((bar + 0.5 * int(rng.integers(0, 2))) * beat_s * sr))
        end = min(n, start + voice.size)
        if end > start:
            out[:, start:end] += voice[:end - start]
    return out


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((2, n), np.float32)
    m = min(n, audio.shape[1])
    out[:, :m] = audio[:2, :m] if audio.shape[0] >= 2 else audio[0, :m]
    return out


def _levels(stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each stem to its target RMS, then everything down together if the mix would clip."""
    for name, audio in stems.items():
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        if rms > 0:
            stems[name] = (audio * (LEVELS[name] / rms)).astype(np.float32)
    peak = float(np.abs(_sum(stems)).max())
    if peak > PEAK:
        stems = {name: (audio * (PEAK / peak)).astype(np.float32) for name, audio in stems.items()}
    return stems
