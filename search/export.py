"""The end of a study: export the best candidate that truly meets the budgets.

A candidate's params, GFLOPs, layers and score are exact sums of its rows' costs, so only a latency
budget needs a second look: then the top candidates and the base are re-measured with more runs, in
interleaved rounds (each round times every one of them in turn; a candidate's figure is the median of its
rounds), and the best one that meets the budget is exported. How "re-measured" is priced follows Measure.latency: on the device
(`measure`; `hybrid`, which searched on the table's predictions and goes on down the ranking, up to
HYBRID_REACH x top_k candidates, until one truly meets the budget), or from the table (`lut`). Files (in `out`): best.yaml (explicit channels and repeats,
rebuilt from the space and the trial's parameters), report.json, trials.csv, pareto.png.
`export_trial` writes any trial's config later (`zoo export`), from the space the study records.
"""
from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from profiles.rowcosts import CostCache
from zoo.config import load_config
from zoo.yamlio import write_config

from .evaluate import (Budget, CandidateError, Measure, Scoring, candidate_costs, make_scoring, plan_candidate,
                       price_plan)
from .latency import search_table
from .objectives import validity_report
from .recovery import failed, finished
from .settings import settings_from_record
from .space import SearchSpace, build_space


EXPLICIT = "explicit channels and repeats (multiples 1.0): rebuilds to the searched model"
HYBRID_REACH = 3  # hybrid: re-measure up to this many times top_k candidates to find one within budget
RUN_CV_WARN = 0.10  # run-to-run variation of one candidate's median latency above which latencies are unreliable
# a trial's recorded value of each budget (report.json's `closest`, the plot's x axis when there is no latency)
BUDGET_VALUES = (("latency_ms", "latency (ms, median)", lambda u: (u.get("latency_ms") or {}).get("median")),
                 ("params_m", "params (M)", lambda u: u["params"] / 1e6 if u.get("params") is not None else None),
                 ("gflops", "GFLOPs", lambda u: u.get("gflops")),
                 ("max_layers", "layers (deploy convs)", lambda u: u.get("layers")))


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
    imgsz: int | None = None  # the input size it was checked at (its own when the size is searched)
    choices: Mapping[str, Any] = field(default_factory=dict)  # every dimension's chosen value, by parameter

    def as_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "kind": self.kind, "imgsz": self.imgsz, "choices": dict(self.choices),
                "score": self.score, "stages": list(self.stages),
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
    warnings: tuple[str, ...] = ()  # what makes the result less trustworthy (load, latency variation)
    closest: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per budget: the trial nearest it


def trial_score(t: FrozenTrial) -> float:
    return float(t.values[0]) if t.values else float("-inf")


def feasible_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Complete trials that met every budget, best score first."""
    ok = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
    return sorted(ok, key=trial_score, reverse=True)


@dataclass(frozen=True)
class Pending:
    """A candidate whose exact costs are known and whose latency is still to be timed."""

    trial: int | None
    kind: str
    params: Mapping[str, int]
    plan: Any
    costs: Any


def plan_check(space: SearchSpace, params: Mapping[str, int], *, trial: int | None, kind: str, measure: Measure,
               cache: CostCache, scoring: Scoring) -> Pending:
    plan = plan_candidate(space, params, imgsz=measure.imgsz, prober=cache)
    return Pending(trial, kind, dict(params), plan, candidate_costs(plan, cache, scoring, form=measure.form))


def rounds_latency(rounds: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """One candidate's latency from its interleaved rounds: the median of the rounds' medians (and p90s),
    the largest within-round CV, and each round's median (their spread is the drift between rounds)."""
    if len(rounds) == 1:
        return dict(rounds[0])  # as priced (a table's price keeps its source)
    return {**rounds[0], "median": round(statistics.median(r["median"] for r in rounds), 4),
            "p90": round(statistics.median(r["p90"] for r in rounds), 4),
            "cv": max(r["cv"] for r in rounds), "rounds": [r["median"] for r in rounds]}


