"""Depth budgets relative to the base, for objectives that grow without bound in depth.

An entropy score (mae, deepmad, feature_entropy) rises with every layer added at any width, so a search
that maximises it under a latency budget alone buys depth with width: the deep, narrow models that
train worst. TinyNAS never searches without a layer budget (DAMO-YOLO: 20-25 layers), and DeepMAD
bounds the effectiveness rho = L / w_bar. The default here, when an objective is registered with
`grows_with_depth` and the user set no depth budget of their own:

    layers <= base layers        (deploy-form conv layers of the whole candidate, as TinyNAS counts)

the base's own value: a candidate may be narrower or wider, but never deeper than the base. An
effectiveness bound (DeepMAD's rho over the scored rows) is the user's to add: as a default it also
refused every candidate narrower at the same depth, which left almost none feasible under a budget
below the base (12 of 1,500 random yolov5s candidates, none of them under 80% of its GFLOPs).
Objectives that do not grow with depth (gmacs, params) get no default budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .base import BaseSummary, ObjectiveContext, RowTerms
from .deepmad import effectiveness
from .registry import Objective


@dataclass(frozen=True)
class DepthBudget:
    max_layers: int | None
    max_effectiveness: float | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"max_layers": self.max_layers, "max_effectiveness": self.max_effectiveness, "reason": self.reason}


@dataclass(frozen=True)
class DepthCheck:
    ok: bool
    layers: int
    effectiveness: float
    violated: str | None  # "layers" | "effectiveness" | None


def layers(rows: Sequence[RowTerms]) -> int:
    """Deploy-form conv layers of every row (linear layers not counted)."""
    return sum(r.cost.layers for r in rows)


def summarize(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> BaseSummary:
    """The base's layers, effectiveness, MACs and params: what a default depth budget is relative to."""
    return BaseSummary(layers=layers(rows), effectiveness=effectiveness(rows, ctx),
                       macs=sum(r.cost.macs for r in rows), params=sum(r.cost.params for r in rows))


def depth_budget(objective: Objective, base: BaseSummary, *, max_layers: int | None = None,
                 max_effectiveness: float | None = None) -> DepthBudget | None:
    """The depth budget a search sets: the user's where given; for a depth-unbounded objective the base's."""
    if max_layers is not None or max_effectiveness is not None:
        return DepthBudget(max_layers, max_effectiveness, "set by the user")
    if not objective.grows_with_depth:
        return None
    # Layers only: bounding effectiveness too (narrower at the same depth raises it) left 12 of 1,500 random
    # yolov5s candidates feasible and none of them under 80% of its GFLOPs (layers alone: 43 and 19 of 600).
    return DepthBudget(base.layers, None, f"{objective.name} grows without bound in depth: layers at most the "
                                          f"base's ({base.layers})")


def check_depth(rows: Sequence[RowTerms], ctx: ObjectiveContext, budget: DepthBudget | None) -> DepthCheck:
    """Whether a candidate meets a depth budget (cheap: its row terms only)."""
    n, rho = layers(rows), effectiveness(rows, ctx)
    if budget is not None and budget.max_layers is not None and n > budget.max_layers:
        return DepthCheck(False, n, rho, "layers")
    if budget is not None and budget.max_effectiveness is not None and rho > budget.max_effectiveness * (1 + 1e-12):
        return DepthCheck(False, n, rho, "effectiveness")
    return DepthCheck(True, n, rho, None)
