import tracemalloc

import numpy as np
import pytest

from stemd.control.commands import ALL, Action, Command
from stemd.daemon.mixer import Mixer

SR = 48000
STEMS = ("vocals", "drums", "bass", "other")
RAMP_MS = 20.0
RAMP = round(RAMP_MS * SR / 1000)


def run(mixer, stems, block=256, commands_at=None):
    """Process `stems[S, 2, N]` block by block; commands_at: {block_index: [Command]} queued before."""
    commands_at = commands_at or {}
    n = stems.shape[2]
    out = np.zeros((2, n), np.float32)
    for b, start in enumerate(range(0, n, block)):
        for c in commands_at.get(b, []):
            mixer.commands.put(c)
        end = min(start + block, n)
        mixer.process(stems[:, :, start:end], out[:, start:end])
    return out


def noise(n=SR, seed=0):
    return np.random.default_rng(seed).uniform(-0.25, 0.25, (len(STEMS), 2, n)).astype(np.float32)


def test_unity_is_bit_exact_to_the_sum():
    stems = noise()
    out = run(Mixer(STEMS, SR), stems, block=333)
    assert np.array_equal(out, stems[0] + stems[1] + stems[2] + stems[3])


def test_mute_ramp_has_no_discontinuity():
    t = np.arange(SR) / SR
    sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    stems = np.zeros((4, 2, SR), np.float32)
    stems[0] = sine
    natural = np.abs(np.diff(sine)).max()
    # Threshold: the sine's own largest step plus what a linear 20 ms ramp can add per sample.
    threshold = natural + 1.0 / RAMP + 1e-6
    out = run(Mixer(STEMS, SR, ramp_ms=RAMP_MS), stems, commands_at={40: [Command("mute", stem="vocals")]})
    assert np.abs(np.diff(out[0])).max() <= threshold
    assert np.all(out[:, 40 * 256 + RAMP + 1:] == 0.0)
    assert np.abs(out[0, 40 * 256: 40 * 256 + RAMP // 2]).max() > 0.4  # it ramps, not cuts
    # The same measure catches a hard cut, so the threshold means something.
    hard = run(Mixer(STEMS, SR, ramp_ms=0.01), stems, commands_at={40: [Command("mute", stem="vocals")]})
    assert np.abs(np.diff(hard[0])).max() > threshold


def test_solo_and_mute_precedence():
    dc = np.ones((4, 2, 2048), np.float32) * np.array([1, 2, 4, 8], np.float32)[:, None, None]
    m = Mixer(STEMS, SR, ramp_ms=1.0)

    def level(*cmds):
        for c in cmds:
            m.apply(c)
        out = np.zeros((2, 2048), np.float32)
        m.process(dc, out)
        m.process(dc, out)
        return float(out[0, -1])

    assert level(Command("solo", stem="bass")) == 4
    assert level(Command("solo", stem="drums")) == 6        # solos add up
    assert level(Command("mute", stem="drums")) == 4        # mute wins over an existing solo
    assert level(Command("solo", stem="drums")) == 6        # solo unmutes the stem it names
    assert level(Command("unsolo", stem="bass")) == 2
    assert level(Command("unsolo")) == 15
    assert level(Command("mute", stem="all")) == 0
    assert level(Command("unmute", stem="other")) == 8
    assert level(Command("solo", stem="all")) == 15          # solo all = everything audible
    assert level(Command("gain", stem="all", db=-60, absolute=True)) == 0
    assert level(Command("reset")) == 15


def test_gain_is_relative_and_clamped():
    m = Mixer(STEMS, SR, max_gain_db=12.0)
    m.apply(Command("gain", stem="vocals", db=6))
    m.apply(Command("gain", stem="vocals", db=-3))
    assert m.gain_db[0] == 3.0
    for _ in range(10):
        m.apply(Command("gain", stem="vocals", db=6))
    assert m.gain_db[0] == 12.0
    m.apply(Command("gain", stem="vocals", db=-9, absolute=True))
    assert m.gain_db[0] == -9.0


def test_fade_out_over_beats_ends_muted_and_fade_in_returns():
    m = Mixer(STEMS, SR, bpm=120.0)
    stems = np.ones((4, 2, SR * 3), np.float32)
    out = run(m, stems, commands_at={0: [Command("fade", stem="vocals", direction="out", beats=2)]})
    one_beat = SR // 2
    assert out[0, one_beat] == pytest.approx(3.5, abs=0.01)   # halfway through the 2-beat fade
    assert out[0, -1] == 3.0
    assert m.muted[0]
    out = run(m, stems, commands_at={0: [Command("fade", stem="vocals", direction="in", beats=1)]})
    assert out[0, one_beat // 2] == pytest.approx(3.5, abs=0.01)
    assert out[0, -1] == 4.0 and not m.muted[0]


def test_random_commands_never_break_the_signal():
    rng = np.random.default_rng(7)
    m = Mixer(STEMS, SR, ramp_ms=RAMP_MS, max_gain_db=12.0)
    block, blocks = 64, 2500
    amp = 0.25
    stems = np.full((4, 2, block), amp, np.float32)  # DC: any gain step shows up undiluted
    stems[1::2] *= -1
    out = np.zeros((2, block), np.float32)
    previous = 0.0
    worst = 0.0
    max_gain = 10 ** (24 / 20)  # stem gain and master gain can both reach +12 dB
    bound = 4 * amp * max_gain / RAMP * 1.001
    for i in range(10_000):
        action = rng.choice(["mute", "unmute", "solo", "unsolo", "gain", "fade", "reset", "tempo"])
        stem = str(rng.choice(STEMS + ("all",)))
        if action == "gain":
            c = Command("gain", stem=stem, db=float(rng.uniform(-60, 60)), absolute=bool(rng.random() < 0.3))
        elif action == "fade":
            c = Command("fade", stem=stem, direction=str(rng.choice(["in", "out"])),
                        beats=float(rng.uniform(0.01, 8)))
        elif action == "tempo":
            c = Command("tempo", bpm=float(rng.uniform(20, 400)))
        elif action in ("reset",):
            c = Command("reset")
        elif action == "unsolo" and rng.random() < 0.5:
            c = Command("unsolo")
        else:
            c = Command(action, stem=stem)
        m.commands.put(c)
        if i % 4 == 0:
            m.process(stems, out)
            assert np.isfinite(out).all()
            jumps = np.abs(np.diff(out[0], prepend=previous))
            worst = max(worst, float(jumps.max()))
            previous = float(out[0, -1])
    m.process(stems, out)
    assert m.applied == 10_000
    assert worst <= bound, f"sample jump {worst} above ramp bound {bound}"


def test_process_allocates_no_numpy_buffers():
    """Gains, beat-quantized fades, loops (capture, seam, re-loop, release), a drum-part loop and
    tempo changes: none may allocate a numpy buffer on the RT side."""
    m = Mixer(STEMS, SR, max_block=512, bpm=240.0, loop_max_s=2.0)
    stems = noise(512)
    out = np.zeros((2, 512), np.float32)
    stem_out = np.zeros((4, 2, 512), np.float32)
    m.process(stems, out, stem_out)
    cmds = [Command("mute", stem="vocals"), Command("gain", stem="bass", db=-3),
            Command("fade", stem="drums", direction="out", beats=1), Command("solo", stem="other"),
            Command("loop", stem="bass", beats=2), Command("loop", stem="drums", part="snare", beats=1),
            Command("loop", stem="bass", beats=0.5), Command("tempo", bpm=133.0),
            Command("unloop", stem="drums"), Command("fade", stem="other", direction="in", beats=0.5),
            Command("loop", stem="all", beats=1), Command("reset")]
    tracemalloc.start()
    try:
        for i in range(600):
            if i % 50 == 0:
                m.commands.put(cmds[i // 50])
            m.process(stems, out, stem_out)
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)])
    finally:
        tracemalloc.stop()
    assert sum(stat.size for stat in snapshot.statistics("lineno")) == 0


def test_fade_starts_on_the_next_beat():
    """At 120 BPM a beat is 24000 samples; a fade asked for mid-beat waits for the beat, sample-exact,
    and the stem reads as muted at once."""
    m = Mixer(STEMS, SR, bpm=120.0)
    stems = np.ones((4, 2, SR * 2), np.float32)
    out = run(m, stems, block=256, commands_at={10: [Command("fade", stem="vocals", direction="out", beats=1)]})
    assert m.snapshot()["stems"]["vocals"]["muted"]
    beat = SR // 2
    assert np.all(out[0, :beat] == 4.0) and out[0, beat] < 4.0  # untouched until the beat's sample
    assert out[0, beat + beat // 2] == pytest.approx(3.5, abs=1e-3)
    assert np.all(out[0, 2 * beat + 1:] == 3.0)


def test_a_command_before_the_beat_does_not_cancel_a_waiting_fade():
    m = Mixer(STEMS, SR, bpm=120.0)
    stems = np.ones((4, 2, SR), np.float32)
    out = run(m, stems, block=256, commands_at={10: [Command("fade", stem="vocals", direction="out", beats=1)],
                                                  20: [Command("gain", stem="bass", db=-6)],
                                                  30: [Command("fade", stem="drums", direction="in")]})
    beat = SR // 2
    assert out[0, beat + beat // 2] == pytest.approx(3.5 - (1 - 10 ** (-6 / 20)), abs=1e-3)
    m2 = Mixer(STEMS, SR, bpm=120.0)
    out = run(m2, stems, block=256, commands_at={10: [Command("fade", stem="vocals", direction="out", beats=1)],
                                                   20: [Command("unmute", stem="vocals")]})
    assert np.all(out[0] == 4.0)  # unmuting before the beat takes the fade back


def test_stem_outputs_are_the_heard_stems():
    stems = noise(1024)
    m = Mixer(STEMS, SR, ramp_ms=0.5)
    m.apply(Command("mute", stem="drums"))
    out = np.zeros((2, 1024), np.float32)
    stem_out = np.zeros((4, 2, 1024), np.float32)
    m.process(stems, out, stem_out)
    m.process(stems, out, stem_out)
    assert np.all(stem_out[1] == 0) and np.array_equal(stem_out[0], stems[0])
    assert np.allclose(out, stem_out.sum(axis=0), atol=1e-6)
    assert m.take_peaks()["vocals"] > 0.2 and m.take_peaks()["vocals"] == 0.0


def dry_block(mixer, n=480):
    """One block through the mixer (stems missing: zeros) and its dry fallback of ones."""
    mixer.process(np.zeros((len(mixer.stems), 2, n), np.float32), np.zeros((2, n), np.float32))
    dry = np.ones((2, n), np.float32)
    mixer.scale_dry(dry)
    return dry


@pytest.mark.parametrize("commands", [
    [Command(Action.MUTE, stem=ALL)],
    [Command(Action.GAIN, stem=ALL, db=-60.0, absolute=True)],
    [Command(Action.MUTE, stem="vocals"), Command(Action.MUTE, stem="drums"),
     Command(Action.MUTE, stem="bass"), Command(Action.GAIN, stem="other", db=-60.0, absolute=True)],
    [Command(Action.SOLO, stem="vocals"), Command(Action.MUTE, stem="vocals")],
])
def test_the_dry_fallback_is_silent_when_nothing_is_audible_and_ramps_there(commands):
    mixer = Mixer(["vocals", "drums", "bass", "other"], 48000, ramp_ms=10.0)
    assert (dry_block(mixer) == 1.0).all()
    for command in commands:
        mixer.apply(command)
    ramp = dry_block(mixer)[0]
    assert ramp[0] < 1.0 and ramp[-1] == 0.0 and np.abs(np.diff(ramp)).max() < 0.01  # 10 ms ramp, no click
    assert not dry_block(mixer).any()
    mixer.apply(Command(Action.RESET))
    dry_block(mixer)
    assert (dry_block(mixer) == 1.0).all()


def test_the_dry_fallback_follows_master_gain_but_not_per_stem_settings():
    mixer = Mixer(["vocals", "accompaniment"], 48000, ramp_ms=5.0)
    mixer.apply(Command(Action.GAIN, stem=ALL, db=-6.0, absolute=True))
    mixer.apply(Command(Action.MUTE, stem="vocals"))
    dry_block(mixer)
    np.testing.assert_allclose(dry_block(mixer), 10 ** (-6 / 20), rtol=1e-6)
