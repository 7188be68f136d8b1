"""How the latency L is divided, decided once before the daemon joins the JACK graph.

A stem frame is due L after its input frame. It exists after the streaming delay (lookahead R,
crossfade, hop H, resampling, refiner), one period of arrival (the worker sees input a period at a
time), then the hop's compute; the audio path also wants one period plus a dry crossfade queued
beyond the block it renders before it stays separated, and it renders each block the render lead
ahead of the JACK cycle that plays it (render_ahead.py: the compiled callback's own fade, two periods
and the render thread's slack). So, exactly, in frames at the JACK rate:

    L = streaming delay + compute + 2 periods + dry crossfade + render lead + margin.

The plan first makes compute fit: it times a few hops at the model's geometry on noise and, while
the 95th percentile exceeds `HOP_SHARE` of the hop (the worker would fall behind once the JACK
callback and the control threads take their share of the CPU), moves the hop up the model's frame
grid. Compute then costs the same whatever R is (the window does not change), so every frame of L
left over once the margin is reserved goes to the lookahead R — the one part of the budget that buys
quality (a window that has seen more of what follows separates closer to offline; docs/decisions/
engine.md, "latency plan") — until R reaches `MAX_LOOKAHEAD_SHARE` of the window; what R cannot take
stays margin.

`[audio] latency_ms = 0` (auto) picks L as the model's preferred lookahead (its `streaming.right_s`,
set at the knee of its quality-latency frontier, `stemd bench --only frontier`) plus everything
else, rounded up to `ROUND_MS`; the rounding goes to R too. L is never recomputed while the daemon
runs: a JACK latency that moves mid-show moves every downstream client's compensation.
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
MAX_LOOKAHEAD_SHARE = 0.5  # R may take up to half the window; the other half stays past context

# build(hop_s, right_s) -> (stream, refiner); None = the configured (or the model's) value.
Build = Callable[[float | None, float | None], Any]


def stream_builder(separator: Any, rate: int, window_s: float | None = None, hop_s: float | None = None,
                   right_s: float | None = None, refiner: bool = True, refine_budget: float | None = None) -> Build:
    """The `Build` the plan calibrates: a StreamingSeparator at the configured geometry (None = the
    model's), with the refiner installed before the first hop when `refiner`, so that its delay and
    cost are part of the latency from the start (calibration's hops included)."""
    from stemd.engines.streaming import StreamingSeparator

    def build(hop: float | None, right: float | None) -> tuple[Any, Any]:
        stream = StreamingSeparator(separator, rate, window_s, hop or hop_s, right_s if right is None else right)
        post = None
        if refiner:
            from stemd.engines.refine import Refiner

            budget = {} if refine_budget is None else {"budget": refine_budget}
            post = Refiner(stream.sources, stream.model_rate, stream.geometry.hop, **budget)
            stream.add_post(post)
        return stream, post
    return build


RENDER_FADE_MS = 4.0  # the compiled callback's crossfade between rendered blocks and dry (a renderer stall)
RENDER_SLACK_MS = 8.0  # how late the render thread may wake (beyond a period) before the callback fades to dry


def frames(ms: float, rate: int) -> int:
    return math.ceil(ms * rate / 1000.0)


def dry_crossfade(ms: float, rate: int) -> int:
    """`[audio] dry_crossfade_ms` in frames, as the audio path fades and the plan reserves it."""
    return round(ms * rate / 1000.0)


def render_lead(rate: int, period: int, latency: int | None = None) -> int:
    """How far ahead of the JACK cycle the render thread renders: a whole fade, the cycle playing,
    the next one, and the slack — but never more than L, since block t needs input t - L. The plan
    reserves it in L: the stems of block t are needed this much before t is played."""
    wanted = round((RENDER_FADE_MS + RENDER_SLACK_MS) * rate / 1000.0) + 2 * period
    return wanted if latency is None else min(wanted, latency)


def render_fade(rate: int) -> int:
    """The compiled callback's fade between rendered blocks and dry, in frames."""
    return max(1, round(RENDER_FADE_MS * rate / 1000.0))


def minimum(streaming: int, compute_ms: float, period: int, crossfade: int, rate: int,
            render_lead: int = 0) -> int:
    """Fewest frames of L that keep the output separated (see the module docstring)."""
    return streaming + frames(compute_ms, rate) + 2 * period + crossfade + render_lead


@dataclass(frozen=True)
class Plan:
    """How L was divided and why (goes to the log and `stemd status`). The frame parts add up to L
    exactly: latency == streaming + compute + periods + dry_crossfade + render_lead + margin."""

    mode: str  # "auto" (L chosen here) or "fixed" (L from [audio] latency_ms)
    latency: int  # frames at the JACK rate
    streaming: int  # the stream's delay: R + H + crossfade + resampling + refiner
    compute: int  # p95 compute of one hop
    periods: int
    dry_crossfade: int
    render_lead: int  # how far ahead of the JACK cycle the render thread renders
    margin: int  # for compute spikes; negative when L is too short
    hop_s: float
    right_s: float
    window_s: float
    parts_ms: dict[str, float]  # the streaming delay's parts at the model rate, in ms
    compute_p95_ms: float
    fits: bool  # compute within its share of the hop and the whole margin in L
    reason: str

    @property
    def minimum(self) -> int:
        """Frames of L before the margin."""
        return self.latency - self.margin

    def as_dict(self, rate: int) -> dict[str, Any]:
        def ms(n: int) -> float:
            return round(1000.0 * n / rate, 1)

        return {"mode": self.mode, "hop_ms": round(1000.0 * self.hop_s, 1),
                "right_ms": round(1000.0 * self.right_s, 1), "window_ms": round(1000.0 * self.window_s, 1),
                "compute_p95_ms": round(self.compute_p95_ms, 1), "minimum_ms": ms(self.minimum),
                "division_ms": {"streaming": ms(self.streaming), "compute": ms(self.compute),
                                "periods": ms(self.periods), "dry_crossfade": ms(self.dry_crossfade),
                                "render_lead": ms(self.render_lead), "margin": ms(self.margin), **{f"streaming_{k}": v for k, v in self.parts_ms.items()}},
                "fits": self.fits, "reason": self.reason}


def compute_p95(stream: Any) -> float:
    """p95 compute ms per hop: the lower of two rounds, so that another process's burst during one
    round does not set the show's latency (a machine busy through both is busy)."""
    return min(float(np.percentile(stream.calibrate(CALIBRATION_HOPS, WARMUP_HOPS), 95)) for _ in range(ROUNDS))


def _grid(stream: Any) -> int:
    return getattr(stream.separator, "grid", None) or getattr(stream.separator, "hop_grid", 1)


def fit_hop(build: Build, hop_fixed: bool, measured_ms: float | None = None) -> tuple[Any, float]:
    """The built stream whose hop keeps p95 compute within HOP_SHARE of it, and that p95 (ms).
    `measured_ms` (a benchmark's one calibration for many plans) stands for every measurement."""
    built = build(None, None)
    stream = built[0]
    shortest = stream.geometry.hop
    for _ in range(MAX_TRIES):
        p95 = compute_p95(stream) if measured_ms is None else measured_ms
        g, grid = stream.geometry, _grid(stream)
        widest = max(shortest, (g.window - g.right - g.crossfade) // grid * grid)
        wanted = min(widest, max(shortest, math.ceil(p95 / 1000.0 / HOP_SHARE * g.rate / grid) * grid))
        if hop_fixed or wanted == g.hop:
            break
        # Measured again at the new hop, so a burst of load during one measurement can be taken back;
        # after the last try the new hop stays with the compute measured at the one before.
        built = build(wanted / g.rate, None)
        stream = built[0]
    return built, p95


def lookahead_for(latency: int, stream: Any, reserved: int, right_fixed: bool) -> int:
    """R (model-rate samples) that spends what `latency` leaves after `reserved` frames (compute,
    periods, dry crossfade, minimum margin): the longest R whose streaming delay still fits, up to
    MAX_LOOKAHEAD_SHARE of the window; the configured R when `right_fixed`."""
    g = stream.geometry
    if right_fixed:
        return g.right
    cap = max(0, min(int(MAX_LOOKAHEAD_SHARE * g.window), g.window - g.hop - g.crossfade))
    lo, hi = 0, cap
    if stream.latency_with_right(0) + reserved > latency:
        return 0
    while lo < hi:  # the delay is monotonic in R (one ceil of a linear sum): bisect for the largest fit
        mid = (lo + hi + 1) // 2
        if stream.latency_with_right(mid) + reserved <= latency:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan(build: Build, hop_fixed: bool, right_fixed: bool, period: int, crossfade: int, rate: int,
         latency: int = 0, measured_ms: float | None = None, render_lead: int = 0) -> tuple[Any, Plan]:
    """Calibrate streams made by `build`, divide `latency` frames (0 = auto: choose L) among them and
    return the stream to run with its plan. `hop_fixed` / `right_fixed` (the user set `[engine]
    hop_ms` / `right_context_ms`) keep those; then the leftover is margin."""
    (stream, _), p95 = fit_hop(build, hop_fixed, measured_ms)
    g = stream.geometry
    hop_ms = 1000.0 * g.hop / g.rate
    compute = frames(p95, rate)
    floor_margin = frames(max(MARGIN_MS, MARGIN_SHARE * p95), rate)
    reserved = compute + 2 * period + crossfade + render_lead + floor_margin
    mode = "fixed" if latency else "auto"
    if not latency:
        step = frames(ROUND_MS, rate)
        latency = min(math.ceil((stream.latency_samples + reserved) / step) * step, frames(MAX_AUTO_MS, rate))
    right = lookahead_for(latency, stream, reserved, right_fixed)
    built = build(g.hop / g.rate, right / g.rate)
    stream = built[0]
    g = stream.geometry
    margin = latency - stream.latency_samples - compute - 2 * period - crossfade - render_lead
    keeps_up = p95 <= HOP_SHARE * hop_ms
    fits = keeps_up and margin >= floor_margin
    parts = stream.delay_parts_ms()
    result = Plan(mode, latency, stream.latency_samples, compute, 2 * period, crossfade, render_lead, margin,
                  g.hop / g.rate, g.right / g.rate, g.window / g.rate, parts, p95, fits,
                  _reason(mode, stream, latency, compute, period, crossfade, render_lead, margin, p95, rate,
                          hop_fixed, keeps_up, floor_margin))
    return built, result


def _reason(mode: str, stream: Any, latency: int, compute: int, period: int, crossfade: int, render_lead: int,
            margin: int, p95: float, rate: int, hop_fixed: bool, keeps_up: bool, floor_margin: int) -> str:
    def ms(n: float) -> str:
        return f"{1000.0 * n / rate:.0f}"

    g, parts = stream.geometry, stream.delay_parts_ms()
    division = " + ".join(f"{k} {v:.0f}" for k, v in parts.items())
    text = (f"latency {ms(latency)} ms ({'auto' if mode == 'auto' else 'set by [audio] latency_ms'}) = "
            f"streaming {ms(stream.latency_samples)} ({division}) + compute p95 {ms(compute)} + 2 periods "
            f"{ms(2 * period)} + dry crossfade {ms(crossfade)} + render lead {ms(render_lead)} "
            f"+ margin {ms(margin)} ms; "
            f"{stream.separator.name} needs {p95:.0f} ms per {1000.0 * g.hop / g.rate:.0f} ms hop "
            f"({1000.0 * g.window / g.rate:.0f} ms window) on this machine, the rest of L is lookahead")
    if mode == "auto":
        text += "; set [audio] latency_ms to override"
    if not keeps_up:
        text += (f"; that is over {HOP_SHARE:.0%} of the hop "
                 + ("[engine] hop_ms sets" if hop_fixed else f"the {1000.0 * g.window / g.rate:.0f} ms window allows")
                 + ": the engine may fall behind (dry passages)")
    if margin < floor_margin:
        text += (f"; short of the {ms(floor_margin)} ms compute margin: raise [audio] latency_ms to at least "
                 f"{ms(latency - margin + floor_margin)} ms or the output will often be dry")
    return text
