"""What a search is told besides its config: objective, stage weights, scope, unscored rows, and each
search dimension's key (widths, depths, imgsz, kernels, expansions, blocks: search.dimensions).

Defaults < the config's `search:` block < a `--space FILE` (the same keys, top level or under
`search:`) < the command line. Parsing and validation only (a dimension checks its own key); the space
model is in space.py. `as_dict` / `settings_from_record` are the one serialiser (study, resume, export).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from zoo.config import Config
from zoo.errors import ConfigError, shown
from zoo.limits import MAX_ARG
from zoo.yamlio import read_file

from .dimensions.numbers import numbers as _numbers
from .objectives.base import SCOPES

BASE_KEYS = ("objective", "stage_weights", "scope", "unscored")
DEFAULT_OBJECTIVE = "feature_entropy"  # lowest regret on YOLOBench (bench/results/objective_validity.md)


def setting_keys() -> tuple[str, ...]:
    """Every key a `search:` block may hold: the scoring keys and each registered dimension's."""
    from .dimensions import setting_keys as dimension_keys

    return BASE_KEYS + dimension_keys()


@dataclass(frozen=True)
class SearchSettings:
    """What the `search:` block, a space file and the command line can set. `widths` and `depths` are
    fields of their own (the defaults most searches change); every other dimension's key is in `dims`."""

    stage_weights: tuple[float, ...] | None = None  # None: the objective's own
    scope: str = "all"
    unscored: tuple[int, ...] = ()
    widths: Any = None  # list | {stage: list} | None (defaults)
    depths: Any = None  # list of multipliers | {row: list of counts} | None (defaults)
    objective: str = DEFAULT_OBJECTIVE
    dims: Mapping[str, Any] = field(default_factory=dict)  # other dimensions' keys: imgsz, kernels, blocks...

    def value(self, key: str) -> Any:
        """A dimension's setting (None: not set)."""
        if key in ("widths", "depths"):
            return getattr(self, key)
        return self.dims.get(key)

    def as_dict(self) -> dict[str, Any]:
        """The one serialised form (a study's record; `settings_from_record` reads it back): every field,
        the dimensions' keys at the top level, as a `search:` block writes them."""
        from .dimensions.base import jsonable

        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dims":
                out.update({k: jsonable(v) for k, v in value.items()})
            else:
                out[f.name] = jsonable(list(value) if isinstance(value, tuple) else value)
        return out


def settings_from_record(record: Mapping[str, Any], where: str) -> SearchSettings:
    """Settings read back from `as_dict` (a study's record): the same validation as a `search:` block, so
    nothing is copied by hand and a key the record holds is never dropped."""
    data = {k: v for k, v in record.items() if v is not None}
    return _validated(data, where)


def load_settings(cfg: Config, *, space_file: str | Path | None = None,
                  stage_weights: Sequence[float] | None = None, scope: str | None = None,
                  objective: str | None = None, imgsz: Any = None) -> SearchSettings:
    """Defaults < the config's `search:` block < the space file < the command line (`imgsz`: a list of
    sizes or a FROM:TO[:STEP] range searched as a dimension)."""
    merged: dict[str, Any] = {}
    keys = setting_keys()
    for source, data in ((cfg.path, cfg.search or {}), (str(space_file), _read_space(space_file))):
        for key, value in data.items():
            if key not in keys:
                raise ConfigError(source, f"search: unknown key {key!r} (allowed: {', '.join(keys)})")
            merged[key] = value
        if data:
            _validated(data, source)  # a bad value is named in the file that holds it
    if stage_weights is not None:
        merged["stage_weights"] = list(stage_weights)
    if scope is not None:
        merged["scope"] = scope
    if objective is not None:
        merged["objective"] = objective
    if imgsz is not None:
        merged["imgsz"] = imgsz
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
    from .dimensions import ordered

    values: dict[str, Any] = {}
    for dim in ordered():
        if dim.key is None or d.get(dim.key) is None:
            continue
        try:
            values[dim.key] = dim.parse(d[dim.key])
        except ValueError as e:
            raise err(f"{dim.key} {e}") from None
    unknown = [k for k in d if k not in BASE_KEYS and k not in values and d[k] is not None]
    if unknown:
        raise err(f"unknown key {unknown[0]!r} (allowed: {', '.join(setting_keys())})")
    return SearchSettings(tuple(float(w) for w in weights) if weights is not None else None, scope,
                          tuple(unscored), values.pop("widths", None), values.pop("depths", None), objective, values)
