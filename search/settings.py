"""What a search is told besides its config: stage weights, scope, unscored rows, widths, depths.

Defaults < the config's `search:` block < a `--space FILE` (the same keys, top level or under
`search:`) < the command line. Parsing and validation only; the space model is in space.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from zoo.config import Config
from zoo.errors import ConfigError, shown
from zoo.limits import MAX_ARG, MAX_MULTIPLE, MAX_REPEATS, number_problem
from zoo.yamlio import read_file

from .objectives.base import SCOPES

SETTING_KEYS = ("objective", "stage_weights", "scope", "unscored", "widths", "depths")
DEFAULT_OBJECTIVE = "feature_entropy"  # lowest regret on YOLOBench (bench/results/objective_validity.md)


@dataclass(frozen=True)
class SearchSettings:
    """What the `search:` block, a space file and the command line can set."""

    stage_weights: tuple[float, ...] | None = None  # None: the objective's own
    scope: str = "all"
    unscored: tuple[int, ...] = ()
    widths: Any = None  # list | {stage: list} | None (defaults)
    depths: Any = None  # list of multipliers | {row: list of counts} | None (defaults)
    objective: str = DEFAULT_OBJECTIVE

    def as_dict(self) -> dict[str, Any]:
        return {"objective": self.objective,
                "stage_weights": list(self.stage_weights) if self.stage_weights is not None else None,
                "scope": self.scope, "unscored": list(self.unscored), "widths": self.widths, "depths": self.depths}


def load_settings(cfg: Config, *, space_file: str | Path | None = None,
                  stage_weights: Sequence[float] | None = None, scope: str | None = None,
                  objective: str | None = None) -> SearchSettings:
    """Defaults < the config's `search:` block < the space file < the command line."""
    merged: dict[str, Any] = {}
    for source, data in ((cfg.path, cfg.search or {}), (str(space_file), _read_space(space_file))):
        for key, value in data.items():
            if key not in SETTING_KEYS:
                raise ConfigError(source, f"search: unknown key {key!r} (allowed: {', '.join(SETTING_KEYS)})")
            merged[key] = value
    if stage_weights is not None:
        merged["stage_weights"] = list(stage_weights)
    if scope is not None:
        merged["scope"] = scope
    if objective is not None:
        merged["objective"] = objective
    return _validated(merged, cfg.path)


def _read_space(path: str | Path | None) -> Mapping[str, Any]:
    if path is None:
        return {}
    p = Path(path)
    data = read_file(p).data
    if isinstance(data, dict) and isinstance(data.get("search"), dict):
        data = data["search"]
    if not isinstance(data, dict):
        raise ConfigError(str(p), "a search space file must be a mapping of search keys")
    return data


def _validated(d: Mapping[str, Any], path: str) -> SearchSettings:
    def err(text: str) -> ConfigError:
        return ConfigError(path, f"search: {text}")

    from .objectives import get_objective

    objective = d.get("objective", DEFAULT_OBJECTIVE)
    try:
        get_objective(objective if isinstance(objective, str) else "")
    except KeyError as e:
        raise err(e.args[0]) from None
    weights = d.get("stage_weights")
    if weights is not None and (not isinstance(weights, (list, tuple)) or not weights
                                or not _numbers(list(weights), limit=MAX_ARG)):
        raise err(f"stage_weights must be a non-empty list of numbers up to {MAX_ARG:,}, got {shown(weights)}")
    scope = d.get("scope", "all")
    if scope not in SCOPES:
        raise err(f"scope must be one of {', '.join(SCOPES)}, got {shown(scope)}")
    unscored = d.get("unscored", [])
    if not isinstance(unscored, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in unscored):
        raise err(f"unscored must be a list of row indices, got {shown(unscored)}")
    widths = d.get("widths")
    if widths is not None:
        lists = widths.values() if isinstance(widths, dict) else [widths]
        if not all(_numbers(v, positive=True, limit=MAX_MULTIPLE) for v in lists):
            raise err(f"widths must be a list of multiples in (0, {MAX_MULTIPLE}] or {{stage: list}}, "
                      f"got {shown(widths)}")
    depths = d.get("depths")
    if depths is not None:
        ok = (all(_numbers(v, positive=True, integer=True, limit=MAX_REPEATS) for v in depths.values()) and
              all(isinstance(k, int) for k in depths)) if isinstance(depths, dict) else \
            _numbers(depths, positive=True, limit=MAX_MULTIPLE)
        if not ok:
            raise err(f"depths must be a list of multipliers in (0, {MAX_MULTIPLE}] or {{row: list of counts "
                      f"1..{MAX_REPEATS}}}, got {shown(depths)}")
    return SearchSettings(tuple(float(w) for w in weights) if weights is not None else None, scope,
                          tuple(unscored), widths, depths, objective)


def _numbers(v: Any, *, positive: bool = False, integer: bool = False, limit: float) -> bool:
    """A non-empty list of finite numbers with |x| <= limit (compared before any float() can overflow)."""
    return (isinstance(v, list) and bool(v) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and number_problem(x, limit=limit) is None
        and (not positive or x > 0) and (not integer or isinstance(x, int)) for x in v))