def time_interleaved(pending: Sequence[Pending], measure: Measure, *, factor: int,
                     rounds: int) -> list[dict[str, Any] | CandidateError]:
    """Each candidate timed `rounds` times, the candidates in turn within a round: a slow stretch of the
    machine then falls on all of them, not on one, and the final figure is not one lucky timing (the
    best of several candidates near the budget is otherwise the one whose single timing ran fast)."""
    got: list[list[Mapping[str, float]] | CandidateError] = [[] for _ in pending]
    for _ in range(max(1, rounds)):
        for i, p in enumerate(pending):
            if isinstance(got[i], CandidateError):
                continue
            try:
                stats, _ = price_plan(p.plan, measure, None, full=True, runs_factor=max(1, factor), final=True)
            except CandidateError as e:
                got[i] = e
                continue
            got[i].append(stats.as_dict())
    return [g if isinstance(g, CandidateError) else rounds_latency(g) for g in got]


def finish_check(space: SearchSpace, p: Pending, lat: Mapping[str, Any] | None, *, budget: Budget, cache: CostCache,
                 scoring: Scoring) -> Candidate:
    """The checked candidate: every budget compared with its exact costs and its timed latency."""
    costs = p.costs
    depth = scoring.depth
    checks = [(budget.latency_ms, lat["median"] if lat else None), (budget.gflops, costs.gflops),
              (budget.params_m, costs.params / 1e6),
              (budget.max_layers if depth is None else depth.max_layers, costs.layers),
              (depth.max_effectiveness if depth is not None else None, costs.effectiveness)]
    meets = costs.value.feasible and all(limit is None or (value is not None and value <= limit * (1 + 1e-12))
                                         for limit, value in checks)
    terms = [{"name": k, "value": v} for k, v in costs.value.terms.items()]
    return Candidate(p.trial, p.kind, space.resolve(p.params, prober=cache), costs.value.value, terms, costs.params,
                     costs.gflops, costs.layers, dict(lat) if lat else None, meets, p.plan.imgsz,
                     space.values(p.params))


def check_candidates(space: SearchSpace, wanted: Sequence[tuple[Mapping[str, int], int | None, str]], *,
                     budget: Budget, measure: Measure, cache: CostCache, scoring: Scoring, factor: int,
                     rounds: int = 3) -> list[Candidate | CandidateError]:
    """Candidates' exact costs and, under a latency budget, `rounds` interleaved longer timings each;
    `wanted` is (params, trial number, kind) per candidate. A candidate that cannot be built or timed
    comes back as its CandidateError."""
    out: list[Candidate | CandidateError | None] = [None] * len(wanted)
    pending: list[tuple[int, Pending]] = []
    for i, (params, trial, kind) in enumerate(wanted):
        try:
            pending.append((i, plan_check(space, params, trial=trial, kind=kind, measure=measure, cache=cache,
                                          scoring=scoring)))
        except CandidateError as e:
            out[i] = e
    lats: list[Any] = [None] * len(pending)
    if budget.latency_ms is not None:
        lats = time_interleaved([p for _, p in pending], measure, factor=factor, rounds=rounds)
    for (i, p), lat in zip(pending, lats):
        out[i] = lat if isinstance(lat, CandidateError) else finish_check(space, p, lat, budget=budget, cache=cache,
                                                                             scoring=scoring)
    return out  # type: ignore[return-value]


def train_commands(config: str, imgsz: int) -> dict[str, str]:
    """How to train an exported config at its searched input size, with each reference trainer."""
    return {"ultralytics": f"yolo train model={config} imgsz={imgsz}",
            "yolov5": f"python train.py --cfg {config} --img {imgsz}"}


def config_header(what: str, imgsz: int | None) -> str:
    """best.yaml's header: what it is, and the input size it was searched at (not a config key: the
    reference trainers take it on their command lines)."""
    size = f"\ninput size {imgsz}: train and deploy at imgsz={imgsz}" if imgsz is not None else ""
    return f"{what}{size}\n{EXPLICIT}"


