"""The latency L the machine can hold, decided once before the daemon joins the JACK graph.

A stem frame is due L after its input frame. It exists after the streaming delay (right context,
crossfade, hop quantisation, resampling, refiner), one period of arrival (the worker sees input a
period at a time), then the hop's compute; the RT side also wants one period plus a dry crossfade
queued beyond the period it plays before it stays separated. So

    L >= streaming delay + compute + 2 periods + dry crossfade.

`[audio] latency_ms = 0` (auto) measures compute in the worker: it times a few hops at the model's
geometry on noise and, while the 95th percentile exceeds `HOP_SHARE` of the hop (the worker would
fall behind once the JACK callback and the control threads take their share of the CPU), moves the
hop up the model's frame grid. L is then that budget plus a margin for compute spikes, rounded up to
`ROUND_MS`. It is never recomputed while the daemon runs: a JACK latency that moves mid-show moves
every downstream client's compensation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

TARGET_MS = 200.0  # auto's latency when nothing is measured (no engine, dry)
HOP_SHARE = 0.4  # p95 compute may take this share of a hop (measured idle; a show adds the RT load)
CALIBRATION_HOPS = 10  # timed hops per round (after the warm-up hops) ...
ROUNDS = 2  # ... and rounds per geometry
WARMUP_HOPS = 2  # first runs pay for allocation and kernel selection
MAX_TRIES = 3  # measurements before settling
MARGIN_MS = 20.0  # at least this much on top of the p95 compute ...
MARGIN_SHARE = 1.0  # ... and at least this share of it: under load (2 cores) compute grows ~1.5-2x
ROUND_MS = 10.0
MAX_AUTO_MS = 2000.0  # the rings are sized for this before the plan is known


def frames(ms: float, rate: int) -> int:
    return math.ceil(ms * rate / 1000.0)


def minimum(streaming: int, compute_ms: float, period: int, crossfade: int, rate: int) -> int:
    """Fewest frames of L that keep the output separated (see the module docstring)."""
    return streaming + frames(compute_ms, rate) + 2 * period + crossfade


@dataclass(frozen=True)
class Plan:
    """What auto decided and why (goes to the log and `stemd status`)."""

    latency: int  # frames at the JACK rate
    minimum: int  # frames: the budget before the margin
    hop_s: float  # the hop the stream runs at
    compute_p95_ms: float
    fits: bool  # compute within its share of the hop and L not cut at MAX_AUTO_MS
    reason: str

    def as_dict(self, rate: int) -> dict[str, Any]:
        return {"mode": "auto", "hop_ms": round(1000.0 * self.hop_s, 1),
                "compute_p95_ms": round(self.compute_p95_ms, 1),
                "minimum_ms": round(1000.0 * self.minimum / rate, 1), "fits": self.fits, "reason": self.reason}


def _compute_p95(stream: Any) -> float:
    """p95 compute ms per hop: the lower of two rounds, so that another process's burst during one
    round does not set the show's latency (a machine busy through both is busy)."""
    return min(float(np.percentile(stream.calibrate(CALIBRATION_HOPS, WARMUP_HOPS), 95)) for _ in range(ROUNDS))


def plan(build: Callable[[float | None], Any], hop_fixed: bool, period: int, crossfade: int,
         rate: int) -> tuple[Any, Plan]:
    """Calibrate streams made by `build(hop_s)` (None = the configured hop) and return the one to run
    with its plan. `hop_fixed` (the user set `[engine] hop_ms`) keeps the hop and only sizes L."""
    built = build(None)
    stream = built[0]
    shortest = stream.geometry.hop
    for _ in range(MAX_TRIES):
        p95 = _compute_p95(stream)
        g = stream.geometry
        grid = getattr(stream.separator, "grid", None) or getattr(stream.separator, "hop_grid", 1)
        widest = max(shortest, (g.window - g.right - g.crossfade) // grid * grid)
        wanted = min(widest, max(shortest, math.ceil(p95 / 1000.0 / HOP_SHARE * g.rate / grid) * grid))
        if hop_fixed or wanted == g.hop:
            break
        # Measured again at the new hop, so a burst of load during one measurement can be taken back;
        # after the last try the new hop stays with the compute measured at the one before.
        built = build(wanted / g.rate)
        stream = built[0]
    g = stream.geometry
    hop_ms = 1000.0 * g.hop / g.rate
    need = minimum(stream.latency_samples, p95, period, crossfade, rate)
    margin = frames(max(MARGIN_MS, MARGIN_SHARE * p95), rate)
    step = frames(ROUND_MS, rate)
    latency = min(math.ceil((need + margin) / step) * step, frames(MAX_AUTO_MS, rate))
    keeps_up = p95 <= HOP_SHARE * hop_ms
    name = stream.separator.name
    reason = (f"latency {1000.0 * latency / rate:.0f} ms: {name} needs {p95:.0f} ms per {hop_ms:.0f} ms hop "
              f"on this machine (streaming delay {1000.0 * stream.latency_samples / rate:.0f} ms); "
              "set [audio] latency_ms to override")
    if not keeps_up:
        reason += (f"; that is over {HOP_SHARE:.0%} of the hop "
                   + ("[engine] hop_ms sets" if hop_fixed else f"the {1000.0 * g.window / g.rate:.0f} ms window allows")
                   + ": the engine may fall behind (dry passages)")
    if latency < need + margin:
        reason += f"; cut to the {MAX_AUTO_MS:.0f} ms auto limit, short of the {1000.0 * need / rate:.0f} ms needed"
    return built, Plan(latency, need, g.hop / g.rate, p95, keeps_up and latency >= need + margin, reason)
