"""Training-free search of widths and depths (MAE score, Optuna) under latency and cost budgets."""
from __future__ import annotations

from .evaluate import Budget, CandidateError, Evaluation, Measure, evaluate
from .events import Finishing, ScoringChosen, StudyOpened, TableAnchored, TableAnchoring, TrialEvent, WorkerLost
from .export import (Candidate, ExportedTrial, ExportError, SearchResult, export_best, export_trial, feasible_trials,
                     trial_score)
from .recovery import counted, failed, finished
from .run import run_search
from .score import DEFAULT_STAGE_WEIGHTS, ConfigScore, MAEScore, StageScore, mae_score, score_config
from .settings import SearchSettings, load_settings
from .space import SearchSpace, build_space
from .storage import StorageError
from .worker import SearchOptions

__all__ = [
    "Budget", "Candidate", "CandidateError", "DEFAULT_STAGE_WEIGHTS", "Evaluation", "ExportError", "ExportedTrial",
    "Finishing", "MAEScore", "Measure", "SearchOptions", "SearchResult", "SearchSettings", "SearchSpace",
    "StageScore", "StorageError", "ScoringChosen", "StudyOpened", "TableAnchored", "TableAnchoring", "TrialEvent",
    "WorkerLost",
    "build_space", "counted", "evaluate", "export_best", "export_trial", "failed", "feasible_trials", "finished",
    "load_settings",
    "mae_score", "run_search", "score_config", "trial_score", "ConfigScore",
]