def export_best(study: optuna.Study, *, space: SearchSpace, budget: Budget, measure: Measure, out: str | Path,
                scoring: Scoring | None = None, top_k: int = 5, factor: int = 3, rounds: int = 3,
                storage: str = "",
                interrupted: bool = False, cache: CostCache | None = None,
                load: Mapping[str, Any] | None = None) -> SearchResult:
    """Check the top feasible trials (re-measured under a latency budget) and the base; write the files.

    report.json also records the run's load (`load`), the run-to-run variation of the re-measured
    candidates' latency, per budget the trial closest to it (the fastest, the smallest), and the anchor
    the table priced at in this run (`latency.anchor`: a resumed study's earlier trials were priced at
    the anchor of their own run)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or CostCache(form=measure.form)
    scoring = scoring or make_scoring(space, budget, measure, cache)
    trials = study.get_trials(deepcopy=False)
    ranked = feasible_trials(trials)
    top = ranked[:top_k] if budget.latency_ms is not None else ranked[:1]
    again: list[Candidate] = []
    unchecked: list[str] = []
    base_c: Candidate | None = None

    def check(group: Sequence[Any], with_base: bool = False) -> None:
        """Re-measure a group of trials (and the base), interleaved; a candidate that fails its
        re-measurement is not exported (the reason is reported)."""
        nonlocal base_c
        wanted = [(t.params, t.number, t.user_attrs.get("kind", "sampled")) for t in group]
        if with_base:
            wanted.append((space.uniform_params(1.0), None, "base"))
        checked = check_candidates(space, wanted, budget=budget, measure=measure, cache=cache, scoring=scoring,
                                   factor=factor, rounds=1 if measure.latency == "lut" else rounds)
        for (_, trial, kind), c in zip(wanted, checked):
            if isinstance(c, Candidate):
                if kind == "base" and trial is None:
                    base_c = c
                else:
                    again.append(c)
            elif kind == "base" and trial is None:
                unchecked.append(f"the base could not be re-measured: {c}")
            else:
                unchecked.append(f"trial {trial} could not be re-measured: {c}")

    check(top, with_base=True)
    if budget.latency_ms is not None and measure.latency in ("hybrid", "auto"):
        reach = ranked[len(top):HYBRID_REACH * top_k]  # predicted feasible, but none of the top truly is
        while reach and not any(c.meets_budget for c in again):  # one at a time: stop at the first that meets
            check(reach[:1])
            reach = reach[1:]
    best = next((c for c in sorted(again, key=lambda c: c.score, reverse=True) if c.meets_budget), None)
    files = []
    if best is not None:
        study.set_user_attr("zoo:best_trial", best.trial)
        files.append(write_config(best.config, out / "best.yaml",
                                  header=config_header(f"zoo search: study {study.study_name}, trial {best.trial}, "
                                                       f"score {best.score:.2f}", best.imgsz)))
    done = finished(trials)
    by_number = {t.number: t for t in trials}
    searched = again + ([base_c] if base_c is not None and base_trial(trials) is not None else [])
    run_cv = run_to_run_cv(searched, by_number, base_trial(trials)) if budget.latency_ms is not None else None
    closest = closest_trials(trials, budget)
    timed = budget.latency_ms is not None and measure.latency != "lut"  # a table prices without timing
    notes = unchecked + reliability_warnings(load, run_cv, timed=timed)
    table = search_table(measure) if budget.latency_ms is not None else None
    anchor = table.anchor if table is not None else None  # the speed the candidates were priced at
    report = {
        "study": study.study_name, "storage": storage,
        "budget_ms": budget.latency_ms, "budgets": budget.as_dict(),
        "imgsz": best.imgsz if best is not None else measure.imgsz, "imgsz_searched": list(space.sizes) or None,
        "train": train_commands("best.yaml", best.imgsz or measure.imgsz) if best is not None else None,
        "threads": measure.threads, "device": measure.device, "deploy": measure.deploy,
        "latency": {"pricing": measure.latency, "backend": measure.backend, "lut": measure.lut,
                    "final_check": "table" if measure.latency == "lut" else f"measured on {measure.backend}",
                    "anchor": anchor.as_dict() if anchor is not None else None},
        "objective": {**scoring.as_dict(), "validity": validity_report(scoring.objective.name)},
        "scope": space.settings.scope,
        "base": base_c.as_dict() if base_c else None, "best": best.as_dict() if best else None,
        "remeasured": [c.as_dict() for c in again],
        "n_trials": len(done), "n_feasible": len(ranked), "n_failed": len(failed(trials)),
        "interrupted": interrupted, "closest": closest, "load": dict(load) if load else None,
        "latency_run_to_run_cv": run_cv, "warnings": notes,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    files.append(str(out / "report.json"))
    files.append(write_trials_csv(trials, out / "trials.csv"))
    png = write_pareto(trials, out / "pareto.png", budget=budget, base=base_c, best=best)
    if png:
        files.append(png)
    return SearchResult(study.study_name, storage, str(out), budget, base_c, best, tuple(again), len(done),
                        len(ranked), report["n_failed"], interrupted, tuple(files), report, tuple(notes), closest)


def base_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The study's completed trial of the base config (enqueued first), if any."""
    return next((t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("kind") == "base"), None)


