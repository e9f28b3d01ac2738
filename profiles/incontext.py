"""Rows timed where they run: each YAML row's share of the whole model's forward pass.

A row timed alone (profiles.rowtiming) runs with cold caches and another allocator and thread-pool
state than inside its model; on eager torch the raw sum of such rows spans 0.82-1.41 of the measured
total. Here one forward pre-hook per row stamps a clock as the row starts; a row's time is the interval
from its stamp to the next row's (the last row's ends with the pass), less one hook's own cost (each
interval holds exactly one hook call: the end of its own, the start of the next). The routing between
rows (ZooModel.run picking inputs) falls into the row that follows it, so the rows of a pass add up to
the pass's total less `rows x overhead` by construction: nothing between them is lost.

The hook's cost is measured, not assumed: the same hooks on a chain of identity modules, where an
interval holds nothing but the hook (`hook_overhead_ms`). On CUDA the clock is a CUDA event recorded in
each hook (GPU time, one synchronisation at the end of a pass), through the same interface
(`EventClock`, testable with fake events on a CPU).

The estimator of a row over the passes (and of one signature over several models, profiles.lut) is a
choice measured by bench/latency_stability.py: `median`, `trimmed_mean` (20% each side) or
`min_of_medians` (the smallest of the medians of interleaved blocks of passes).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch
from torch import nn

from .latency import LatencyStats, TimingProtocol, summarize, thread_count, time_callable

OVERHEAD_CHAIN = 64  # identity modules in the chain that measures a hook's own cost
OVERHEAD_PASSES = 30  # passes over that chain (the median interval is taken)
MIN_OF_MEDIANS_BLOCKS = 3


# ---- estimators ---------------------------------------------------------------------------------------
def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def trimmed_mean(xs: Sequence[float], cut: float = 0.2) -> float:
    """The mean of what is left after `cut` of the values on each side are dropped (at least one kept)."""
    s = sorted(xs)
    k = min(int(len(s) * cut), (len(s) - 1) // 2)
    return float(statistics.fmean(s[k:len(s) - k]))


def min_of_medians(xs: Sequence[float], blocks: int = MIN_OF_MEDIANS_BLOCKS) -> float:
    """The smallest median over `blocks` interleaved blocks (x[0::b], x[1::b], ...): a stretch of passes
    slowed by other work on the machine pulls one block up, not the estimate."""
    b = max(1, min(blocks, len(xs)))
    return float(min(statistics.median(xs[i::b]) for i in range(b)))


ESTIMATORS: dict[str, Callable[[Sequence[float]], float]] = {
    "median": median, "trimmed_mean": trimmed_mean, "min_of_medians": min_of_medians}
DEFAULT_ESTIMATOR = "median"  # bench/latency_stability.py compares the three


def estimate(xs: Sequence[float], estimator: str = DEFAULT_ESTIMATOR) -> float:
    try:
        fn = ESTIMATORS[estimator]
    except KeyError:
        raise ValueError(f"estimator={estimator!r}: one of {', '.join(ESTIMATORS)}") from None
    if not xs:
        raise ValueError("no samples to estimate from")
    return fn(list(xs))


# ---- clocks ---------------------------------------------------------------------------------------------
class Clock(Protocol):
    """Stamps taken during one pass; `intervals_ms` reads them after the pass (one per gap)."""

    def begin(self) -> None: ...

    def stamp(self) -> None: ...

    def intervals_ms(self) -> list[float]: ...


class WallClock:
    """perf_counter stamps: CPU work is done when the call returns."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def begin(self) -> None:
        self.times = []

    def stamp(self) -> None:
        self.times.append(time.perf_counter())

    def intervals_ms(self) -> list[float]:
        t = self.times
        return [(b - a) * 1000.0 for a, b in zip(t, t[1:])]


class EventClock:
    """CUDA events recorded on the current stream: GPU time between rows, with one synchronisation when
    the pass's intervals are read (none inside the pass, which would serialise it). `make_event` and
    `synchronize` are injectable so the logic is tested on a CPU with fakes."""

    def __init__(self, make_event: Callable[[], Any] | None = None,
                 synchronize: Callable[[], None] | None = None) -> None:
        self.make_event = make_event or (lambda: torch.cuda.Event(enable_timing=True))
        self.synchronize = synchronize or torch.cuda.synchronize
        self.events: list[Any] = []

    def begin(self) -> None:
        self.events = []

    def stamp(self) -> None:
        ev = self.make_event()
        ev.record()
        self.events.append(ev)

    def intervals_ms(self) -> list[float]:
        if self.events:
            self.synchronize()  # the pass's last event done: every interval can be read
        e = self.events
        return [float(a.elapsed_time(b)) for a, b in zip(e, e[1:])]


