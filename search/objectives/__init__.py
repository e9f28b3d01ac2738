"""Training-free objectives of a candidate, computed from its per-row terms (a registry, one module each).

`get_objective("mae")(rows, ctx)` -> ObjectiveValue. Built-ins: mae (MAE-NAS, exact to TinyNAS),
deepmad (DeepMAD's entropy with the resolution term under its effectiveness budget), feature_entropy
(MAE counted per feature-map unit), gmacs and params. `depth_budget` is the default depth budget a search
sets for objectives that grow without bound in depth; `validity(name)` is what YOLOBench measured of one.
"""
from __future__ import annotations

from . import deepmad, feature_entropy, gmacs, mae, params  # noqa: F401  (importing registers them)
from .base import (BaseSummary, ConvTerm, ObjectiveContext, ObjectiveValue, RowCost, RowTerms, rank_key,
                   rows_from_plan)
from .budgets import DepthBudget, DepthCheck, check_depth, depth_budget, layers, summarize
from .registry import Objective, get_objective, objective_names, register_objective, unregister_objective
from .validity import GroupValidity, Validity, validity, validity_report

__all__ = ["BaseSummary", "ConvTerm", "DepthBudget", "DepthCheck", "GroupValidity", "Objective", "ObjectiveContext",
           "ObjectiveValue", "RowCost", "RowTerms", "Validity", "check_depth", "depth_budget", "get_objective",
           "layers", "objective_names", "rank_key", "register_objective", "rows_from_plan", "summarize",
           "unregister_objective", "validity", "validity_report"]