def run_to_run_cv(cands: Sequence[Candidate], trials: Mapping[int, FrozenTrial],
                  base: FrozenTrial | None) -> float | None:
    """The largest coefficient of variation between a candidate's median latency in its trial and at its
    re-measurement: the same model timed twice should agree; None when nothing was timed twice."""
    cvs = []
    for c in cands:
        t = base if c.kind == "base" and c.trial is None else trials.get(c.trial) if c.trial is not None else None
        first = ((t.user_attrs.get("latency_ms") or {}).get("median") if t is not None else None)
        again = c.latency_ms["median"] if c.latency_ms else None
        if first and again and not (t.user_attrs.get("screened")):
            pair = [float(first), float(again)]
            cvs.append(statistics.stdev(pair) / statistics.fmean(pair))
    return round(max(cvs), 4) if cvs else None


def closest_trials(trials: Sequence[FrozenTrial], budget: Budget) -> dict[str, dict[str, Any]]:
    """Per budget given, the completed trial with the lowest recorded value (the fastest, the smallest):
    what tells a user whether a budget could be met at all."""
    out = {}
    limits = budget.as_dict()
    for key, _, value_of in BUDGET_VALUES:
        if limits[key] is None:
            continue
        seen = [(value_of(t.user_attrs), t.number) for t in trials if t.state == TrialState.COMPLETE]
        seen = [(v, n) for v, n in seen if v is not None]
        if seen:
            v, n = min(seen)
            out[key] = {"trial": n, "value": v, "limit": limits[key]}
    return out


def reliability_warnings(load: Mapping[str, Any] | None, run_cv: float | None, *, timed: bool = True) -> list[str]:
    """Why latencies of this run may not be trusted: the load above the cores, a large run-to-run CV.
    A run that timed nothing (`timed=False`: no latency budget, or a table's prices) has none to distrust."""
    notes: list[str] = []
    if not timed:
        return notes
    if load:
        worst = max((a[0] for a in (load.get("loadavg_start"), load.get("loadavg_end")) if a), default=None)
        if worst is not None and worst > load["cores"]:
            notes.append(f"load average {worst:.1f} exceeded the {load['cores']} cores available during the "
                         f"search: latencies were measured on a busy machine")
    if run_cv is not None and run_cv > RUN_CV_WARN:
        notes.append(f"the same candidates timed twice differed by a CV of {run_cv:.0%} (over {RUN_CV_WARN:.0%}): "
                     f"latency budgets may be met or missed by chance; rerun on a quiet machine")
    return notes


def write_trials_csv(trials: Sequence[FrozenTrial], path: Path) -> str:
    """One row per trial: its results, and for each parameter the choice index (`params_<name>`, as
    Optuna's trials_dataframe() names it) beside the real value (`<name>`: the width multiple or the
    repeats, from the trial's `choices` user attr)."""
    names = sorted({k for t in trials for k in t.params})
    cols = ["number", "state", "kind", "score", "latency_median_ms", "latency_p90_ms", "params", "gflops", "layers",
            "feasible", "violated", "screened", "fail_reason", "retry_of"]
    for n in names:
        cols += [f"params_{n}", n]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in trials:
            u = t.user_attrs
            lat = u.get("latency_ms") or {}
            choices = u.get("choices") or {}
            row = [t.number, t.state.name, u.get("kind", "sampled"), u.get("score"), lat.get("median"),
                   lat.get("p90"), u.get("params"), u.get("gflops"), u.get("layers"), u.get("feasible"),
                   u.get("violated"), u.get("screened"), u.get("fail_reason") or t.system_attrs.get("zoo:stale"),
                   u.get("retry_of")]
            for n in names:
                row += [t.params.get(n), choices.get(n)]
            w.writerow(row)
    return str(path)


def plot_axis(budget: Budget) -> tuple[str, str, Any, float | None]:
    """(budget key, label, value of a trial's user attrs, limit) of the plot's x axis: the latency when
    there is a latency budget, else the first of params, GFLOPs and layers that is budgeted."""
    limits = budget.as_dict()
    for key, label, value_of in BUDGET_VALUES:
        if limits[key] is not None:
            return key, label, value_of, limits[key]
    return BUDGET_VALUES[2][0], BUDGET_VALUES[2][1], BUDGET_VALUES[2][2], None


