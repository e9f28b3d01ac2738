"""The end of a study: export the best candidate that truly meets the budgets.

A candidate's params, GFLOPs, layers and score are exact sums of its rows' costs, so only a latency
budget needs a second look: then the top candidates are re-measured with more runs and the best one
that meets the budget is exported. How "re-measured" is priced follows Measure.latency: on the device
(`measure`; `hybrid`, which searched on the table's predictions and goes on down the ranking, up to
HYBRID_REACH x top_k candidates, until one truly meets the budget), or from the table (`lut`). Files (in `out`): best.yaml (explicit channels and repeats,
rebuilt from the space and the trial's parameters), report.json, trials.csv, pareto.png.
`export_trial` writes any trial's config later (`zoo export`), from the space the study records.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from profiles.rowcosts import CostCache
from zoo.config import load_config
from zoo.yamlio import write_config

from .evaluate import Budget, Measure, Scoring, candidate_costs, make_scoring, plan_candidate, price_plan
from .objectives import validity_report
from .settings import SearchSettings
from .space import SearchSpace, build_space


EXPLICIT = "explicit channels and repeats (multiples 1.0): rebuilds to the searched model"
HYBRID_REACH = 3  # hybrid: re-measure up to this many times top_k candidates to find one within budget


class ExportError(Exception):
    """Nothing to export (no such study or trial, or no feasible trial)."""


@dataclass(frozen=True)
class Candidate:
    """A checked config: what report.json says of `base` and `best`."""

    trial: int | None
    kind: str
    config: Mapping[str, Any]
    score: float
    stages: Sequence[Mapping[str, Any]]
    params: int
    gflops: float | None
    layers: int
    latency_ms: Mapping[str, float] | None
    meets_budget: bool

    def as_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "kind": self.kind, "score": self.score, "stages": list(self.stages),
                "latency_ms": dict(self.latency_ms) if self.latency_ms else None, "params": self.params,
                "gflops": self.gflops, "layers": self.layers, "meets_budget": self.meets_budget}


@dataclass(frozen=True)
class SearchResult:
    study_name: str
    storage: str
    out_dir: str
    budget: Budget
    base: Candidate | None
    best: Candidate | None
    remeasured: tuple[Candidate, ...]
    n_trials: int
    n_feasible: int
    n_failed: int
    interrupted: bool
    files: tuple[str, ...] = ()
    report: Mapping[str, Any] = field(default_factory=dict)


def trial_score(t: FrozenTrial) -> float:
    return float(t.values[0]) if t.values else float("-inf")


def feasible_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Complete trials that met every budget, best score first."""
    ok = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
    return sorted(ok, key=trial_score, reverse=True)


def check_candidate(space: SearchSpace, params: Mapping[str, int], *, trial: int | None, kind: str, budget: Budget,
                    measure: Measure, cache: CostCache, scoring: Scoring, factor: int) -> Candidate:
    """A candidate's exact costs and, under a latency budget, a longer latency measurement."""
    plan = plan_candidate(space, params, imgsz=measure.imgsz, prober=cache)
    costs = candidate_costs(plan, cache, scoring, form=measure.form)
    lat = None
    if budget.latency_ms is not None:
        stats, _ = price_plan(plan, measure, None, full=True, runs_factor=max(1, factor), final=True)
        lat = stats.as_dict()
    depth = scoring.depth
    checks = [(budget.latency_ms, lat["median"] if lat else None), (budget.gflops, costs.gflops),
              (budget.params_m, costs.params / 1e6),
              (budget.max_layers if depth is None else depth.max_layers, costs.layers),
              (depth.max_effectiveness if depth is not None else None, costs.effectiveness)]
    meets = costs.value.feasible and all(limit is None or (value is not None and value <= limit * (1 + 1e-12))
                                         for limit, value in checks)
    terms = [{"name": k, "value": v} for k, v in costs.value.terms.items()]
    return Candidate(trial, kind, space.resolve(params, prober=cache), costs.value.value, terms, costs.params,
                     costs.gflops, costs.layers, lat, meets)


