"""The end of a study: re-measure the top candidates, export the best that truly meets the budgets.

Files (in `out`): best.yaml (explicit channels and repeats; rebuilds to the same params), report.json,
trials.csv, pareto.png. `export_trial` writes any trial's config later (`zoo export`).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from zoo.builder import build_model
from zoo.deploy import deploy

from .objective import PROBE_SIZE, Budget, Measure, count_gflops, evaluate, measure_candidate
from .space import SearchSettings


class ExportError(Exception):
    """Nothing to export (no such study or trial, or no feasible trial)."""


@dataclass(frozen=True)
class Candidate:
    """A re-measured config: what report.json says of `base` and `best`."""

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


def remeasure(config: Mapping[str, Any], *, trial: int | None, kind: str, budget: Budget, measure: Measure,
              settings: SearchSettings, factor: int) -> Candidate:
    """Score, params, GFLOPs and a longer latency measurement of one config."""
    ev = evaluate(config, budget=Budget(), measure=measure, settings=settings)
    model = build_model(dict(config), probe_size=PROBE_SIZE)
    timed = deploy(model) if measure.deploy else model
    gflops = count_gflops(timed, measure.imgsz)
    lat = None
    if budget.latency_ms is not None or factor > 0:
        stats, _ = measure_candidate(timed, measure, None, full=True, runs_factor=max(1, factor))
        lat = stats.as_dict()
    checks = [(budget.latency_ms, lat["median"] if lat else None), (budget.gflops, gflops),
              (budget.params_m, ev.params / 1e6), (budget.max_layers, ev.layers)]
    meets = all(limit is None or (value is not None and value <= limit) for limit, value in checks)
    return Candidate(trial, kind, dict(config), ev.score.score, ev.score.as_dict()["stages"], ev.params, gflops,
                     ev.layers, lat, meets)


def export_best(study: optuna.Study, *, base: Mapping[str, Any], budget: Budget, measure: Measure,
                settings: SearchSettings, out: str | Path, top_k: int = 5, factor: int = 3,
                storage: str = "", interrupted: bool = False) -> SearchResult:
    """Re-measure the top `top_k` feasible trials and the base; write the study's files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    ranked = feasible_trials(trials)
    again = [remeasure(t.user_attrs["config"], trial=t.number, kind=t.user_attrs.get("kind", "sampled"),
                       budget=budget, measure=measure, settings=settings, factor=factor) for t in ranked[:top_k]]
    best = next((c for c in sorted(again, key=lambda c: c.score, reverse=True) if c.meets_budget), None)
    base_c = remeasure(base, trial=None, kind="base", budget=budget, measure=measure, settings=settings,
                       factor=factor)
    files = []
    if best is not None:
        study.set_user_attr("zoo:best_trial", best.trial)
        files.append(write_config(best.config, out / "best.yaml",
                                  header=f"zoo search: study {study.study_name}, trial {best.trial}, "
                                         f"score {best.score:.2f}"))
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    report = {
        "study": study.study_name, "storage": storage,
        "budget_ms": budget.latency_ms, "budgets": budget.as_dict(),
        "imgsz": measure.imgsz, "threads": measure.threads, "device": measure.device, "deploy": measure.deploy,
        "stage_weights": list(settings.stage_weights), "scope": settings.scope,
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


def write_config(config: Mapping[str, Any], path: str | Path, *, header: str = "") -> str:
    """YAML with one flow-style line per row, as hand-written configs look."""
    lines = [f"# {header}"] if header else []
    lines.append("# explicit channels and repeats (multiples 1.0): rebuilds to the searched model")
    for key, value in config.items():
        if key in ("backbone", "head"):
            lines.append(f"{key}:")
            for i, row in enumerate(value):
                flow = yaml.safe_dump(row, default_flow_style=True, width=1 << 16).strip()
                lines.append(f"  - {flow}")
        else:
            flow = None if isinstance(value, (list, dict)) else False
            lines.append(yaml.safe_dump({key: value}, default_flow_style=flow, sort_keys=False, width=1 << 16).rstrip())
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines) + "\n")
    return str(p)


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
    try:  # a bare Figure renders without pyplot, so no backend is chosen (that is the face's business)
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
    ax.set_ylabel("MAE score")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


def export_trial(storage: str, study_name: str, *, trial: int | None = None, out: str | Path) -> tuple[int, str]:
    """Write one trial's explicit config (default: the study's exported best, else its best feasible)."""
    from .study import open_storage, resolve_storage

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
    if "config" not in chosen.user_attrs:
        raise ExportError(f"trial {trial} has no config ({chosen.state.name}"
                          f"{': ' + chosen.user_attrs['fail_reason'] if 'fail_reason' in chosen.user_attrs else ''})")
    path = write_config(chosen.user_attrs["config"], out, header=f"zoo export: study {study_name}, trial {trial}")
    return trial, path
