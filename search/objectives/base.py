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

SCOPES = ("all", "backbone")
DIRECTIONS = ("maximize", "minimize")


# replaced by profiles.rowcosts ----------------------------------------------------------------------
@dataclass(frozen=True)
class ConvTerm:
    """One conv or linear call of the deploy form: its fan-in (C_in*k_h*k_w/groups) and out channels."""

    fan_in: float
    out_channels: int
    kind: str = "conv"  # "conv" | "linear"


@dataclass(frozen=True)
class RowCost:
    """One row's cost: params, fvcore MACs (zoo profile's conventions), deploy-form calls in order."""

    params: int
    macs: int
    convs: tuple[ConvTerm, ...] = ()
    out_shape: tuple[int, ...] | None = None

    @property
    def layers(self) -> int:
        """Conv calls of the deploy form, as TinyNAS counts layers (linear layers are not counted)."""
        return sum(1 for c in self.convs if c.kind == "conv")
# ------------------------------------------------------------------------ replaced by profiles.rowcosts


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
