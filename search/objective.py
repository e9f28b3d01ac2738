"""Evaluate one candidate: build, score, then the budgets in cost order.

Order: layer count and the score (one trace of the deploy form, milliseconds), params, GFLOPs
(fvcore through profiles.flops, only when a GFLOPs budget is set: it costs seconds), latency (a
3-run screen, then the full measurement). The first violated budget stops the checks, so an
infeasible candidate never pays for the expensive ones.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from torch import nn

from zoo.builder import build_model
from zoo.deploy import deploy
from zoo.errors import ConfigError
from zoo.limits import MAX_IMGSZ, MAX_RUNS, MAX_THREADS, check_option

from .score import MAEScore, analytic_row_terms, combine, trace_convs
from .space import SearchSettings

PROBE_SIZE = 128  # the builder's shape probe: strides up to 64 still see 2 px, 4x cheaper than 256
SCREEN_FACTOR = 1.3  # a 3-run median this far over the budget is infeasible without a full measurement


class CandidateError(Exception):
    """A candidate that cannot be built or run; the trial fails with this reason."""


@dataclass(frozen=True)
class Budget:
    latency_ms: float | None = None
    gflops: float | None = None
    params_m: float | None = None  # millions
    max_layers: int | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.latency_ms, self.gflops, self.params_m, self.max_layers))

    def as_dict(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "gflops": self.gflops, "params_m": self.params_m,
                "max_layers": self.max_layers}


@dataclass(frozen=True)
class Measure:
    """How latency is taken (profiles protocol); `deploy` times and counts the inference graph."""

    imgsz: int = 640
    threads: int = 1
    device: str = "cpu"
    runs: int = 20
    warmup_runs: int = 3
    warmup_s: float = 0.3
    deploy: bool = False

    def __post_init__(self) -> None:
        check_option("imgsz", self.imgsz, 1, MAX_IMGSZ)
        check_option("threads", self.threads, 1, MAX_THREADS)
        check_option("runs", self.runs, 1, MAX_RUNS)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Evaluation:
    config: Mapping[str, Any]
    score: MAEScore
    layers: int
    params: int
    gflops: float | None
    latency: Any  # profiles.latency.LatencyStats | None
    violations: Mapping[str, float]  # budget name -> (value - limit) / limit, in checking order
    screened: bool = False
    timings_s: Mapping[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())

    @property
    def violated(self) -> str | None:
        return next((k for k, v in self.violations.items() if v > 0), None)

    def user_attrs(self) -> dict[str, Any]:
        """What a trial records (JSON-serialisable)."""
        lat = self.latency.as_dict() if self.latency is not None else None
        return {"score": self.score.score, "stages": self.score.as_dict()["stages"], "params": self.params,
                "gflops": self.gflops, "layers": self.layers, "latency_ms": lat, "screened": self.screened,
                "feasible": self.feasible, "violated": self.violated, "config": dict(self.config),
                "timings_s": dict(self.timings_s)}


def evaluate(config: Mapping[str, Any], *, budget: Budget, measure: Measure, settings: SearchSettings,
             full_latency: bool = False) -> Evaluation:
    """Build and check one candidate; raises CandidateError when it cannot be built or traced."""
    t0 = time.perf_counter()
    try:
        model = build_model(dict(config), probe_size=PROBE_SIZE)
    except ConfigError as e:
        raise CandidateError(e.text if e.row is None else f"row {e.row}: {e.text}") from None
    timings = {"build": time.perf_counter() - t0}
    t0 = time.perf_counter()
    deployed = deploy(copy.deepcopy(model)) if not measure.deploy else deploy(model)
    try:
        calls = trace_convs(deployed, deployed=True)
    except Exception as e:  # a module that runs at the probe size but not here: a failed candidate
        raise CandidateError(f"cannot trace the deploy form: {type(e).__name__}: {e}") from None
    score = combine(analytic_row_terms(calls, len(model.layers)), model, weights=settings.stage_weights,
                    scope=settings.scope, unscored=settings.unscored)
    timings["score"] = time.perf_counter() - t0
    timed = deployed if measure.deploy else model
    viol: dict[str, float] = {}
    layers = sum(1 for c in calls if c.kind == "conv")
    params = sum(p.numel() for p in timed.parameters())
    gflops: float | None = None
    latency = None
    screened = False

    def over(name: str, value: float, limit: float | None) -> bool:
        if limit is None:
            return False
        viol[name] = (value - limit) / limit
        return viol[name] > 0

    if not (over("layers", layers, budget.max_layers) or over("params", params / 1e6, budget.params_m)):
        t0 = time.perf_counter()  # fvcore is ~0.15 s for yolov5s at 320 px: every plausible trial records it
        gflops = count_gflops(timed, measure.imgsz)
        timings["gflops"] = time.perf_counter() - t0
        if not over("gflops", gflops, budget.gflops) and (budget.latency_ms is not None or full_latency):
            t0 = time.perf_counter()
            latency, screened = measure_candidate(timed, measure, budget.latency_ms, full=full_latency)
            timings["latency"] = time.perf_counter() - t0
            over("latency", latency.median_ms, budget.latency_ms)
    return Evaluation(dict(config), score, layers, params, gflops, latency, viol, screened, timings)


def measure_candidate(model: nn.Module, measure: Measure, budget_ms: float | None, *, full: bool = False,
                      runs_factor: int = 1) -> tuple[Any, bool]:
    """Latency by the profiles protocol; a short screen first skips clearly-over candidates."""
    from profiles.latency import measure_latency

    kw = dict(imgsz=measure.imgsz, threads=measure.threads, device=measure.device)
    if budget_ms is not None and not full:
        quick = measure_latency(model, runs=3, warmup_runs=2, warmup_s=min(measure.warmup_s, 0.2), **kw)
        if quick.median_ms > SCREEN_FACTOR * budget_ms:
            return quick, True
    stats = measure_latency(model, runs=measure.runs * runs_factor, warmup_runs=measure.warmup_runs,
                            warmup_s=measure.warmup_s * runs_factor, **kw)
    return stats, False


def count_gflops(model: nn.Module, imgsz: int) -> float:
    """GFLOPs (2 x fvcore MACs) through profiles.flops, the one counter of the project."""
    from profiles.flops import count_flops

    return float(count_flops(model, imgsz=imgsz).gflops)
