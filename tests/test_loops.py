import numpy as np
import pytest

from stemd.control.commands import Command
from stemd.daemon.mixer import Mixer
from stemd.engines.drum_parts import PARTS

STEMS = ("vocals", "drums", "bass", "other")
XFADE_MS = 10.0


def play(mixer, stems, block=256, commands_at=None):
    """Run the mixer block by block; commands_at {block: [Command]}. Returns the heard stems [S, 2, N]."""
    commands_at = commands_at or {}
    n = stems.shape[2]
    out = np.zeros((2, block), np.float32)
    heard = np.zeros_like(stems)
    for b, start in enumerate(range(0, n, block)):
        for c in commands_at.get(b, []):
            mixer.commands.put(c)
        end = min(start + block, n)
        mixer.process(stems[:, :, start:end], out[:, :end - start], heard[:, :, start:end])
    return heard


def noise(sr, seconds, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (len(STEMS), 2, int(sr * seconds))).astype(np.float32)


@pytest.mark.parametrize("sr,bpm,beats,block", [
    (44100, 128.0, 4, 256), (48000, 120.0, 4, 256), (48000, 174.0, 2, 333), (96000, 93.7, 1, 512),
    (44100, 87.3, 0.5, 128),
])
def test_loop_is_exact_in_samples_and_starts_on_the_beat(sr, bpm, beats, block):
    mixer = Mixer(STEMS, sr, max_block=512, bpm=bpm, loop_crossfade_ms=XFADE_MS)
    x = mixer.loops.xfade
    stems = noise(sr, 7.0)
    command_block = int(2.3 * sr) // block  # mid-beat, after more than one loop of history
    heard = play(mixer, stems, block, {command_block: [Command("loop", stem="bass", beats=beats)]})
    length = round(beats * 60.0 * sr / bpm)
    spb = 60.0 * sr / bpm
    command_frame = command_block * block
    start = int(np.ceil(np.ceil(command_frame / spb - 1e-9) * spb - 1e-6))

    changed = np.flatnonzero(np.any(heard[2] != stems[2], axis=0))
    assert changed[0] == start  # sample-accurate: the first looped sample is the beat's first sample
    assert np.array_equal(heard[:2], stems[:2]) and np.array_equal(heard[3], stems[3])  # others untouched
    # Steady loop: period exactly `length`, content = the `length` frames before the start.
    steady = heard[2, :, start + x:]
    assert np.array_equal(steady[:, length:], steady[:, :-length])
    assert length not in (0,) and not np.array_equal(steady[:, length + 1:], steady[:, :-length - 1])
    body = slice(x, length - x)  # away from the seam crossfade
    assert np.array_equal(heard[2, :, start + body.start:start + body.stop],
                          stems[2, :, start - length + body.start:start - length + body.stop])


def test_unloop_waits_for_the_beat_and_returns_to_the_live_stem():
    sr, bpm = 48000, 120.0
    mixer = Mixer(STEMS, sr, bpm=bpm)
    stems = noise(sr, 6.0, seed=1)
    spb = sr // 2
    heard = play(mixer, stems, 256, {100: [Command("loop", stem="drums", beats=2)],
                                      400: [Command("unloop", stem="drums")]})
    stop = int(np.ceil(400 * 256 / spb)) * spb
    x = mixer.loops.xfade
    live = np.flatnonzero(np.all(heard[1] == stems[1], axis=0))
    assert not np.any(live[(live > 100 * 256 + spb) & (live < stop)])  # looping until the beat
    assert np.array_equal(heard[1, :, stop + x:], stems[1, :, stop + x:])  # then live again
    assert not np.array_equal(heard[1, :, stop:stop + x], stems[1, :, stop:stop + x])  # crossfaded back
    assert mixer.snapshot()["stems"]["drums"]["loop"] == 0.0


def test_several_stems_loop_at_once_with_their_own_lengths():
    sr, bpm = 48000, 100.0
    mixer = Mixer(STEMS, sr, bpm=bpm)
    stems = noise(sr, 8.0, seed=2)
    heard = play(mixer, stems, 256, {200: [Command("loop", stem="bass", beats=4),
                                           Command("loop", stem="vocals", beats=1)]})
    snap = mixer.snapshot()
    assert snap["stems"]["bass"]["loop"] == 4.0 and snap["stems"]["vocals"]["loop"] == 1.0
    assert snap["loops"]["bass"] == {"beats": 4.0, "part": None, "state": "playing"}
    tail = slice(6 * sr, None)
    for s, beats in ((2, 4), (0, 1)):
        length = round(beats * 60 * sr / bpm)
        seg = heard[s, :, tail]
        assert np.array_equal(seg[:, length:], seg[:, :-length])
    assert np.array_equal(heard[1], stems[1]) and np.array_equal(heard[3], stems[3])


