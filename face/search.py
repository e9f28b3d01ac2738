"""`zoo search`, `zoo score`, `zoo export`: parse, call the search library, render."""
from __future__ import annotations

import argparse
from typing import Any

from search.samplers import SAMPLERS, default_sampler

from .options import BACKENDS, add_device, add_imgsz, add_imgsz_choices, add_threads, make_backend, positive_float, positive_int, weights

SEARCH_EXAMPLES = ("examples:\n  zoo search yolov5s --imgsz 320 --budget-gflops 3.3 --trials 2000   (GFLOPs only: seconds)\n"
                   "  zoo search yolov5s --imgsz 256,320,384 --budget-gflops 3.3 --trials 2000   (the size searched too)\n"
                   "  zoo search yolov5s --imgsz 320 --budget-gflops 3.3 --space space.yaml   (kernels:, blocks:, ...)\n"
                   "  zoo search yolov5s --budget-ms 40 --imgsz 320 --trials 60\n"
                   "  zoo search my.yaml --budget-gflops 5 --sampler nsga2 --objectives score,latency --budget-ms 30\n"
                   "  zoo search yolov5s --budget-ms 40 --storage sqlite:///s.db --study-name s40 --workers 2\n"
                   "  zoo search yolov5s --imgsz 320 --budget-ms 40 --latency lut --lut cpu.lut    (table-priced; "
                   "this device's table is anchored first: --no-anchor)\n"
                   "  zoo search yolov5s --imgsz 320 --budget-ms 25 --latency lut --lut jetson.lut (another device's "
                   "table, from `zoo lut import`)\n"
                   "  zoo search yolov5s --imgsz 320 --budget-ms 30 --latency hybrid --lut ort.lut --backend onnxruntime")
SCORE_EXAMPLES = ("examples:\n  zoo score yolov5s\n  zoo score yolov5s --objective mae    (MAE-NAS, exact to TinyNAS)\n  zoo score damo.yaml --scope backbone --stage-weights 0,0,1,1,16\n"
                  "  zoo score yolov5s --method forward --imgsz 320 --format json")
EXPORT_EXAMPLES = ("examples:\n"
                   "  zoo export --storage runs/search/yolov5s-320-40ms --study-name yolov5s-320-40ms -o b.yaml\n"
                   "  zoo export --storage sqlite:///s.db --study-name s40 --trial 12 -o t12.yaml")
BUDGET_UNITS = {"latency_ms": "ms", "gflops": "GFLOPs", "params_m": "M params", "max_layers": "convs (deploy)"}


