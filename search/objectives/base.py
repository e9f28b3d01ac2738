"""What every objective reads and returns: per-row terms of one candidate, the context, the value.

An objective is a pure function `(rows, ctx) -> ObjectiveValue` over the candidate's rows in order
(RowTerms: out channels, stride and output size at the real image size, and the row's cost: params,
MACs and the deploy-form conv calls). It never builds or runs a model, so the same function scores a
built model, a row plan, or a YOLOBench variant. Values are compared with `rank_key`: feasible before
infeasible, then by the objective's direction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from profiles.rowcosts import ConvTerm, RowCost
from zoo.plan import ModelPlan

__all__ = ["BaseSummary", "ConvTerm", "ObjectiveContext", "ObjectiveValue", "RowCost", "RowTerms",
           "rank_key", "rows_from_plan"]

SCOPES = ("all", "backbone")
DIRECTIONS = ("maximize", "minimize")




@dataclass(frozen=True)
class RowTerms:
    """One row of a candidate at the real image size (`out_hw` is None for a head)."""

    index: int
    section: str  # "backbone" | "head"
    module: str
    out_channels: int | None
    stride: float | None
    out_hw: tuple[int, int] | None
    cost: RowCost


def rows_from_plan(plan: ModelPlan, costs: Sequence[RowCost]) -> tuple[RowTerms, ...]:
    """A planned candidate's rows with their costs (one RowCost per plan row, in order)."""
    out = []
    for rp, cost in zip(plan.rows, costs, strict=True):
        hw = (rp.out.height, rp.out.width) if rp.out.channels is not None else None
        out.append(RowTerms(rp.index, rp.section, rp.row.module, rp.out_channels, rp.stride, hw, cost))
    return tuple(out)


@dataclass(frozen=True)
class BaseSummary:
    """What depth budgets are relative to: the base config's deploy-form layers and effectiveness."""

    layers: int
    effectiveness: float
    macs: int
    params: int


@dataclass(frozen=True)
class ObjectiveContext:
    """How to score: image size, stage weights (None: the objective's own), scope, unscored rows, base."""

    imgsz: int = 640
    stage_weights: tuple[float, ...] | None = None
    scope: str = "all"
    unscored: frozenset[int] = frozenset()
    base: BaseSummary | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope= must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if isinstance(self.imgsz, bool) or not isinstance(self.imgsz, int) or self.imgsz < 1:
            raise ValueError(f"imgsz= must be a positive integer, got {self.imgsz!r}")
        if self.stage_weights is not None:
            w = tuple(float(x) for x in self.stage_weights)
            if not w or not all(math.isfinite(x) for x in w):
                raise ValueError(f"stage_weights= must be a non-empty list of finite numbers, got {self.stage_weights!r}")
            object.__setattr__(self, "stage_weights", w)
        object.__setattr__(self, "unscored", frozenset(int(i) for i in self.unscored))

    def scored(self, rows: Sequence[RowTerms]) -> list[RowTerms]:
        """The rows an architecture score reads: the scope's sections, less the unscored rows."""
        return [r for r in rows if (self.scope == "all" or r.section == "backbone") and r.index not in self.unscored]


@dataclass(frozen=True)
class ObjectiveValue:
    """An objective's value for one candidate; infeasible when a budget of the objective itself fails."""

    value: float
    feasible: bool = True
    reason: str = ""  # why it is infeasible
    terms: Mapping[str, float] = field(default_factory=dict)  # named parts (stages, effectiveness, ...)

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "feasible": self.feasible, "reason": self.reason, "terms": dict(self.terms)}


def rank_key(v: ObjectiveValue, direction: str = "maximize") -> tuple[int, float]:
    """Sort key, larger is better: any feasible value beats every infeasible one."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction= must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return (1 if v.feasible else 0, v.value if direction == "maximize" else -v.value)