def tone(sr, seconds, hz=437.3):
    t = np.arange(int(sr * seconds)) / sr
    stems = np.zeros((len(STEMS), 2, t.size), np.float32)
    stems[0] = 0.8 * np.sin(2 * np.pi * hz * t)
    return stems


def worst_step(signal):
    return float(np.abs(np.diff(signal)).max())


def test_seams_entries_and_exits_do_not_click():
    """A sine whose period does not divide the loop: every seam is a phase jump. Threshold: the sine's
    own largest sample step plus what a raised-cosine crossfade of X samples can add between two
    full-scale signals, pi/(2X) * 2 * amplitude. The same loop with a 2-sample crossfade breaks it."""
    sr, bpm = 48000, 123.0
    stems = tone(sr, 9.0)
    commands = {50: [Command("loop", stem="vocals", beats=3)],
                700: [Command("loop", stem="vocals", beats=1.5)],  # re-loop while looping
                1300: [Command("unloop", stem="vocals")],
                1400: [Command("loop", stem="vocals", beats=0.75)],
                1550: [Command("reset")]}
    mixer = Mixer(STEMS, sr, bpm=bpm, loop_crossfade_ms=XFADE_MS)
    heard = play(mixer, stems, 256, commands)
    x = mixer.loops.xfade
    threshold = worst_step(stems[0, 0]) + np.pi / (2 * x) * 2 * 0.8 * 1.01
    assert not np.array_equal(heard[0], stems[0])
    assert worst_step(heard[0, 0]) <= threshold
    assert worst_step(heard[0, 1]) <= threshold
    hard = play(Mixer(STEMS, sr, bpm=bpm, loop_crossfade_ms=0.01), stems, 256, commands)
    assert worst_step(hard[0, 0]) > 3 * threshold


def test_switching_between_a_whole_loop_and_a_part_loop_does_not_click():
    """A tone on the drums stem (no hits, so its snare part is silent): looping the whole drums, then
    only the snare, crossfades from the old loop to live drums in the same X samples, click-free."""
    sr, bpm = 48000, 123.0
    stems = np.roll(tone(sr, 5.0), 1, axis=0)  # the tone on the drums stem
    commands = {50: [Command("loop", stem="drums", beats=3)],
                500: [Command("loop", stem="drums", part="snare", beats=2)],
                700: [Command("loop", stem="drums", beats=1)]}
    mixer = Mixer(STEMS, sr, bpm=bpm, loop_crossfade_ms=XFADE_MS)
    heard = play(mixer, stems, 256, commands)
    threshold = worst_step(stems[1, 0]) + np.pi / (2 * mixer.loops.xfade) * 2 * 0.8 * 1.01
    assert worst_step(heard[1, 0]) <= threshold
    assert not np.array_equal(heard[1, :, 60 * 256:500 * 256], stems[1, :, 60 * 256:500 * 256])


