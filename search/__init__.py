"""Training-free search of widths and depths (MAE score, Optuna) under latency and cost budgets."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .export import Candidate, ExportError, SearchResult, export_best, export_trial, feasible_trials, trial_score
from .objective import Budget, CandidateError, Evaluation, Measure, evaluate
from .score import DEFAULT_STAGE_WEIGHTS, MAEScore, StageScore, mae_score
from .space import SearchSettings, SearchSpace, build_space, load_settings
from .study import SearchOptions, counted, run_study


def run_search(config: Any, options: SearchOptions, *,
               on_progress: Callable[[Any], None] | None = None) -> SearchResult:
    """Create or resume a study, run its missing trials, re-measure the top ones and export.

    `config` is a built-in name, a path, a mapping or a Config. Ctrl-C stops the trials and still
    exports the best so far (`result.interrupted`); `result.best` is None when nothing meets the budgets.
    """
    from zoo.config import load_config

    cfg = load_config(config)
    if not options.budget.any():
        raise ValueError("give at least one budget (latency, GFLOPs, params or layers)")
    info = run_study(cfg, options, on_progress=on_progress)
    out = Path(options.out) if options.out else Path(info.handle.storage).parent if "://" not in info.handle.storage \
        else Path("runs/search") / info.handle.study_name
    top_k = min(options.top_k, 2) if info.interrupted else options.top_k
    return export_best(info.study, base=info.handle.base, budget=options.budget, measure=options.measure,
                       settings=info.space.settings, out=out, top_k=top_k, factor=options.remeasure_factor,
                       storage=info.handle.storage, interrupted=info.interrupted)


__all__ = [
    "Budget", "Candidate", "CandidateError", "DEFAULT_STAGE_WEIGHTS", "Evaluation", "ExportError", "MAEScore",
    "Measure", "SearchOptions", "SearchResult", "SearchSettings", "SearchSpace", "StageScore", "build_space",
    "counted", "evaluate", "export_best", "export_trial", "feasible_trials", "load_settings", "mae_score",
    "run_search", "trial_score",
]
