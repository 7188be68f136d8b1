"""Per-stem mixer that runs inside the JACK process callback.

Every gain change is a linear ramp (default 20 ms) so no command can click; fades are the same ramp
stretched over beats and start on the beat grid of the BeatClock (`daemon/transport.py`), which holds
the tempo; loops run in the LoopEngine (`daemon/loops.py`) before the gain, so a loop is the stem as
heard before gain. All buffers are allocated in `__init__`; `process` only writes into them with
numpy `out=` arguments. With nothing applied every gain is exactly 1.0 and the stems are added in
order without multiplication, so the mix is bit-exact to `stems[0] + stems[1] + ...`.

Precedence, decided once for every control source:
- a stem is audible when it is not muted and (no stem is soloed, or it is soloed);
- `solo X` also unmutes X (a performer who asks to hear X expects to hear it);
- `mute`, `unmute`, `solo`, `fade` on `all` apply to every stem; `gain` on `all` is the master gain;
- a gain at or below -60 dB is silence;
- the dry fallback (stems missing: start-up, worker restart, engine late) follows the master gain,
  and is silent when no stem is audible (`mute all`, every stem muted or at -60 dB, `gain all -60`):
  silence is then what the performer asked for. Per-stem settings cannot apply to dry
  audio, so with some stems audible it plays whole at the master gain.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from stemd.control.commands import ALL, Action, Command
from stemd.daemon.command_queue import CommandQueue
from stemd.daemon.loops import LoopEngine
from stemd.daemon.transport import BeatClock

MIN_DB = -60.0
PENDING_SLOTS = 32  # commands that may wait for a boundary at once (the Session refuses beyond)


def db_to_gain(db: float) -> float:
    return 0.0 if db <= MIN_DB else float(10.0 ** (db / 20.0))


class _Ramps:
    """One linear ramp per stem; `render` writes the block's gain curve without allocating."""

    def __init__(self, n_stems: int, max_block: int) -> None:
        self.cur = np.ones(n_stems)
        self.target = np.ones(n_stems)
        self.step = np.zeros(n_stems)
        self.curve = np.empty(max_block, dtype=np.float32)
        self._index = np.arange(1, max_block + 1, dtype=np.float32)

    def ramp_to(self, s: int, target: float, samples: int) -> None:
        self.target[s] = target
        self.step[s] = (target - self.cur[s]) / samples if samples > 0 else 0.0
        if samples <= 0:
            self.cur[s] = target

    def jump(self, s: int, value: float) -> None:
        self.cur[s] = self.target[s] = value
        self.step[s] = 0.0

    def ramping(self, s: int) -> bool:
        return self.cur[s] != self.target[s]

    def fill(self, s: int, lo: int, hi: int) -> None:
        """Fill `curve[lo:hi]` and advance, constant or not (for a block split at a fade's start)."""
        if not self.render(s, hi - lo, lo):
            self.curve[lo:hi] = self.cur[s]

    def render(self, s: int, n: int, lo: int = 0) -> bool:
        """Fill `curve[lo:lo + n]` and advance; False (curve untouched) when the gain is constant."""
        if self.cur[s] == self.target[s]:
            return False
        curve = self.curve[lo:lo + n]
        np.multiply(self._index[:n], self.step[s], out=curve)
        curve += self.cur[s]
        target = self.target[s]
        if self.step[s] > 0:
            np.minimum(curve, target, out=curve)
            reached = curve[n - 1] >= np.float32(target)
        else:
            np.maximum(curve, target, out=curve)
            reached = curve[n - 1] <= np.float32(target)
        self.cur[s] = target if reached else curve[n - 1]
        return True


