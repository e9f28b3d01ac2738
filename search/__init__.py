"""Training-free search of widths and depths (MAE score, Optuna) under latency and cost budgets."""
from __future__ import annotations

from .evaluate import Budget, CandidateError, Evaluation, Measure, evaluate
from .export import Candidate, ExportError, SearchResult, export_best, export_trial, feasible_trials, trial_score
from .recovery import counted
from .run import run_search
from .score import DEFAULT_STAGE_WEIGHTS, ConfigScore, MAEScore, StageScore, mae_score, score_config
from .settings import SearchSettings, load_settings
from .space import SearchSpace, build_space
from .worker import SearchOptions, TrialEvent

__all__ = [
    "Budget", "Candidate", "CandidateError", "DEFAULT_STAGE_WEIGHTS", "Evaluation", "ExportError", "MAEScore",
    "Measure", "SearchOptions", "SearchResult", "SearchSettings", "SearchSpace", "StageScore", "TrialEvent",
    "build_space", "counted", "evaluate", "export_best", "export_trial", "feasible_trials", "load_settings",
    "mae_score", "run_search", "score_config", "trial_score", "ConfigScore",
]
