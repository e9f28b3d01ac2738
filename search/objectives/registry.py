"""The objective registry: `@register_objective("mae", direction="maximize", ...)` on a pure function.

A registration says what the search needs to know besides the value: the direction, the objective's own
stage weights (when the context gives none), whether the value reads the image size, and whether it grows
without bound in depth (then a search sets a default depth budget, see `depth_budget`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Sequence

from .base import DIRECTIONS, ObjectiveContext, ObjectiveValue, RowTerms

ObjectiveFn = Callable[[Sequence[RowTerms], ObjectiveContext], ObjectiveValue]


@dataclass(frozen=True)
class Objective:
    name: str
    fn: ObjectiveFn
    direction: str
    description: str
    stage_weights: tuple[float, ...] | None
    uses_imgsz: bool
    grows_with_depth: bool  # unbounded in depth at fixed width: the search must bound depth

    def __call__(self, rows: Sequence[RowTerms], ctx: ObjectiveContext) -> ObjectiveValue:
        return self.fn(rows, ctx)

    def weights(self, ctx: ObjectiveContext) -> tuple[float, ...]:
        """The context's stage weights, else this objective's own."""
        w = ctx.stage_weights if ctx.stage_weights is not None else self.stage_weights
        if w is None:
            raise ValueError(f"objective {self.name!r} reads no stage weights")
        return w


_OBJECTIVES: dict[str, Objective] = {}


def register_objective(name: str, *, direction: str = "maximize", description: str = "",
                       stage_weights: Sequence[float] | None = None, uses_imgsz: bool = False,
                       grows_with_depth: bool = False) -> Callable[[ObjectiveFn], ObjectiveFn]:
    """Decorator registering `fn(rows, ctx) -> ObjectiveValue` under `name`; duplicates are an error."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction= must be one of {', '.join(DIRECTIONS)}, got {direction!r}")

    def wrap(fn: ObjectiveFn) -> ObjectiveFn:
        if name in _OBJECTIVES:
            old = _OBJECTIVES[name].fn
            raise ValueError(f"objective {name!r} is already registered (by {old.__module__}.{old.__qualname__})")
        doc = (fn.__doc__ or "").strip().splitlines()
        _OBJECTIVES[name] = Objective(name, fn, direction, description or (doc[0] if doc else ""),
                                      tuple(float(w) for w in stage_weights) if stage_weights is not None else None,
                                      uses_imgsz, grows_with_depth)
        return fn

    return wrap


def unregister_objective(name: str) -> None:
    """Remove one registration (tests that register a throw-away objective clean up with this)."""
    _OBJECTIVES.pop(name, None)


def get_objective(name: str) -> Objective:
    """The registered objective; KeyError with the known names and a did-you-mean otherwise."""
    if name not in _OBJECTIVES:
        near = difflib.get_close_matches(name, list(_OBJECTIVES), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise KeyError(f"unknown objective {name!r}{hint} (known: {', '.join(objective_names())})")
    return _OBJECTIVES[name]


def objective_names() -> tuple[str, ...]:
    return tuple(sorted(_OBJECTIVES))