def score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CFG", help="YAML file or built-in name")
    p.add_argument("--scale", help="scale of a `scales` config")
    p.add_argument("--nc", type=positive_int, help="override the number of classes")
    p.add_argument("--stage-weights", type=weights, metavar="W2,W4,...",
                   help="weights of strides 2,4,8,16,32 (default: the config's search: block, else 0,0,1,1,6)")
    p.add_argument("--scope", choices=("all", "backbone"), help="rows scored (default: all)")
    p.add_argument("--objective", help="objective to score with (default: the config's search: block, else "
                                       "the search's default, feature_entropy); `mae` shows its stages")
    p.add_argument("--method", choices=("analytic", "forward"), default="analytic",
                   help="mae only: analytic (the conv fan-ins) or forward (measured on Gaussian weights)")
    add_imgsz(p)
    p.add_argument("--repeats", type=positive_int, default=2, metavar="N",
                   help="forward passes averaged (forward method)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="a table or JSON on stdout")


def score_run(args: argparse.Namespace) -> int:
    from search import load_settings, score_config
    from zoo import load_config

    from .render_search import print_score

    cfg = load_config(args.config, scale=args.scale, nc=args.nc)
    s = load_settings(cfg, stage_weights=args.stage_weights, scope=args.scope, objective=args.objective)
    print_score(score_config(cfg, imgsz=args.imgsz, settings=s, method=args.method, repeats=args.repeats),
                args.format)
    return 0


def search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CFG", help="base config: YAML file or built-in name")
    p.add_argument("--scale", help="scale of a `scales` config")
    p.add_argument("--nc", type=positive_int, help="override the number of classes")
    b = p.add_argument_group("budgets (at least one)")
    b.add_argument("--budget-ms", type=positive_float, help="latency budget, median ms")
    b.add_argument("--budget-gflops", type=positive_float, help="GFLOPs budget (2 x fvcore MACs)")
    b.add_argument("--budget-params", type=positive_float, help="parameter budget in millions")
    b.add_argument("--max-layers", type=positive_int, help="most convs in the deploy form")
    m = p.add_argument_group("measurement")
    add_imgsz_choices(m)
    add_threads(m)
    add_device(m)
    m.add_argument("--runs", type=positive_int, default=20, help="timed runs per candidate (default 20)")
    m.add_argument("--warmup-s", type=float, default=0.3, help="warm-up seconds per candidate (default 0.3)")
    m.add_argument("--deploy", action="store_true",
                   help="time and count the inference graph (compare with `zoo profile --deploy`)")
    m.add_argument("--latency", choices=("auto", "measure", "lut", "hybrid"), default="auto",
                   help="how --budget-ms is priced: auto (default): a table of this space built on this device as "
                        "the search goes (rows timed in context, kept with the study), the top candidates "
                        "re-measured; measure: every candidate on the device; lut: predict from --lut FILE; "
                        "hybrid: predict from --lut FILE, then re-measure the top candidates on the device")
    m.add_argument("--lut", metavar="FILE", help="latency table of `zoo lut build` (--latency lut, hybrid)")
    m.add_argument("--backend", choices=BACKENDS, default=None,
                   help="runtime timed: torch (eager) or onnxruntime; with a table, the table's backend unless given")
    m.add_argument("--anchor", type=int, default=5, metavar="N",
                   help="--latency lut or hybrid on this device's table: first time N candidates of the space that "
                        "the table prices whole (as `zoo lut anchor --samples N`; default 5, about 45 s for yolov5s "
                        "at 320 px) and price at the device's speed now, not the build's; --latency auto: a resumed "
                        "study's table is anchored on the config alone")
    m.add_argument("--no-anchor", dest="anchor", action="store_const", const=None,
                   help="price at the table's speed as it stands (its build's, or its latest anchor's)")
    m.add_argument("--force", action="store_true",
                   help="--latency hybrid with a table of another device: re-measure the top candidates here anyway "
                        "(--latency lut needs no --force: it prices any device's table)")
    s = p.add_argument_group("search")
    s.add_argument("--trials", type=positive_int, default=100, help="the study's total (resume adds the missing)")
    s.add_argument("--timeout", type=positive_float, help="seconds per worker")
    s.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="nsga2 (the default: a genetic search), evolution (the default when --imgsz is a list or "
                        "range: mutate the best candidates a step, MAE-NAS's way), tpe, random")
    s.add_argument("--objective", help="training-free objective (default: the config's search: block, else "
                                       "feature_entropy, the best on YOLOBench; mae for the MAE-NAS recipe; "
                                       "`zoo score --help` lists them)")
    s.add_argument("--objectives", default="score", choices=("score", "score,latency"), metavar="OBJ",
                   help="`score` (one objective) or `score,latency` (a Pareto front; use with nsga2)")
    s.add_argument("--seed", type=int, default=0, help="the sampler's random seed")
    s.add_argument("--workers", type=positive_int, default=1, help="local processes on one study")
    s.add_argument("--storage", help="Optuna URL (sqlite:///x.db, postgresql://...) or a journal file")
    s.add_argument("--study-name", help="default <config>-<imgsz>-<budget>ms")
    s.add_argument("--space", metavar="FILE", help="search space YAML (keys of the search: block)")
    s.add_argument("--stage-weights", type=weights, metavar="W2,W4,...",
                   help="score weights of strides 2,4,8,16,32 (default: the config's search: block, else 0,0,1,1,6)")
    s.add_argument("--scope", choices=("all", "backbone"), help="rows scored (default: all)")
    s.add_argument("--top-k", type=positive_int, default=5, help="candidates re-measured at the end")
    s.add_argument("-o", "--out", help="export folder (default runs/search/<study>)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def search_run(args: argparse.Namespace) -> int:
    from search import Budget, Measure, SearchOptions, load_settings, run_search
    from zoo import load_config
    from zoo.errors import ConfigError

    from .console import Progress, error, note, warning
    from .render_search import print_result

    budget = Budget(args.budget_ms, args.budget_gflops, args.budget_params, args.max_layers)
    if not budget.any():
        raise ConfigError(args.config, "give a budget: --budget-ms, --budget-gflops, --budget-params or --max-layers")
    cfg = load_config(args.config, scale=args.scale, nc=args.nc)
    searched = None if isinstance(args.imgsz, int) else args.imgsz
    settings = load_settings(cfg, space_file=args.space, stage_weights=args.stage_weights, scope=args.scope,
                             objective=args.objective, imgsz=searched)
    size = args.imgsz if searched is None else smallest_size(searched)
    backend = latency_backend(args)
    anchor_first(args, size)
    objectives = tuple(args.objectives.split(","))
    opts = SearchOptions(
        budget=budget, measure=Measure(imgsz=size, threads=args.threads, device=args.device, runs=args.runs,
                                       warmup_s=args.warmup_s, deploy=args.deploy, latency=args.latency,
                                       backend=backend, lut=args.lut, force=args.force),
        settings=settings, trials=args.trials, timeout_s=args.timeout,
        sampler=args.sampler or default_sampler(objectives, sizes_searched=searched is not None),
        objectives=objectives, seed=args.seed, workers=args.workers, storage=args.storage,
        study_name=args.study_name, out=args.out, top_k=args.top_k, plugins=tuple(getattr(args, "plugin", [])),
        anchor_resumed=args.anchor is not None)
    quiet_optuna()
    tally = Tally()
    with Progress("search", total=args.trials, enabled=not args.no_progress) as bar:
        result = run_search(cfg, opts, on_trial=lambda ev: bar.count(*tally.trial(ev)),
                            on_poll=lambda study: bar.count(*tally.poll(study)), on_event=print_event)
    print_result(result)
    for text in result.warnings:
        warning(text)
    if result.interrupted:
        note("interrupted: exported the best so far; run the same command to resume")
    if result.best is None:
        nearest = nearest_remeasured(result)
        lat = f"{result.base.latency_ms['median']:.2f} ms" if result.base and result.base.latency_ms else "?"
        error(f"no candidate meets the budget {budget_text(budget)} after re-measurement "
              f"({result.n_feasible} feasible in the search, {result.n_trials} trials; base: {lat}"
              f"{closest_text(result.closest)}{nearest_text(nearest, result.base)}); relax the budget or widen the space")
        if nearest is not None:
            note(f"to keep trial {nearest.trial} anyway: zoo export --storage {result.storage} --study-name "
                 f"{result.study_name} --trial {nearest.trial} -o best.yaml")
        return 1
    return 130 if result.interrupted else 0


def smallest_size(sizes: list[int] | str) -> int:
    """The study's own size when sizes are searched: the smallest (a range's FROM), valid at any stride
    that divides every searched size."""
    return min(sizes) if isinstance(sizes, list) else int(sizes.split(":")[0])


def latency_backend(args: argparse.Namespace) -> str:
    """The backend of the search's latency: --backend, else the table's (lut, hybrid), else torch; checked
    here so a bad --threads or --device, a missing extra or a table that does not fit is one error line
    before the study starts."""
    from profiles.backends import backend_of
    from profiles.lut import LatencyTable
    from zoo.errors import ConfigError

    if args.latency in ("measure", "auto"):
        if args.lut:
            raise ConfigError(args.lut, "--lut is for --latency lut or hybrid")
        name = args.backend or "torch"
        make_backend(name, source=args.config, threads=args.threads, device=args.device)
        return name
    if not args.lut:
        raise ConfigError(args.config, f"--latency {args.latency} needs --lut FILE (a table from `zoo lut build`)")
    fp = LatencyTable.load(args.lut).fingerprint
    name = args.backend or fp.backend
    if args.latency == "lut":  # priced from the table on any machine: no local backend needed
        try:
            here = backend_of(fp, backend=name, threads=args.threads, device=args.device)
        except (ValueError, ConfigError):
            here = None
        LatencyTable.open_to_price(args.lut, here).check_form("deploy" if args.deploy else "train")
        return name
    here = make_backend(name, source=args.lut, fingerprint=fp, threads=args.threads, device=args.device)
    LatencyTable.open(args.lut, here, force=args.force).check_form("deploy" if args.deploy else "train")
    return name


def anchor_first(args: argparse.Namespace, size: int) -> None:
    """--latency lut or hybrid on this device's table: anchor it to the device's speed now (`zoo lut anchor`,
    the record appended to the table) so that the budget is met at today's level; another device's table
    prices at its own device's speed, with nothing to time here."""
    from profiles.lutanchor import ANCHOR_ROUNDS, open_if_here
    from zoo.errors import ConfigError
    from zoo.limits import MAX_ANCHOR_MODELS

    from .console import note
    from .lut import anchor_with_bar
    from .render_lut import anchor_text

    if args.latency not in ("lut", "hybrid") or args.anchor is None or args.budget_ms is None:
        return
    if not 0 <= args.anchor <= MAX_ANCHOR_MODELS:
        raise ConfigError(args.lut, f"--anchor must be 0 to {MAX_ANCHOR_MODELS}, got {args.anchor}")
    table = open_if_here(args.lut, backend=args.backend, threads=args.threads, device=args.device)
    if table is None:
        note(f"{args.lut}: the table of another device or settings: priced at the speed it was measured at "
             "(not anchored here)")
        return
    anchor = anchor_with_bar(table, [args.config], imgsz=size, samples=args.anchor, rounds=ANCHOR_ROUNDS,
                             bar=not args.no_progress, space_file=args.space, scale=args.scale, nc=args.nc)
    note(f"{args.lut}: anchored {anchor_text(anchor)}" + (f"; {anchor.note}" if anchor.note else ""))


def print_event(event: Any) -> None:
    """One line for what the search library reports while it runs (search.events)."""
    from search import Finishing, ScoringChosen, StudyOpened, TableAnchored, TableAnchoring, WorkerLost

    from .console import note, warning

    if isinstance(event, StudyOpened):
        note(f"resuming study {event.name}: {event.done} of {event.total} trials done" if event.resumed
             else f"new study {event.name} at {event.storage}")
    elif isinstance(event, ScoringChosen):
        depth = f"; depth budget: {event.depth_budget}" if event.depth_budget else ""
        note(f"objective {event.objective} ({event.direction}){depth}")
    elif isinstance(event, WorkerLost):
        who = f"worker {event.pid}" if event.pid is not None else "a worker"
        why = "died" if event.reason is None or "is gone" in event.reason else f"went silent ({event.reason})"
        many = "s" if len(event.trials) > 1 else ""
        warning(f"{who} {why}; trial{many} {', '.join(map(str, event.trials))} retried")
    elif isinstance(event, Finishing):
        what = f"re-measuring the top {event.remeasure}" if event.remeasure else "exporting the best so far"
        note(f"finishing: {what}; Ctrl-C again to stop now")
    elif isinstance(event, TableAnchoring):
        many = "s" if event.models > 1 else ""
        note(f"{event.path}: the resumed study's table was timed in an earlier run: anchoring it, timing "
             f"{event.models} model{many} in {event.rounds} rounds now (--no-anchor skips this)")
    elif isinstance(event, TableAnchored):
        if event.factor is None:
            note(f"{event.path}: the resumed study's table is not anchored: {event.skipped}")
        else:
            note(f"{event.path}: the resumed study's table anchored x{event.factor:.3f} on the config"
                 + (f"; {event.note}" if event.note else ""))


UNITS = {"latency_ms": ("fastest seen", "{:.2f} ms"), "params_m": ("smallest seen", "{:.3f} M params"),
         "gflops": ("cheapest seen", "{:.2f} GFLOPs"), "max_layers": ("shallowest seen", "{:.0f} layers")}


def nearest_remeasured(result: Any) -> Any:
    """The re-measured candidate nearest the latency budget (the fastest timed), or None."""
    timed = [c for c in result.remeasured if c.trial is not None and c.latency_ms]
    return min(timed, key=lambda c: c.latency_ms["median"]) if timed else None


def nearest_text(c: Any, base_candidate: Any) -> str:
    """`; nearest re-measured: trial 12 at 44.05 ms, 0.69 of the base timed beside it`: on a machine slower
    at the check than when the budget was chosen, the search's picks can miss an absolute budget while
    standing where they should against the base measured in the same rounds."""
    if c is None:
        return ""
    ms = c.latency_ms["median"]
    base = base_candidate.latency_ms["median"] if base_candidate is not None and base_candidate.latency_ms else None
    beside = f", {ms / base:.2f} of the base timed beside it" if base else ""
    return f"; nearest re-measured: trial {c.trial} at {ms:.2f} ms{beside}"


def closest_text(closest: Any) -> str:
    """`; fastest seen: trial 7 at 35.20 ms`: per budget, the trial nearest it (what could ever be met)."""
    parts = [f"{UNITS[k][0]}: trial {c['trial']} at {UNITS[k][1].format(c['value'])}"
             for k, c in closest.items() if k in UNITS]
    return "".join(f"; {p}" for p in parts)


class Tally:
    """Counts for the progress bar: a study's finished trials (read at the start, and at each poll when
    worker processes run them) plus the trials this process reports one by one. Failures are counted
    as search.failed counts them (report.json and the result table too)."""

    def __init__(self) -> None:
        self.done = self.feasible = self.failed = 0
        self.best: tuple[float, int] | None = None
        self.read = False

    def poll(self, study: Any) -> tuple[int, str]:
        from search import failed, feasible_trials, finished, trial_score

        trials = study.get_trials(deepcopy=False)
        ok = feasible_trials(trials)
        self.done, self.feasible, self.failed = len(finished(trials)), len(ok), len(failed(trials))
        self.best = (trial_score(ok[0]), ok[0].number) if ok else None
        self.read = True
        return self.text()

    def trial(self, event: Any) -> tuple[int, str]:
        self.done += 1
        if event.state == "FAIL":
            self.failed += 1
        elif event.feasible:
            self.feasible += 1
            if event.score is not None and (self.best is None or event.score > self.best[0]):
                self.best = (event.score, event.number)
        return self.text()

    def text(self) -> tuple[int, str]:
        best = f"best {self.best[0]:.2f} (trial {self.best[1]})" if self.best else "no feasible trial yet"
        return self.done, f"{best}, {self.feasible} feasible, {self.failed} failed"


def budget_text(b: Any) -> str:
    """`40 ms, 1.5 M params`: the budgets given, in their units."""
    return ", ".join(f"{v:g} {BUDGET_UNITS[k]}" for k, v in b.as_dict().items() if v is not None)


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the progress bar says what matters (the CLI owns verbosity).
    SQLAlchemy's pool logs a lost database server with tracebacks; the one error line says it."""
    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    quiet = logging.getLogger("sqlalchemy")
    if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False


def export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", required=True, help="Optuna URL, or the study's journal file or folder")
    p.add_argument("--study-name", required=True, help="the study in that storage")
    p.add_argument("--trial", type=int, help="trial number (default: the exported best)")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="where to write the trial's config (YAML)")


def export_run(args: argparse.Namespace) -> int:
    from search import ExportError, export_trial

    from .console import error, note, warning

    quiet_optuna()
    try:
        done = export_trial(args.storage, args.study_name, trial=args.trial, out=args.out)
    except ExportError as e:
        error(str(e))
        return 1
    note(f"wrote {done.path} (trial {done.trial}{f', input size {done.imgsz}' if done.imgsz else ''})")
    if done.violations:
        over = ", ".join(f"{k} {v:+.0%}" for k, v in done.violations.items())
        warning(f"trial {done.trial} breaks the study's budgets ({over} over the limit)")
    return 0