def write_pareto(trials: Sequence[FrozenTrial], path: Path, *, budget: Budget, base: Candidate | None,
                 best: Candidate | None) -> str | None:
    """Score vs the budgeted quantity (latency, else params, GFLOPs or layers) of every completed trial,
    the budget line, the feasible front, base and best."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # the `plot` extra is optional
        return None
    key, label, value_of, limit = plot_axis(budget)
    pts = [(value_of(t.user_attrs), t.user_attrs["score"], bool(t.user_attrs.get("feasible")))
           for t in trials if t.state == TrialState.COMPLETE and "score" in t.user_attrs]
    pts = [p for p in pts if p[0] is not None]
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
    if limit is not None:
        ax.axvline(limit, c="tab:red", ls="--", lw=1, label=f"budget {limit:g}")
    for cand, marker, color, name in ((base, "*", "tab:orange", "base"), (best, "D", "tab:green", "best")):
        x = candidate_value(cand, key) if cand is not None else None
        if x is not None:
            ax.scatter([x], [cand.score], marker=marker, s=120, c=color, label=name, edgecolors="k", zorder=3)
    ax.set_xlabel(label)
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


def candidate_value(c: Candidate, key: str) -> float | None:
    """A checked candidate's value of one budget key."""
    if key == "latency_ms":
        return c.latency_ms["median"] if c.latency_ms else None
    return {"params_m": c.params / 1e6, "gflops": c.gflops, "max_layers": c.layers}[key]


def study_space(study: optuna.Study) -> SearchSpace:
    """The space a study searched, rebuilt from what it recorded (its base config, scale and settings, read
    back by the settings' own serialiser)."""
    record = study.user_attrs
    if "zoo:config" not in record:
        raise ExportError(f"study {study.study_name!r} was not made by `zoo search` (no zoo:config record)")
    cfg = load_config(dict(record["zoo:config"]), scale=record.get("zoo:scale"))
    settings = settings_from_record(record.get("zoo:settings") or {}, f"study {study.study_name}")
    return build_space(cfg, settings)


@dataclass(frozen=True)
class ExportedTrial:
    """What `export_trial` wrote, and the study's budgets the trial breaks (empty: it meets them all)."""

    trial: int
    path: str
    violations: Mapping[str, float] = field(default_factory=dict)  # budget -> (value - limit) / limit
    imgsz: int | None = None  # the trial's input size


WHERE_STUDIES = ("`zoo search` keeps a study's journal in runs/search/<study>/journal.log, or in its -o folder; "
                 "pass that file or folder")


def open_study(storage: str, study_name: str) -> optuna.Study:
    """Load an existing study, creating nothing: a missing journal, SQLite file or study is an ExportError
    that says where studies live (and which studies the storage holds)."""
    from .storage import StorageError, is_url, open_storage, resolve_storage

    where = resolve_storage(storage, study_name)
    try:
        st = open_storage(where, create=False)
    except FileNotFoundError:
        raise ExportError(f"no study storage at {where}; {WHERE_STUDIES}") from None
    except StorageError as e:
        raise ExportError(e.text) from None
    try:
        return optuna.load_study(study_name=study_name, storage=st)
    except KeyError:
        pass
    except Exception as e:  # noqa: BLE001  an RDB without Optuna's tables: no study there either
        from .storage import failure_text, storage_failure

        if not storage_failure(e):
            raise
        raise ExportError(f"cannot read studies from {where} ({failure_text(e)})") from None
    names = sorted(s.study_name for s in st.get_all_studies())
    known = f"; it holds {', '.join(names)}" if names else "; it holds no study"
    raise ExportError(f"no study named {study_name!r} in {where}{known}" + ("" if is_url(where) or names
                                                                             else f"; {WHERE_STUDIES}"))


def export_trial(storage: str, study_name: str, *, trial: int | None = None, out: str | Path) -> ExportedTrial:
    """Write one trial's explicit config (default: the study's exported best, else its best feasible).

    Nothing is created when the look-up fails. The result names the study's budgets the trial breaks."""
    study = open_study(storage, study_name)
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
    space = study_space(study)
    config = space.resolve(chosen.params)
    size = space.imgsz(chosen.params, int((study.user_attrs.get("zoo:measure") or {}).get("imgsz", 640)))
    path = write_config(config, out, header=config_header(f"zoo export: study {study_name}, trial {trial}", size))
    broken = {k[len("constraints:"):]: float(v) for k, v in chosen.system_attrs.items()
              if k.startswith("constraints:") and float(v) > 0}
    return ExportedTrial(trial, path, broken, size)
