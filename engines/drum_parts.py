"""Kick / snare / hats from the drums stem: an approximation by bands and transient gates.

This is NOT a source separation. The model gives one drums stem; this module guesses which part of it
is kick, snare or hats with cheap causal DSP, well enough for "loop the snare" to repeat mostly the
snare hits. Expect bleed: the snare's low body leaks into the kick part, a snare's wires land in the
hats part when a hat hits with it, toms go to the kick or snare part, and when kick and snare hit
together the snare gate stays shut unless the mid band dominates.

Method (zero latency, per block, stereo, all buffers allocated here):
1. Complementary bands per channel: low = LP(x) at `low_hz`, mid = LP(x) at `high_hz` - low, high =
   x - LP(x) at `high_hz` (each LP two cascaded one-poles). Built by subtraction, the bands sum back
   to x exactly and without delay, whatever the filters' phase.
2. A transient gate per part from a mono detector narrower than its band (kick: 2nd-order low-pass at
   100 Hz; snare: 2nd-order band-pass 400 Hz - 4 kHz; hats: 2nd-order high-pass at 7 kHz): a hit makes
   the detector's fast envelope (5 ms) outrun its slow one (400 ms); the ratio above a level floor
   opens the gate, and an exponential peak hold keeps it open through the hit's decay (release 150,
   100, 60 ms). The gate rises over the fast envelope's few milliseconds, so gating does not click.
3. kick = (low + mid) * g_kick and snare = (mid + high) * g_snare, split by d, the snare detector's
   share of the kick + snare detectors' envelopes (a kick's beater click does not open the snare, a
   snare's body does not open the kick); hats = high * g_hats * (1 - g_snare). Everything else
   (cymbal washes, sustained bleed, tails after the gates close) is the residual
   x - kick - snare - hats.

Measured on the synthetic kit of tests/test_drum_parts.py (44.1/48 kHz, 90..140 BPM), as the share
of each instrument's own track that lands in each part: kick 0.86-0.90 in the kick part, snare
0.72-0.96 in the snare part, hats 0.58-0.74 in the hats part; the worst wrong share is 0.15 (hats in
the snare part at 140 BPM, where a hat falls inside the snare gate's release). On the FluidSynth
drums of engines/fixtures.py, energy in the 60 ms after hits of one instrument alone: the kick part
takes 0.81-0.83 at kicks, the snare part all of the snare hits, the hats part only 0.09-0.37 at hats
(a quiet closed hat on the tails of kick and snare), and the snare part up to 0.11 at hats.

Every part is a band of x times a gain in [0, 1], so kick + snare + hats + residual == x. The loop
engine relies on that: looping the snare replaces the live snare part with the looped one and leaves
the rest of the drums live and untouched.

Where it runs: in the RT process callback, on the drums stem as it arrives, because the live part must
be sample-aligned with the live drums for that replacement to cancel (the engine worker's output
reaches the RT side only as whole stems). About 50 vectorised numpy calls per block into preallocated
float64 buffers (`Recursive` shows how a recursive filter runs without a per-sample Python loop);
the cost per block is in docs/decisions/engine.md. `[mixer] drum_parts = false` turns it off.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

PARTS = ("kick", "snare", "hats")


class Recursive:
    """First-order recursions, one coefficient per channel, over a block without a Python loop and
    without allocating.

    `op=np.add`:     one-pole lowpass   y[k] = a*y[k-1] + (1-a)*x[k]
    `op=np.maximum`: decaying peak hold y[k] = max(a*y[k-1], x[k])

    Both unroll to y[k] = a^k * op(a*y[-1], op-accumulate_{j<=k}(g * a^-j * x[j])), i.e. one multiply,
    one ufunc.accumulate and one multiply per chunk, whatever the channel count: the splitter runs its
    filters in a few such multi-channel stages, because numpy's per-call overhead, not arithmetic, is
    the RT cost. Chunks keep a^-m below 1e250 in float64, so the scaling costs no precision that
    matters (each partial sum is compared with terms of its own size).
    """

    def __init__(self, coefs: Sequence[float], op: np.ufunc, max_block: int) -> None:
        a = np.asarray(coefs, dtype=np.float64)[:, None]
        self.op = op
        self.chunk = m = max(1, min(max_block, int(575.0 / max(-math.log(float(a.min())), 1e-12))))
        j = np.arange(m, dtype=np.float64)[None, :]
        gain = (1.0 - a) if op is np.add else 1.0
        self._a = a
        self._inv = gain * a ** -j
        self._pow = a ** j
        self._carry = np.zeros((a.shape[0], 1))
        self._z = np.empty((a.shape[0], m))

    @classmethod
    def lowpass(cls, cutoffs_hz: Sequence[float], sample_rate: int, max_block: int) -> "Recursive":
        return cls([math.exp(-2.0 * math.pi * f / sample_rate) for f in cutoffs_hz], np.add, max_block)

    @classmethod
    def hold(cls, releases_s: Sequence[float], sample_rate: int, max_block: int) -> "Recursive":
        return cls([math.exp(-1.0 / (r * sample_rate)) for r in releases_s], np.maximum, max_block)

    def process(self, x: np.ndarray, y: np.ndarray) -> None:
        """Run x[C, n] into y[C, n] (float64; y may be x)."""
        n = x.shape[-1]
        carry = self._carry
        for lo in range(0, n, self.chunk):
            hi = min(lo + self.chunk, n)
            z = self._z[:, :hi - lo]
            np.multiply(x[:, lo:hi], self._inv[:, :hi - lo], out=z)
            self.op.accumulate(z, axis=1, out=z)
            carry *= self._a
            self.op(z, carry, out=z)
            np.multiply(z, self._pow[:, :hi - lo], out=y[:, lo:hi])
            carry[:, 0] = y[:, hi - 1]


class DrumSplitter:
    """Streaming split of a stereo drums signal into kick, snare and hats parts (see module doc)."""

    def __init__(self, sample_rate: int, max_block: int, low_hz: float = 120.0, high_hz: float = 5000.0,
                 floor_db: float = -70.0) -> None:
        sr, b = sample_rate, max_block
        # Rows: signal band edges for L and R, then the mono detectors: kick = LP2 100 Hz, snare =
        # LP2 4 kHz of HP2 400 Hz, hats = HP2 7 kHz. Two one-pole stages give the 2nd order; a true
        # second-order high-pass is (1 - LP)^2 = x - 2 LP(x) + LP(LP(x)), from both stages' outputs.
        cutoffs = (low_hz, low_hz, high_hz, high_hz, 100.0, 400.0, 7000.0)
        self._poles = (Recursive.lowpass(cutoffs, sr, b), Recursive.lowpass(cutoffs, sr, b))
        self._snare_lp = (Recursive.lowpass((4000.0,), sr, b), Recursive.lowpass((4000.0,), sr, b))
        tau_fast, tau_slow = 0.005, 0.4
        self._env = Recursive.lowpass([1.0 / (2 * math.pi * tau_fast)] * 3 + [1.0 / (2 * math.pi * tau_slow)] * 3,
                                      sr, b)
        self._hold = Recursive.hold((0.15, 0.1, 0.06), sr, b)  # release: kick, snare, hats
        self.floor = 10.0 ** (floor_db / 20.0)
        self._rows = np.empty((7, b))
        self._mono = np.empty(b)
        self._first = np.empty((2, b))
        self._env_in = np.empty((6, b))
        self._env_out = np.empty((6, b))
        self._bands = np.empty((3, 2, b))  # low, mid, high
        self._sum = np.empty((2, b))
        self._gate = np.empty((3, b))
        self._dom = np.empty(b)

    def process(self, x: np.ndarray, parts: np.ndarray) -> None:
        """Split x[2, n] into parts[3, 2, n] (kick, snare, hats). Call once per block, in order."""
        n = x.shape[-1]
        rows = self._rows[:, :n]
        mono, first = self._mono[:n], self._first[:, :n]
        rows[0:2] = x
        rows[2:4] = x
        np.add(x[0], x[1], out=mono)
        rows[4:7] = mono
        self._poles[0].process(rows, rows)
        np.copyto(first, rows[5:7])
        self._poles[1].process(rows, rows)
        first *= -2.0
        first += rows[5:7]
        first += mono  # second-order high-passes at 400 Hz and 7 kHz
        for lp in self._snare_lp:
            lp.process(first[0:1], first[0:1])
        # complementary bands: low = LP(x), mid = LP_high(x) - low, high = x - LP_high(x)
        low, mid, high = self._bands[0, :, :n], self._bands[1, :, :n], self._bands[2, :, :n]
        np.copyto(low, rows[0:2])
        np.subtract(rows[2:4], low, out=mid)
        np.subtract(x, rows[2:4], out=high)

        # |detectors| twice (fast and slow envelope rows): kick, snare band, hats band
        det = self._env_in[:, :n]
        np.abs(rows[4], out=det[0])
        np.abs(first[0], out=det[1])
        np.abs(first[1], out=det[2])
        det[3:6] = det[0:3]
        env = self._env_out[:, :n]
        self._env.process(det, env)

        fast, gate = env[0:3], self._gate[:, :n]
        np.add(env[3:6], self.floor, out=gate)
        np.divide(fast, gate, out=gate)  # fast / slow envelope: well above 1 on a hit
        gate -= 1.5
        gate *= 1.0 / 1.5
        np.maximum(gate, 0.0, out=gate)
        np.minimum(gate, 1.0, out=gate)
        self._hold.process(gate, gate)

        dom = self._dom[:n]  # share of the snare band in kick+snare band energy: 0.4 -> 0, 0.6 -> 1
        np.add(fast[0], fast[1], out=dom)
        dom += 1e-12
        np.divide(fast[1], dom, out=dom)
        dom -= 0.4
        dom *= 5.0
        np.maximum(dom, 0.0, out=dom)
        np.minimum(dom, 1.0, out=dom)
        gate[1] *= dom  # snare gate
        np.subtract(1.0, dom, out=dom)
        gate[0] *= dom  # kick gate

        both = self._sum[:, :n]
        np.add(low, mid, out=both)
        np.multiply(both, gate[0], out=parts[0, :, :n])
        np.add(mid, high, out=both)
        np.multiply(both, gate[1], out=parts[1, :, :n])
        np.subtract(1.0, gate[1], out=dom)
        dom *= gate[2]
        np.multiply(high, dom, out=parts[2, :, :n])