def clock_for(device: torch.device) -> Clock:
    return EventClock() if device.type == "cuda" else WallClock()


# ---- timing ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InContextTiming:
    """One model's rows timed inside its forward passes.

    `rows_ms[i]` is row i's estimate over the passes (hook cost subtracted), `row_samples_ms[i]` its
    per-pass times; `total` the passes' totals (hooks subtracted): per pass, the rows add up to it."""

    rows_ms: tuple[float, ...]
    row_samples_ms: tuple[tuple[float, ...], ...]
    total: LatencyStats
    overhead_ms: float  # one hook's own cost, subtracted from each row
    estimator: str
    passes: int

    @property
    def row_sum_ms(self) -> float:
        return math.fsum(self.rows_ms)


def _rows_of(model: nn.Module) -> list[nn.Module]:
    """The modules a pass calls once each, in order: a ZooModel's rows, else the top-level children."""
    rows = getattr(model, "model", None)
    return list(rows) if isinstance(rows, (nn.ModuleList, nn.Sequential)) else list(model.children())


def _attach(modules: Sequence[nn.Module], clock: Clock, on: list[bool]) -> list[Any]:
    def pre(_m: nn.Module, _inp: Any) -> None:
        if on[0]:
            clock.stamp()
    return [m.register_forward_pre_hook(pre) for m in modules]


def hook_overhead_ms(clock: Clock, *, passes: int = OVERHEAD_PASSES, chain: int = OVERHEAD_CHAIN,
                     device: torch.device = torch.device("cpu")) -> float:
    """One hook's own cost on `clock`: the median interval between stamps of identity modules in a row
    (an interval there holds the hook and nothing else)."""
    seq = nn.Sequential(*[nn.Identity() for _ in range(chain)])
    on = [True]
    handles = _attach(list(seq), clock, on)
    x = torch.zeros(1, device=device)
    gaps: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(passes):
                clock.begin()
                seq(x)
                gaps += clock.intervals_ms()
    finally:
        for h in handles:
            h.remove()
    return float(statistics.median(gaps)) if gaps else 0.0


def time_in_context(model: nn.Module, x: Any, *, protocol: TimingProtocol = TimingProtocol(),
                    clock: Clock | None = None, overhead_ms: float | None = None,
                    estimator: str = DEFAULT_ESTIMATOR, threads: int = 1) -> InContextTiming:
    """Every row of `model` (already on its device and dtype, eval mode) timed inside `protocol.runs`
    forward passes on `x`, after the protocol's warm-up (hooks attached but silent)."""
    dev = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    clock = clock or clock_for(dev)
    rows = _rows_of(model)
    if not rows:
        raise ValueError("the model has no rows to time")
    on = [False]
    handles = _attach(rows, clock, on)
    per_pass: list[list[float]] = []
    try:
        with thread_count(threads), torch.inference_mode():
            if overhead_ms is None:
                overhead_ms = hook_overhead_ms(clock, device=dev)
            _, warm = time_callable(lambda: model(x), device=dev, runs=0, warmup_runs=protocol.warmup_runs,
                                    warmup_s=protocol.warmup_s, max_warmup_s=protocol.max_warmup_s)
            on[0] = True
            for _ in range(protocol.runs):
                clock.begin()
                clock.stamp()  # the pass starts: routing before row 0 is row 0's
                model(x)
                clock.stamp()  # the pass ends: the last row's interval closes
                gaps = clock.intervals_ms()
                if len(gaps) != len(rows) + 1:
                    raise RuntimeError(f"{len(gaps) - 1} row stamps in a pass of {len(rows)} rows: a row was "
                                       "skipped or called twice, so rows cannot be timed in context")
                first = gaps[0] + gaps[1]  # the entry into forward, then row 0 itself
                per_pass.append([max(0.0, g - overhead_ms) for g in [first, *gaps[2:]]])
    finally:
        for h in handles:
            h.remove()
    samples = tuple(tuple(p[i] for p in per_pass) for i in range(len(rows)))
    totals = [math.fsum(p) for p in per_pass]
    return InContextTiming(rows_ms=tuple(estimate(s, estimator) for s in samples), row_samples_ms=samples,
                           total=summarize(totals, warmup_runs=warm, threads=threads, device=str(dev)),
                           overhead_ms=float(overhead_ms), estimator=estimator, passes=len(per_pass))


__all__ = ["Clock", "DEFAULT_ESTIMATOR", "ESTIMATORS", "EventClock", "InContextTiming", "WallClock", "clock_for",
           "estimate", "hook_overhead_ms", "min_of_medians", "time_in_context", "trimmed_mean"]
