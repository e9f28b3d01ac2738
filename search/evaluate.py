"""Evaluate one candidate from its row plan and the per-signature row costs: no model is built unless a
measured latency is needed.

Budgets are checked in cost order: layers (deploy-form convs), params, GFLOPs (sums over the rows'
cached costs, microseconds once cached: all three are always recorded), then latency only for a
candidate that meets the cheap ones, so an infeasible candidate never pays for a measurement. Latency
is priced as Measure.latency says (search.latency): measured (a full build on Measure.backend, a 3-run
screen, then the full measurement), or predicted from a latency table (`lut`, `hybrid`). Every failure of a candidate (plan, row build, counting, latency) is a
CandidateError: a failed trial with its reason, never a stopped study.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from profiles.flops import flops_of
from profiles.rowcosts import CostCache, RowCost
from zoo.errors import ConfigError, OptionError
from zoo.limits import MAX_IMGSZ, MAX_RUNS, MAX_THREADS, check_option
from zoo.plan import ModelPlan, Prober, RowProbeError, plan_config

from .latency import MODES, PricingError, pricers
from .objectives import (DepthBudget, Objective, ObjectiveContext, ObjectiveValue, RowTerms, check_depth,
                         depth_budget, get_objective, rows_from_plan, summarize)
from .space import SearchSpace


class CandidateError(Exception):
    """A candidate that cannot be planned, built, counted or timed; the trial fails with this reason."""


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
    """How candidates are sized and timed; `deploy` counts and times the inference graph.

    `latency` prices latency budgets (search.latency): "measure" on `backend` (torch or onnxruntime),
    "lut" from the table `lut`, "hybrid" from the table while searching and on `backend` for the final
    check, "auto" as hybrid on a table the search builds as it goes (`lut`: its path, set by the run to
    the study's folder when not given); `force` uses a table built under another fingerprint (read only)."""

    imgsz: int = 640
    threads: int = 1
    device: str = "cpu"
    runs: int = 20
    warmup_runs: int = 3
    warmup_s: float = 0.3
    deploy: bool = False
    latency: str = "measure"  # the command line's default is "auto"
    backend: str = "torch"
    lut: str | None = None
    force: bool = False

    def __post_init__(self) -> None:
        check_option("imgsz", self.imgsz, 1, MAX_IMGSZ)
        check_option("threads", self.threads, 1, MAX_THREADS)
        check_option("runs", self.runs, 1, MAX_RUNS)
        if self.latency not in MODES:
            raise OptionError(None, "latency", self.latency, f"must be one of {', '.join(MODES)}")
        if self.latency in ("lut", "hybrid") and not self.lut:
            raise OptionError(None, "latency", self.latency, "needs a latency table (lut=, --lut FILE)")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def form(self) -> str:
        return "deploy" if self.deploy else "train"


@dataclass(frozen=True)
class Scoring:
    """How a search scores candidates: its objective, the context at each searched input size (the base
    summarised at that size), the depth budget relative to its base."""

    objective: Objective
    ctx: ObjectiveContext  # at the study's size (the base candidate's)
    depth: DepthBudget | None  # the default one of an objective that grows with depth (None: none, or the user's)
    contexts: Mapping[int, ObjectiveContext] = field(default_factory=dict)  # input size -> context

    def context(self, imgsz: int) -> ObjectiveContext:
        return self.contexts.get(imgsz, self.ctx)

    def as_dict(self) -> dict[str, Any]:
        return {"objective": self.objective.name, "direction": self.objective.direction,
                "stage_weights": list(self.objective.weights(self.ctx)) if self.objective.stage_weights or
                self.ctx.stage_weights else None,
                "depth_budget": self.depth.as_dict() if self.depth is not None else None}


def make_scoring(space: SearchSpace, budget: Budget, measure: Measure, cache: CostCache,
                 prober: Prober | None = None) -> Scoring:
    """The objective of the space's settings, and its context and depth budget from the base at the
    search's size; with the size searched, one context per size (the base planned at each)."""
    s = space.settings
    objective = get_objective(s.objective)
    probe = prober if prober is not None else cache
    base_params = space.uniform_params(1.0)
    contexts: dict[int, ObjectiveContext] = {}
    for size in dict.fromkeys((space.imgsz(base_params, measure.imgsz), *space.sizes)):
        ctx = ObjectiveContext(imgsz=size, stage_weights=s.stage_weights, scope=s.scope,
                               unscored=frozenset(s.unscored))
        plan = plan_candidate(space, base_params, imgsz=size, prober=probe, force_size=True)
        summary = summarize(rows_of(plan, cache, form=measure.form), ctx)
        contexts[size] = replace(ctx, base=summary)
    main = contexts[space.imgsz(base_params, measure.imgsz)]
    depth = depth_budget(objective, main.base, max_layers=budget.max_layers)
    return Scoring(objective, main, depth if depth is not None and depth.reason != "set by the user" else None,
                   contexts)


@dataclass(frozen=True)
class Costs:
    """A candidate's totals (sums of its rows' costs) and its objective value."""

    params: int
    macs: int
    layers: int
    value: ObjectiveValue
    effectiveness: float | None = None

    @property
    def gflops(self) -> float:
        return flops_of(self.macs) / 1e9


@dataclass(frozen=True)
class Evaluation:
    params_choice: Mapping[str, int]
    costs: Costs
    latency: Any  # profiles.latency.LatencyStats | None
    violations: Mapping[str, float]  # budget name -> (value - limit) / limit, in checking order
    screened: bool = False
    timings_s: Mapping[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """The objective's value (what the study maximises or minimises)."""
        return self.costs.value.value

    @property
    def params(self) -> int:
        return self.costs.params

    @property
    def gflops(self) -> float:
        return self.costs.gflops

    @property
    def layers(self) -> int:
        return self.costs.layers

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())

    @property
    def violated(self) -> str | None:
        return next((k for k, v in self.violations.items() if v > 0), None)

    def user_attrs(self) -> dict[str, Any]:
        """What a trial records (JSON-serialisable); the config is rebuilt from the space when exported."""
        lat = self.latency.as_dict() if self.latency is not None else None
        return {"score": self.costs.value.value, "terms": dict(self.costs.value.terms), "params": self.costs.params,
                "gflops": self.costs.gflops, "layers": self.costs.layers, "latency_ms": lat,
                "screened": self.screened, "feasible": self.feasible, "violated": self.violated}


def rows_of(plan: ModelPlan, cache: CostCache, *, form: str = "train") -> tuple[RowTerms, ...]:
    """The plan's rows with their cached costs; a row that cannot be costed fails the candidate."""
    costs: list[RowCost] = []
    for rp in plan.rows:
        try:
            costs.append(cache.get(rp.signature, form))
        except RowProbeError as e:
            raise CandidateError(f"row {rp.index} ({rp.row.module}): {e}") from None
        except Exception as e:  # a module that plans but cannot be counted: the candidate fails, not the study
            raise CandidateError(f"row {rp.index} ({rp.row.module}): cannot count: {type(e).__name__}: {e}") from None
    return rows_from_plan(plan, costs)


def candidate_costs(plan: ModelPlan, cache: CostCache, scoring: Scoring, *, form: str = "train") -> Costs:
    """Sum the rows' cached costs and score them with the search's objective."""
    rows = rows_of(plan, cache, form=form)
    try:
        value = scoring.objective(rows, scoring.context(plan.imgsz))
    except (ValueError, ArithmeticError) as e:
        raise CandidateError(f"objective {scoring.objective.name}: {e}") from None
    rho = check_depth(rows, scoring.context(plan.imgsz), scoring.depth).effectiveness if scoring.depth is not None else None
    return Costs(sum(r.cost.params for r in rows), sum(r.cost.macs for r in rows), sum(r.cost.layers for r in rows),
                 value, rho)


def plan_candidate(space: SearchSpace, params: Mapping[str, int], *, imgsz: int,
                   prober: Prober | None = None, force_size: bool = False) -> ModelPlan:
    """The candidate's plan at its own input size (`imgsz`: the study's, when the size is not searched;
    `force_size`: at `imgsz` whatever it chose); a candidate that cannot be planned fails (CandidateError)."""
    try:
        if force_size:
            cand = space.candidate(params)
            return plan_config(space.base, imgsz=imgsz, overrides=cand.rows, prober=prober)
        return space.plan(params, imgsz=imgsz, prober=prober)
    except ValueError as e:  # a dimension that cannot rewrite a row (a block without the argument's default)
        raise CandidateError(str(e)) from None
    except ConfigError as e:
        raise CandidateError(e.text if e.row is None else f"row {e.row}: {e.text}") from None


def evaluate(space: SearchSpace, params: Mapping[str, int], *, budget: Budget, measure: Measure,
             cache: CostCache, scoring: Scoring, prober: Prober | None = None,
             full_latency: bool = False) -> Evaluation:
    """Plan, cost and check one candidate; raises CandidateError when any step fails."""
    t0 = time.perf_counter()
    plan = plan_candidate(space, params, imgsz=measure.imgsz, prober=prober)
    timings = {"plan": time.perf_counter() - t0}
    t0 = time.perf_counter()
    costs = candidate_costs(plan, cache, scoring, form=measure.form)
    timings["costs"] = time.perf_counter() - t0
    viol: dict[str, float] = {}

    def over(name: str, value: float, limit: float | None) -> bool:
        if limit is None:
            return False
        viol[name] = (value - limit) / limit
        return viol[name] > 0

    latency, screened = None, False
    depth = scoring.depth
    cheap = [over("layers", costs.layers, budget.max_layers if depth is None else depth.max_layers),
             over("params", costs.params / 1e6, budget.params_m), over("gflops", costs.gflops, budget.gflops)]
    if depth is not None and depth.max_effectiveness and costs.effectiveness is not None:
        cheap.append(over("effectiveness", costs.effectiveness, depth.max_effectiveness))
    if not costs.value.feasible:  # an objective's own budget (DeepMAD's effectiveness)
        viol["objective"] = 1.0
        cheap.append(True)
    if not any(cheap) and (budget.latency_ms is not None or full_latency):
        t0 = time.perf_counter()
        latency, screened = price_plan(plan, measure, budget.latency_ms, full=full_latency)
        timings["latency"] = time.perf_counter() - t0
        over("latency", latency.median_ms, budget.latency_ms)
    return Evaluation(dict(params), costs, latency, viol, screened, timings)


def price_plan(plan: ModelPlan, measure: Measure, budget_ms: float | None, *, full: bool = False,
               runs_factor: int = 1, final: bool = False) -> tuple[Any, bool]:
    """The candidate's latency as `measure.latency` prices it while searching (or, `final`, for the
    final check: hybrid re-measures on the device); a candidate that cannot be built or timed fails."""
    search_pricer, check_pricer = pricers(measure)
    try:
        return (check_pricer if final else search_pricer).price(plan, budget_ms, full=full, runs_factor=runs_factor)
    except PricingError as e:
        raise CandidateError(str(e)) from None
