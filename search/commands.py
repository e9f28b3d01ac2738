"""Subcommands `zoo search`, `zoo score`, `zoo export`: parse, call the library, render."""
from __future__ import annotations

import argparse

from zoo.command import Command
from zoo.errors import ConfigError


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _weights(text: str) -> list[float]:
    try:
        ws = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers expected, got {text!r}") from None
    if not ws:
        raise argparse.ArgumentTypeError("at least one weight")
    return ws


def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CFG", help="YAML file or built-in name")
    p.add_argument("--scale", help="scale of a `scales` config")
    p.add_argument("--nc", type=_positive_int, help="override the number of classes")
    p.add_argument("--stage-weights", type=_weights, metavar="W2,W4,...",
                   help="weights of strides 2,4,8,16,32 (default: the config's search: block, else 0,0,1,1,6)")
    p.add_argument("--scope", choices=("all", "backbone"), help="rows scored (default all)")
    p.add_argument("--method", choices=("analytic", "forward"), default="analytic")
    p.add_argument("--imgsz", type=_positive_int, default=320, help="input size of the forward method")
    p.add_argument("--repeats", type=_positive_int, default=2, help="forward passes averaged (forward method)")
    p.add_argument("--format", choices=("table", "json"), default="table")


def _score_run(args: argparse.Namespace) -> int:
    from zoo.builder import build_model
    from zoo.config import load_config

    from .render import print_score
    from .score import mae_score
    from .settings import load_settings

    cfg = load_config(args.config, scale=args.scale, nc=args.nc)
    s = load_settings(cfg, stage_weights=args.stage_weights, scope=args.scope)
    model = build_model(cfg)
    score = mae_score(model, weights=s.stage_weights, scope=s.scope, unscored=s.unscored, method=args.method,
                      imgsz=args.imgsz, repeats=args.repeats)
    print_score(cfg.name, score, args.format)
    return 0


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CFG", help="base config: YAML file or built-in name")
    p.add_argument("--scale", help="scale of a `scales` config")
    p.add_argument("--nc", type=_positive_int, help="override the number of classes")
    b = p.add_argument_group("budgets (at least one)")
    b.add_argument("--budget-ms", type=_positive_float, help="latency budget, median ms")
    b.add_argument("--budget-gflops", type=_positive_float, help="GFLOPs budget (2 x fvcore MACs)")
    b.add_argument("--budget-params", type=_positive_float, help="parameter budget in millions")
    b.add_argument("--max-layers", type=_positive_int, help="most convs in the deploy form")
    m = p.add_argument_group("measurement")
    m.add_argument("--imgsz", type=_positive_int, default=640)
    m.add_argument("--threads", type=_positive_int, default=1)
    m.add_argument("--device", default="cpu")
    m.add_argument("--runs", type=_positive_int, default=20, help="timed runs per candidate (default 20)")
    m.add_argument("--warmup-s", type=float, default=0.3, help="warm-up seconds per candidate (default 0.3)")
    m.add_argument("--deploy", action="store_true",
                   help="time and count the inference graph (compare with `zoo profile --deploy`)")
    s = p.add_argument_group("search")
    s.add_argument("--trials", type=_positive_int, default=100, help="the study's total (resume adds the missing)")
    s.add_argument("--timeout", type=_positive_float, help="seconds per worker")
    s.add_argument("--sampler", choices=("nsga2", "tpe", "random"), default="nsga2",
                   help="nsga2 (default: a genetic search, cheap per trial up to 10,000 trials), tpe, random")
    s.add_argument("--objectives", default="score", choices=("score", "score,latency"),
                   help="score,latency: a Pareto front (use with nsga2)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=_positive_int, default=1, help="local processes on one study")
    s.add_argument("--storage", help="Optuna URL (sqlite:///x.db, postgresql://...) or a journal file")
    s.add_argument("--study-name", help="default <config>-<imgsz>-<budget>ms")
    s.add_argument("--space", metavar="FILE", help="search space YAML (keys of the search: block)")
    s.add_argument("--stage-weights", type=_weights, metavar="W2,W4,...")
    s.add_argument("--scope", choices=("all", "backbone"))
    s.add_argument("--top-k", type=_positive_int, default=5, help="candidates re-measured at the end")
    s.add_argument("-o", "--out", help="export folder (default runs/search/<study>)")
    s.add_argument("--no-progress", action="store_true")


def _search_run(args: argparse.Namespace) -> int:
    from zoo.config import load_config

    from . import run_search
    from .evaluate import Budget, Measure
    from .render import SearchProgress, print_failure, print_line, print_result
    from .settings import load_settings
    from .worker import SearchOptions

    budget = Budget(args.budget_ms, args.budget_gflops, args.budget_params, args.max_layers)
    if not budget.any():
        raise ConfigError(args.config, "give a budget: --budget-ms, --budget-gflops, --budget-params or --max-layers")
    cfg = load_config(args.config, scale=args.scale, nc=args.nc)
    settings = load_settings(cfg, space_file=args.space, stage_weights=args.stage_weights, scope=args.scope)
    opts = SearchOptions(
        budget=budget, measure=Measure(imgsz=args.imgsz, threads=args.threads, device=args.device, runs=args.runs,
                                       warmup_s=args.warmup_s, deploy=args.deploy),
        settings=settings, trials=args.trials, timeout_s=args.timeout, sampler=args.sampler,
        objectives=tuple(args.objectives.split(",")), seed=args.seed, workers=args.workers, storage=args.storage,
        study_name=args.study_name, out=args.out, top_k=args.top_k, plugins=tuple(getattr(args, "plugin", [])))
    with SearchProgress(args.trials, enabled=not args.no_progress) as bar:
        result = run_search(cfg, opts, on_trial=bar.trial, on_poll=bar.poll)
    print_result(result)
    if result.interrupted:
        print_line("interrupted: exported the best so far; run the same command to resume")
    if result.best is None:
        lat = f"{result.base.latency_ms['median']:.2f} ms" if result.base and result.base.latency_ms else "?"
        print_failure(f"no candidate meets the budget {_budget_text(budget)} after re-measurement "
                      f"({result.n_feasible} feasible in the search, {result.n_trials} trials; base: {lat}); "
                      f"relax the budget or widen the space")
        return 1
    return 130 if result.interrupted else 0


def _budget_text(b: object) -> str:
    names = {"latency_ms": "ms", "gflops": "GFLOPs", "params_m": "M params", "max_layers": "layers"}
    return ", ".join(f"{v:g} {names[k]}" for k, v in b.as_dict().items() if v is not None)  # type: ignore[attr-defined]


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", required=True, help="Optuna URL, or the study's journal file or folder")
    p.add_argument("--study-name", required=True)
    p.add_argument("--trial", type=int, help="trial number (default: the exported best)")
    p.add_argument("-o", "--out", required=True, metavar="FILE")


def _export_run(args: argparse.Namespace) -> int:
    from .export import ExportError, export_trial
    from .render import print_failure, print_line

    try:
        number, path = export_trial(args.storage, args.study_name, trial=args.trial, out=args.out)
    except ExportError as e:
        print_failure(str(e))
        return 1
    print_line(f"wrote {path} (trial {number})")
    return 0


COMMANDS = [
    Command("search", "Search widths and depths of a config under budgets (MAE score, Optuna); export the best.",
            _search_args, _search_run,
            "examples:\n  zoo search yolov5s --budget-ms 40 --imgsz 320 --trials 60\n"
            "  zoo search my.yaml --budget-gflops 5 --sampler nsga2 --objectives score,latency --budget-ms 30\n"
            "  zoo search yolov5s --budget-ms 40 --storage sqlite:///s.db --study-name s40 --workers 2"),
    Command("score", "Training-free MAE score of a config, with its per-stage parts.", _score_args, _score_run,
            "examples:\n  zoo score yolov5s\n  zoo score damo.yaml --scope backbone --stage-weights 0,0,1,1,16\n"
            "  zoo score yolov5s --method forward --imgsz 320 --format json"),
    Command("export", "Write any trial of a study as an explicit config.", _export_args, _export_run,
            "examples:\n  zoo export --storage runs/search/yolov5s-320-40ms --study-name yolov5s-320-40ms -o b.yaml\n"
            "  zoo export --storage sqlite:///s.db --study-name s40 --trial 12 -o t12.yaml"),
]