class Mixer:
    """Mixes S stereo stems into one stereo output under Commands from a lock-free queue."""

    OWNED_ACTIONS = frozenset(
        {Action.MUTE, Action.UNMUTE, Action.SOLO, Action.UNSOLO, Action.GAIN, Action.FADE, Action.RESET,
         Action.TEMPO, Action.LOOP, Action.UNLOOP, Action.CANCEL}
    )

    def __init__(
        self,
        stems: Sequence[str],
        sample_rate: int,
        max_block: int = 4096,
        ramp_ms: float = 20.0,
        bpm: float = 120.0,
        fade_beats: float = 4.0,
        max_gain_db: float = 12.0,
        commands_per_block: int = 64,
        clock: BeatClock | None = None,
        loop_beats: float = 4.0,
        loop_max_s: float = 16.0,
        loop_crossfade_ms: float = 10.0,
        drum_parts: bool = True,
    ) -> None:
        self.stems = tuple(stems)
        self.index = {name: i for i, name in enumerate(self.stems)}
        self.sample_rate = sample_rate
        self.max_block = max_block
        self.ramp_samples = max(1, round(ramp_ms * sample_rate / 1000.0))
        self.clock = clock if clock is not None else BeatClock(sample_rate, bpm)
        self.fade_beats = fade_beats
        self.loop_beats = loop_beats
        self.max_gain_db = max_gain_db
        self.commands = CommandQueue()
        self._commands_per_block = commands_per_block

        n = len(self.stems)
        self.gain_db = np.zeros(n)
        self.master_db = 0.0
        self.muted = np.zeros(n, dtype=bool)
        self.soloed = np.zeros(n, dtype=bool)
        self.peak = np.zeros(n, dtype=np.float32)
        self.version = 0
        self.applied = 0

        self._gain = _Ramps(n, max_block)
        self._dry = _Ramps(1, max_block)  # the dry fallback's level (see the module docstring)
        self.frame = 0  # timeline frame of the current block: JACK frame time, or a block counter
        self._fade_at = np.full(n, -1, np.int64)  # frame a quantized fade starts at, -1 = none pending
        self._fade_target = np.zeros(n)
        self._fade_len = np.zeros(n, np.int64)
        self._at = 0  # frame the command being applied takes effect at (> frame: a timed command)
        self._pending: list[Command | None] = [None] * PENDING_SLOTS  # timed commands, by slot
        self._pending_at = [-1] * PENDING_SLOTS  # the frame each slot waits for, -1 = free
        self._waiting = 0  # slots in use
        self.pending_dropped = 0  # timed commands that found every slot taken (the Session prevents it)
        self.loops = LoopEngine(self.stems, sample_rate, max_block, self.clock, loop_max_s,
                                loop_crossfade_ms, drum_parts)
        self._scaled = np.empty((2, max_block), dtype=np.float32)
        self._abs = np.empty((2, max_block), dtype=np.float32)

    # ---- real-time side -------------------------------------------------------------------------

    @property
    def bpm(self) -> float:
        return self.clock.bpm

    def process(self, stems: np.ndarray, out: np.ndarray, stem_out: np.ndarray | None = None,
                frame_time: int | None = None, played: tuple[float, int, int] | None = None) -> None:
        """Mix `stems[S, 2, n]` into `out[2, n]` (float32); optionally write each heard stem to
        `stem_out[S, 2, n]`. Drains pending commands first, so a command applies at a block edge.
        `frame_time` puts loops and fades on the caller's timeline (the audio path's frame count);
        without it the mixer counts its own frames. `played` (monotonic time, frame, frames) is the
        block being heard now, when this one is rendered ahead of it: the beat clock ties wall-clock
        time to that one (without it, to this block, heard now)."""
        if frame_time is not None:
            self.frame = frame_time
        frame = self.frame
        n = out.shape[1]
        if played is None:
            self.clock.mark(frame, n)
        else:
            self.clock.mark(played[1], played[2], played[0])
        self._drain()
        self._run_due(frame + n)
        self.loops.record(stems, frame, n)
        out.fill(0.0)
        for s in range(len(self.stems)):
            heard = self._scale(s, self.loops.render(s, stems[s], frame), n, frame)
            if stem_out is not None:
                if heard is None:
                    stem_out[s].fill(0.0)
                else:
                    stem_out[s][...] = heard
            if heard is None:
                continue
            out += heard
            absolute = self._abs[:, :n]
            np.abs(heard, out=absolute)
            level = absolute.max()
            if level > self.peak[s]:
                self.peak[s] = level
        self.frame = frame + n

    def _scale(self, s: int, src: np.ndarray, n: int, frame: int) -> np.ndarray | None:
        """The stem as heard this block: `src` itself at unity, None when silent, else scaled."""
        scaled = self._scaled[:, :n]
        start = int(self._fade_at[s] - frame)
        if self._fade_at[s] >= 0 and start < n:  # a quantized fade starts in this block
            self._fade_at[s] = -1
            if start > 0:
                self._gain.fill(s, 0, start)
            self._gain.ramp_to(s, self._fade_target[s], int(self._fade_len[s]))
            self._gain.fill(s, max(start, 0), n)
            np.multiply(src, self._gain.curve[:n], out=scaled)
            return scaled
        if self._gain.render(s, n):
            np.multiply(src, self._gain.curve[:n], out=scaled)
            return scaled
        gain = self._gain.cur[s]
        if gain == 1.0:
            return src
        if gain == 0.0:
            return None
        np.multiply(src, gain, out=scaled)
        return scaled

    @property
    def dry_level(self) -> float:
        """The dry fallback's level now (the compiled callback plays dry at it when nothing is rendered)."""
        return float(self._dry.cur[0])

    def scale_dry(self, dry: np.ndarray) -> None:
        """Scale this block's dry fallback `dry[2, n]` in place to the dry level (after `process`,
        which applied the block's commands); ramps like any gain, so muting all never clicks."""
        n = dry.shape[1]
        if self._dry.render(0, n):
            dry *= self._dry.curve[:n]
        elif self._dry.cur[0] == 0.0:
            dry.fill(0.0)
        elif self._dry.cur[0] != 1.0:
            dry *= self._dry.cur[0]

    def _drain(self) -> None:
        for _ in range(self._commands_per_block):
            command = self.commands.pop()
            if command is None:
                return
            self.apply(command)

    def _hold(self, command: Command) -> None:
        """Keep a timed command in a free slot until the block that holds its boundary."""
        at = self._pending_at
        for slot in range(PENDING_SLOTS):
            if at[slot] < 0:
                self._pending[slot] = command
                at[slot] = self.clock.boundary(self.frame, command.timing)
                self._waiting += 1
                return
        self.pending_dropped += 1

    def _run_due(self, block_end: int) -> None:
        """Apply, in boundary order, the timed commands whose boundary falls in this block: their
        ramps, fades and loops start on that very sample (the block is split there downstream).
        Scalar loops over the slots, so the callback allocates nothing."""
        at = self._pending_at
        while self._waiting:
            slot, soonest = -1, block_end
            for i in range(PENDING_SLOTS):
                if 0 <= at[i] < soonest:
                    slot, soonest = i, int(at[i])
            if slot < 0:
                return
            command = self._pending[slot]
            at[slot], self._pending[slot] = -1, None
            self._waiting -= 1
            self._at = max(soonest, self.frame)
            self._execute(command)
            self._at = self.frame

    # ---- command semantics (called on the RT thread through the queue, or directly in tests) ------

    def apply(self, command: Command) -> bool:
        """Apply one Command, or hold it for its boundary when it is timed (`at`); False if the mixer
        does not own its action (routed elsewhere)."""
        if command.action not in _HANDLERS:
            return False
        if command.at is not None:
            self._hold(command)
            self.version += 1
            return True
        self._at = self.frame
        self._execute(command)
        return True

    def _execute(self, command: Command) -> None:
        _HANDLERS[command.action](self, command)
        self.version += 1
        self.applied += 1

    def _targets(self, stem: str | None) -> range | tuple[int, ...]:
        if stem is None or stem == ALL:
            return range(len(self.stems))
        return (self.index[stem],)

    def _target(self, s: int, any_solo: bool) -> float:
        audible = not self.muted[s] and (self.soloed[s] or not any_solo)
        return db_to_gain(self.gain_db[s] + self.master_db) if audible else 0.0

    def _retarget(self) -> None:
        """Ramp every stem whose target level changed; a stem whose target did not change keeps its
        ramp (or its fade waiting for the beat), so a command about another stem cuts no fade short."""
        any_solo = bool(self.soloed.any())
        self._retarget_dry(any_solo)
        for s in range(len(self.stems)):
            target = self._target(s, any_solo)
            if self._fade_at[s] >= 0:
                if self._fade_target[s] == target:
                    continue
                self._fade_at[s] = -1
            if self._gain.target[s] == target:
                continue
            if self._at > self.frame:  # a timed command: the ramp starts on its boundary's sample
                self._fade_at[s], self._fade_target[s], self._fade_len[s] = self._at, target, self.ramp_samples
            else:
                self._gain.ramp_to(s, target, self.ramp_samples)

    def _retarget_dry(self, any_solo: bool) -> None:
        audible = not self.stems  # no stems: nothing to mute, the dry path is the output
        for s in range(len(self.stems)):
            audible = audible or self._target(s, any_solo) > 0.0
        target = db_to_gain(self.master_db) if audible else 0.0
        if self._dry.target[0] != target:
            self._dry.ramp_to(0, target, self.ramp_samples)

    def _mute(self, command: Command) -> None:
        for s in self._targets(command.stem):
            self.muted[s] = True
        self._retarget()

    def _unmute(self, command: Command) -> None:
        for s in self._targets(command.stem):
            self.muted[s] = False
        self._retarget()

    def _solo(self, command: Command) -> None:
        if command.stem == ALL:
            self.soloed[:] = False
        for s in self._targets(command.stem):
            self.muted[s] = False
            if command.stem != ALL:
                self.soloed[s] = True
        self._retarget()

    def _unsolo(self, command: Command) -> None:
        for s in self._targets(command.stem):
            self.soloed[s] = False
        self._retarget()

    def _gain_cmd(self, command: Command) -> None:
        lo, hi = MIN_DB, self.max_gain_db
        if command.stem == ALL:
            db = command.db if command.absolute else self.master_db + command.db
            self.master_db = min(max(db, lo), hi)
        else:
            s = self.index[command.stem]
            db = command.db if command.absolute else self.gain_db[s] + command.db
            self.gain_db[s] = min(max(db, lo), hi)
        self._retarget()

    def _fade_cmd(self, command: Command) -> None:
        """A fade is a mute or unmute whose ramp lasts `beats` and starts on the next beat: fading out
        already counts as muted (state feedback shows the end state at once)."""
        beats = command.beats if command.beats is not None else self.fade_beats
        samples = max(self.ramp_samples, self.clock.beats_to_samples(beats))
        start = self.clock.next_boundary(self._at)
        any_solo = bool(self.soloed.any())
        for s in self._targets(command.stem):
            self.muted[s] = command.direction == "out"
            target = self._target(s, any_solo)
            self._fade_at[s] = -1
            if self._gain.target[s] == target:
                continue
            if start == self.frame:
                self._gain.ramp_to(s, target, samples)
            else:
                self._fade_at[s], self._fade_target[s], self._fade_len[s] = start, target, samples
        self._retarget_dry(any_solo)

    def _reset(self, command: Command) -> None:
        self.gain_db[:] = 0.0
        self.master_db = 0.0
        self.muted[:] = False
        self.soloed[:] = False
        self._retarget()
        self.loops.release_now(self._at)

    def _tempo(self, command: Command) -> None:
        self.clock.set_tempo(command.bpm, "command")

    def _loop(self, command: Command) -> None:
        beats = command.beats if command.beats is not None else self.loop_beats
        for s in self._targets(command.stem):
            self.loops.arm(s, beats, command.part, self._at)

    def _unloop(self, command: Command) -> None:
        for s in self._targets(command.stem):
            self.loops.release(s, self._at)

    def _cancel(self, command: Command) -> None:
        """Drop every command still waiting for its boundary ("cancel", "never mind")."""
        for slot in range(PENDING_SLOTS):
            self._pending_at[slot], self._pending[slot] = -1, None
        self._waiting = 0

    # ---- non-real-time readers --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """State for status and feedback (read from control threads; values may be one block old)."""
        loops = self.loops.snapshot()
        return {
            "stems": {
                name: {
                    "gain_db": float(self.gain_db[i]),
                    "muted": bool(self.muted[i]),
                    "soloed": bool(self.soloed[i]),
                    "ramping": bool(self._gain.ramping(i) or self._fade_at[i] >= 0),
                    "loop": loops[name]["beats"] if name in loops else 0.0,  # beats, 0 = off
                }
                for i, name in enumerate(self.stems)
            },
            "master_db": float(self.master_db),
            "bpm": float(self.bpm),
            "loops": loops,
            "transport": self.clock.snapshot(),
            "pending": self.pending(),
            "version": int(self.version),
        }

    def pending(self) -> list[dict[str, Any]]:
        """Timed commands still waiting, soonest first: the command, its boundary, the frame it lands
        on and how many beats away that is (status `pending`, OSC `/stemd/pending`)."""
        slots = [(int(self._pending_at[i]), self._pending[i]) for i in range(PENDING_SLOTS)]
        spb = self.clock.samples_per_beat
        return [{"command": c.to_dict(), "at": c.at, "frame": at, "beats_left": round(max(0, at - self.frame) / spb, 3)}
                for at, c in sorted(((a, c) for a, c in slots if a >= 0 and c is not None), key=lambda x: x[0])]

    def take_peaks(self) -> dict[str, float]:
        """Peak level per stem since the last call (meters); resets the hold."""
        levels = {name: float(self.peak[i]) for i, name in enumerate(self.stems)}
        self.peak[:] = 0.0
        return levels


_HANDLERS = {
    Action.MUTE: Mixer._mute,
    Action.UNMUTE: Mixer._unmute,
    Action.SOLO: Mixer._solo,
    Action.UNSOLO: Mixer._unsolo,
    Action.GAIN: Mixer._gain_cmd,
    Action.FADE: Mixer._fade_cmd,
    Action.RESET: Mixer._reset,
    Action.TEMPO: Mixer._tempo,
    Action.LOOP: Mixer._loop,
    Action.UNLOOP: Mixer._unloop,
    Action.CANCEL: Mixer._cancel,
}