def export_best(study: optuna.Study, *, space: SearchSpace, budget: Budget, measure: Measure, out: str | Path,
                scoring: Scoring | None = None, top_k: int = 5, factor: int = 3, storage: str = "",
                interrupted: bool = False, cache: CostCache | None = None) -> SearchResult:
    """Check the top feasible trials (re-measured under a latency budget) and the base; write the files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or CostCache(form=measure.form)
    scoring = scoring or make_scoring(space, budget, measure, cache)
    trials = study.get_trials(deepcopy=False)
    ranked = feasible_trials(trials)
    top = ranked[:top_k] if budget.latency_ms is not None else ranked[:1]
    again = [check_candidate(space, t.params, trial=t.number, kind=t.user_attrs.get("kind", "sampled"),
                             budget=budget, measure=measure, cache=cache, scoring=scoring, factor=factor) for t in top]
    if budget.latency_ms is not None and measure.latency == "hybrid":
        for t in ranked[len(top):HYBRID_REACH * top_k]:  # predicted feasible, but none of the top truly is
            if any(c.meets_budget for c in again):
                break
            again.append(check_candidate(space, t.params, trial=t.number, kind=t.user_attrs.get("kind", "sampled"),
                                         budget=budget, measure=measure, cache=cache, scoring=scoring, factor=factor))
    best = next((c for c in sorted(again, key=lambda c: c.score, reverse=True) if c.meets_budget), None)
    base_c = check_candidate(space, space.uniform_params(1.0), trial=None, kind="base", budget=budget,
                             measure=measure, cache=cache, scoring=scoring, factor=factor)
    files = []
    if best is not None:
        study.set_user_attr("zoo:best_trial", best.trial)
        files.append(write_config(best.config, out / "best.yaml",
                                  header=f"zoo search: study {study.study_name}, trial {best.trial}, "
                                         f"score {best.score:.2f}\n{EXPLICIT}"))
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    report = {
        "study": study.study_name, "storage": storage,
        "budget_ms": budget.latency_ms, "budgets": budget.as_dict(),
        "imgsz": measure.imgsz, "threads": measure.threads, "device": measure.device, "deploy": measure.deploy,
        "latency": {"pricing": measure.latency, "backend": measure.backend, "lut": measure.lut,
                    "final_check": "table" if measure.latency == "lut" else f"measured on {measure.backend}"},
        "objective": {**scoring.as_dict(), "validity": validity_report(scoring.objective.name)},
        "scope": space.settings.scope,
        "base": base_c.as_dict(), "best": best.as_dict() if best else None,
        "remeasured": [c.as_dict() for c in again],
        "n_trials": len(done), "n_feasible": len(ranked),
        "n_failed": sum(1 for t in trials if t.state == TrialState.FAIL and "fail_reason" in t.user_attrs),
        "interrupted": interrupted,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    files.append(str(out / "report.json"))
    files.append(write_trials_csv(trials, out / "trials.csv"))
    png = write_pareto(trials, out / "pareto.png", budget_ms=budget.latency_ms, base=base_c, best=best)
    if png:
        files.append(png)
    return SearchResult(study.study_name, storage, str(out), budget, base_c, best, tuple(again), len(done),
                        len(ranked), report["n_failed"], interrupted, tuple(files), report)


def write_trials_csv(trials: Sequence[FrozenTrial], path: Path) -> str:
    names = sorted({k for t in trials for k in t.params})
    cols = ["number", "state", "kind", "score", "latency_median_ms", "latency_p90_ms", "params", "gflops", "layers",
            "feasible", "violated", "screened", "fail_reason", "retry_of", *names]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in trials:
            u = t.user_attrs
            lat = u.get("latency_ms") or {}
            w.writerow([t.number, t.state.name, u.get("kind", "sampled"), u.get("score"), lat.get("median"),
                        lat.get("p90"), u.get("params"), u.get("gflops"), u.get("layers"), u.get("feasible"),
                        u.get("violated"), u.get("screened"), u.get("fail_reason") or t.system_attrs.get("zoo:stale"),
                        u.get("retry_of"), *(t.params.get(n) for n in names)])
    return str(path)


def write_pareto(trials: Sequence[FrozenTrial], path: Path, *, budget_ms: float | None, base: Candidate | None,
                 best: Candidate | None) -> str | None:
    """Score vs latency of every measured trial, the budget line, the feasible front, base and best."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # the `plot` extra is optional
        return None
    pts = [(t.user_attrs["latency_ms"]["median"], t.user_attrs["score"], bool(t.user_attrs.get("feasible")))
           for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("latency_ms")]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for ok, color, label in ((True, "tab:blue", "feasible"), (False, "0.7", "over a budget")):
        xs = [p[0] for p in pts if p[2] == ok]
        ys = [p[1] for p in pts if p[2] == ok]
        if xs:
            ax.scatter(xs, ys, s=14, c=color, label=label)
    front, top = [], float("-inf")
    for x, y, ok in sorted(p for p in pts if p[2]):
        if y > top:
            front.append((x, y))
            top = y
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", c="tab:blue", lw=0.8)
    if budget_ms is not None:
        ax.axvline(budget_ms, c="tab:red", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    for cand, marker, color, label in ((base, "*", "tab:orange", "base"), (best, "D", "tab:green", "best")):
        if cand is not None and cand.latency_ms:
            ax.scatter([cand.latency_ms["median"]], [cand.score], marker=marker, s=120, c=color, label=label,
                       edgecolors="k", zorder=3)
    ax.set_xlabel("latency (ms, median)")
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


def study_space(study: optuna.Study) -> SearchSpace:
    """The space a study searched, rebuilt from what it recorded (its base config, scale and settings)."""
    record = study.user_attrs
    if "zoo:config" not in record:
        raise ExportError(f"study {study.study_name!r} was not made by `zoo search` (no zoo:config record)")
    cfg = load_config(dict(record["zoo:config"]), scale=record.get("zoo:scale"))
    s = record.get("zoo:settings") or {}
    weights = s.get("stage_weights")
    settings = SearchSettings(tuple(weights) if weights else None, s.get("scope", "all"),
                              tuple(s.get("unscored", ())), s.get("widths"), _int_keys(s.get("depths")),
                              s.get("objective", SearchSettings().objective))
    return build_space(cfg, settings)


def _int_keys(depths: Any) -> Any:
    """JSON turns the row keys of {row: counts} into strings; give them back as rows."""
    return {int(k): v for k, v in depths.items()} if isinstance(depths, dict) else depths


def export_trial(storage: str, study_name: str, *, trial: int | None = None, out: str | Path) -> tuple[int, str]:
    """Write one trial's explicit config (default: the study's exported best, else its best feasible)."""
    from .storage import open_storage, resolve_storage

    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(resolve_storage(storage, study_name)))
    except KeyError:
        raise ExportError(f"no study named {study_name!r} in {storage}") from None
    trials = study.get_trials(deepcopy=False)
    if trial is None:
        trial = study.user_attrs.get("zoo:best_trial")
        if trial is None:
            ranked = feasible_trials(trials)
            if not ranked:
                raise ExportError(f"study {study_name!r} has no feasible trial; pass --trial N")
            trial = ranked[0].number
    chosen = next((t for t in trials if t.number == trial), None)
    if chosen is None:
        raise ExportError(f"study {study_name!r} has no trial {trial} (0..{len(trials) - 1})")
    if chosen.state != TrialState.COMPLETE:
        reason = chosen.user_attrs.get("fail_reason")
        raise ExportError(f"trial {trial} did not complete ({chosen.state.name}{': ' + reason if reason else ''})")
    config = study_space(study).resolve(chosen.params)
    path = write_config(config, out, header=f"zoo export: study {study_name}, trial {trial}\n{EXPLICIT}")
    return trial, path