def test_loop_the_snare_replaces_only_the_snare_part():
    """`loop drums snare`: the heard drums are the live drums with the live snare part swapped for the
    looped snare part; kick and hats parts and the residual stay live."""
    import test_drum_parts as drums

    sr, bpm, block = 48000, 120.0, 256
    kit = drums.drum_pattern(bpm, 6.0, sr)
    stems = np.zeros((len(STEMS), 2, kit.shape[1]), np.float32)
    stems[1] = kit
    mixer = Mixer(STEMS, sr, max_block=block, bpm=bpm)
    heard = play(mixer, stems, block, {300: [Command("loop", stem="drums", part="snare", beats=2)]})
    live_parts = drums.split(kit, sr, block)
    snare = PARTS.index("snare")
    start = int(np.ceil(300 * block / (sr / 2))) * (sr // 2)
    length, x = sr, mixer.loops.xfade
    swapped = heard[1] - kit + live_parts[snare]  # what plays in place of the live snare part
    assert np.allclose(swapped[:, start + x:start + x + length], swapped[:, start + x + length:start + x + 2 * length],
                       atol=1e-5)
    body = slice(start + x, start + length - x)
    assert np.allclose(swapped[:, body], live_parts[snare][:, body.start - length:body.stop - length], atol=1e-5)
    assert np.array_equal(heard[1, :, :start], kit[:, :start])
    assert np.abs(live_parts[snare]).max() > 0.1  # there is a snare part to replace


def test_loop_longer_than_the_buffer_is_cut_to_it_and_tiny_loops_to_two_crossfades():
    sr = 48000
    mixer = Mixer(STEMS, sr, bpm=60.0, loop_max_s=2.0)
    play(mixer, noise(sr, 3.0), 256, {10: [Command("loop", stem="other", beats=8),
                                           Command("loop", stem="bass", beats=0.01)]})
    assert mixer.loops.length[3] == 2 * sr
    assert mixer.loops.length[2] == 2 * mixer.loops.xfade


def test_a_loop_dropped_before_its_beat_never_plays():
    sr = 48000
    mixer = Mixer(STEMS, sr, bpm=60.0)
    stems = noise(sr, 2.0, seed=3)
    heard = play(mixer, stems, 256, {2: [Command("loop", stem="vocals")], 3: [Command("unloop", stem="vocals")]})
    assert np.array_equal(heard, stems)
    assert mixer.snapshot()["loops"] == {}



def test_loop_in_a_real_jack_process_callback_starts_on_the_beat(jackd):
    """The mixer in a real jackd cycle (48 kHz, 256 frames), the command put on its queue from another
    thread as the Session does: the loop starts on a beat sample, within a beat plus one period of
    the command, and repeats with its exact length."""
    import threading
    import time

    client = jackd.client("stemd-loops")
    sr, block = client.samplerate, client.blocksize
    bpm, seconds = 150.0, 3.0
    spb = 60.0 * sr / bpm
    mixer = Mixer(STEMS, sr, max_block=block, bpm=bpm)
    total = int(seconds * sr) // block * block
    stems = noise(sr, seconds, seed=4)[:, :, :total]
    heard = np.zeros((len(STEMS), 2, total + block), np.float32)
    out = np.zeros((2, block), np.float32)
    done = threading.Event()

    @client.set_process_callback
    def process(frames):
        lo = mixer.frame
        if lo + frames > total:
            done.set()
            return
        mixer.process(stems[:, :, lo:lo + frames], out[:, :frames], heard[:, :, lo:lo + frames])

    client.activate()
    try:
        time.sleep(1.3)
        asked = mixer.frame  # the command is drained at the start of a later cycle
        mixer.commands.put(Command("loop", stem="other", beats=1))
        assert done.wait(10)
    finally:
        client.deactivate()
        client.close()
    start = int(np.flatnonzero(np.any(heard[3, :, :total] != stems[3], axis=0))[0])
    beat = start / spb
    assert abs(beat - round(beat)) * spb < 1.0  # on the beat's first sample
    assert asked <= start <= asked + spb + 2 * block
    length = round(spb)
    steady = heard[3, :, start + mixer.loops.xfade:total]
    assert np.array_equal(steady[:, length:], steady[:, :-length])


def test_loop_the_snare_in_plain_words_through_the_session():
    """The performer's sentence, the real intent parser, the Session's RT queue, the mixer: the snare
    part of the drums loops from the next beat for the default 4 beats."""
    import test_drum_parts as drums
    from stemd.control.intent import parse
    from stemd.daemon.session import Session

    sr, bpm, block = 48000, 120.0, 256
    mixer = Mixer(STEMS, sr, max_block=block, bpm=bpm)
    session = Session(mixer, parser=lambda text: parse(text, mixer.stems), realtime=True)
    stems = np.zeros((len(STEMS), 2, 8 * sr), np.float32)
    stems[1] = drums.drum_pattern(bpm, 8.0, sr)
    heard = play(mixer, stems[:, :, :3 * sr], block)
    applied = session.intent("loop the snare", source="test")
    assert [c.to_dict() for c in applied.commands] == [{"action": "loop", "stem": "drums", "part": "snare"}]
    heard = play(mixer, stems[:, :, 3 * sr:], block)
    assert mixer.snapshot()["loops"]["drums"] == {"beats": 4.0, "part": "snare", "state": "playing"}
    assert mixer.loops.length[1] == 4 * sr // 2
    changed = np.flatnonzero(np.any(heard[1] != stems[1, :, 3 * sr:], axis=0))
    # asked exactly on a beat (3 s at 120 BPM): it starts on that sample, where the crossfade's first
    # weight (~1e-5) may still round to the live value
    assert changed[0] <= 2
