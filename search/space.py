"""The search space of a base config, and candidates resolved to plain explicit configs.

Derived space (SPEC §6): rows are grouped into stages by output stride, backbone and head apart; each
stage with channel arguments gets one width multiplier (relative to the base config's channels), each
row whose YAML repeats exceed 1 gets a depth (an explicit repeat count). Defaults:
  widths  DEFAULT_WIDTHS for every stage (1.0 is the base);
  depths  every count from 1 to twice the base's resolved repeats (at least 1..2).
A `search:` block of the config or a `--space FILE` (the same keys, top level or under `search:`)
may set: `widths` (a list for every stage, or {stage: list}, stage names as `backbone/8`),
`depths` (a list of multipliers of the base repeats, or {row: list of counts}), `stage_weights`,
`scope` (all|backbone) and `unscored` (row indices). The file overrides the block; the command line
overrides both.

A module's channel arguments are the YAML positions in its class attribute `channel_args`
(TinyNAS blocks: out and btn); without one, modules with the `out_arg` rule have position 0 and
other modules none. A width multiple scales every channel argument of a row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from zoo.builder import build_model
from zoo.config import Config, Row, config_to_mapping, load_config
from zoo.errors import ConfigError, shown
from zoo.limits import MAX_ARG, MAX_MULTIPLE, MAX_REPEATS, number_problem
from zoo.registry import REGISTRY, ensure_builtin_modules
from zoo.yamlio import read_file
from zoo.rules import anchors_per_level, make_divisible, scale_repeats

from .score import DEFAULT_STAGE_WEIGHTS, SCOPES

DEFAULT_WIDTHS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25)
UNIFORM_DEPTHS: tuple[float, ...] = (0.25, 0.33, 0.5, 0.67, 1.0, 1.33)  # YOLO's depth multiples
SETTING_KEYS = ("stage_weights", "scope", "unscored", "widths", "depths")


@dataclass(frozen=True)
class SearchSettings:
    """What the `search:` block, a space file and the command line can set."""

    stage_weights: tuple[float, ...] = DEFAULT_STAGE_WEIGHTS
    scope: str = "all"
    unscored: tuple[int, ...] = ()
    widths: Any = None  # list | {stage: list} | None (defaults)
    depths: Any = None  # list of multipliers | {row: list of counts} | None (defaults)

    def as_dict(self) -> dict[str, Any]:
        return {"stage_weights": list(self.stage_weights), "scope": self.scope, "unscored": list(self.unscored),
                "widths": self.widths, "depths": self.depths}


@dataclass(frozen=True)
class StageChoice:
    name: str  # "backbone/8"
    rows: tuple[int, ...]
    choices: tuple[float, ...]

    @property
    def param(self) -> str:
        return f"w:{self.name}"


@dataclass(frozen=True)
class DepthChoice:
    row: int
    choices: tuple[int, ...]
    base: int
    yaml: int = 1  # the row's repeats as written (uniform depth multiples apply to it)

    @property
    def param(self) -> str:
        return f"d:{self.row}"


@dataclass(frozen=True)
class SearchSpace:
    """Choice lists over a base config; Optuna parameters are indices into them (ordered for TPE)."""

    base: Config
    strides: tuple[float | None, ...]
    stages: tuple[StageChoice, ...]
    depths: tuple[DepthChoice, ...]
    settings: SearchSettings = field(default_factory=SearchSettings)

    def dimensions(self) -> dict[str, int]:
        """Parameter name -> number of choices (fixed choices are not parameters)."""
        dims = {s.param: len(s.choices) for s in self.stages if len(s.choices) > 1}
        dims.update({d.param: len(d.choices) for d in self.depths if len(d.choices) > 1})
        return dims

    def uniform_params(self, width: float = 1.0, depth: float | None = None) -> dict[str, int]:
        """Every stage at one width multiple (of the base); repeats as the base, or as the YAML
        repeats scaled by one depth multiple (YOLO's rule); nearest choices."""
        params = {s.param: _nearest(s.choices, width) for s in self.stages if len(s.choices) > 1}
        params.update({d.param: _nearest(d.choices, d.base if depth is None else scale_repeats(d.yaml, depth))
                       for d in self.depths if len(d.choices) > 1})
        return params

    def uniform_grid(self) -> list[tuple[float, float, dict[str, int]]]:
        """(depth multiple, width multiple of the base, params) of the uniform scalings in the space:
        the YOLO depth multiples within half to twice the base's, every width choice up to 1.0."""
        d0 = self.base.scale.depth
        depths = [d for d in UNIFORM_DEPTHS if d0 / 2 <= d <= 2 * d0] or [d0]
        widths = sorted({w for s in self.stages for w in s.choices if w <= 1.0}) or [1.0]
        grid, seen = [], []
        for d in depths:
            for w in widths:
                p = self.uniform_params(w, d)
                if p not in seen:
                    seen.append(p)
                    grid.append((d, w, p))
        return grid

    def values(self, params: Mapping[str, int]) -> dict[str, float | int]:
        """Chosen widths and depths by parameter name (missing parameters: the base's)."""
        out: dict[str, float | int] = {}
        for s in self.stages:
            out[s.param] = s.choices[params.get(s.param, _nearest(s.choices, 1.0))]
        for d in self.depths:
            out[d.param] = d.choices[params.get(d.param, _nearest(d.choices, d.base))]
        return out

    def resolve(self, params: Mapping[str, int]) -> dict[str, Any]:
        """The candidate as a plain config mapping: explicit channels and repeats, multiples 1.0."""
        vals = self.values(params)
        width_of = {r: vals[s.param] for s in self.stages for r in s.rows}
        depth_of = {d.row: vals[d.param] for d in self.depths}
        rows = []
        for row in self.base.rows:
            rows.append(self._explicit_row(row, float(width_of.get(row.index, 1.0)), depth_of.get(row.index)))
        return explicit_mapping(self.base, rows)

    def _explicit_row(self, row: Row, mult: float, depth: int | None) -> list[Any]:
        base = self.base
        args = list(row.raw_args)
        unscaled = {base.nc}
        na = anchors_per_level(base.anchors)
        if na:
            unscaled.add(na * (base.nc + 5))
        for pos in channel_positions(row.module, base.family):
            if pos < len(args) and isinstance(row.args[pos], int) and not isinstance(row.args[pos], bool):
                c = row.args[pos]
                if c not in unscaled:
                    if base.scale.max_channels is not None:
                        c = min(c, base.scale.max_channels)
                    c = make_divisible(c * base.scale.width * mult, 8)
                args[pos] = c
        n = depth if depth is not None else scale_repeats(row.repeats, base.scale.depth)
        frm = row.from_ if isinstance(row.from_, int) else list(row.from_)
        return [frm, n, row.module, args]

    def describe(self) -> dict[str, Any]:
        return {"stages": [{"name": s.name, "rows": list(s.rows), "widths": list(s.choices)} for s in self.stages],
                "depths": [{"row": d.row, "base": d.base, "choices": list(d.choices)} for d in self.depths],
                "settings": self.settings.as_dict()}


def channel_positions(module: str, family: str) -> tuple[int, ...]:
    """YAML argument positions that are channel counts (see the module docstring)."""
    spec = REGISTRY.lookup(module, family)
    declared = getattr(spec.cls, "channel_args", None)
    if declared is not None:
        return tuple(declared)
    return (0,) if spec.io == "out_arg" else ()


def explicit_mapping(base: Config, rows: Sequence[list[Any]]) -> dict[str, Any]:
    """`base` as YAML data with multiples 1.0 and the given rows; YOLOv5-family files stay YOLOv5-loadable."""
    data: dict[str, Any] = {"nc": base.nc, "family": base.family}
    if base.scales and base.family != "yolov5":
        data["scales"] = {base.scale.name: [1.0, 1.0]}  # keeps scale-dependent rules (C3k2 at m/l/x)
    else:
        data["depth_multiple"] = 1.0
        data["width_multiple"] = 1.0
    nb = len(base.backbone)
    explicit = {"backbone": [list(r) for r in rows[:nb]], "head": [list(r) for r in rows[nb:]]}
    for key, value in config_to_mapping(base).items():  # anchors, activation, ch, search, extra keys
        if key not in data and key not in ("scales", "depth_multiple", "width_multiple"):
            data[key] = explicit.get(key, value)
    return data


def load_settings(cfg: Config, *, space_file: str | Path | None = None,
                  stage_weights: Sequence[float] | None = None, scope: str | None = None) -> SearchSettings:
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

    weights = d.get("stage_weights", DEFAULT_STAGE_WEIGHTS)
    if (not isinstance(weights, (list, tuple)) or not weights
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
    return SearchSettings(tuple(float(w) for w in weights), scope, tuple(unscored), widths, depths)


def _numbers(v: Any, *, positive: bool = False, integer: bool = False, limit: float) -> bool:
    """A non-empty list of finite numbers with |x| <= limit (compared before any float() can overflow)."""
    return (isinstance(v, list) and bool(v) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and number_problem(x, limit=limit) is None
        and (not positive or x > 0) and (not integer or isinstance(x, int)) for x in v))


def build_space(base: Config | str | Path | Mapping[str, Any], settings: SearchSettings | None = None) -> SearchSpace:
    """Stages by (section, output stride) of the base model; depths of rows repeated in the YAML."""
    ensure_builtin_modules()
    cfg = load_config(base)
    settings = settings or load_settings(cfg)
    model = build_model(cfg, device="meta")
    strides = tuple(info.stride for info in model.layers)
    groups: dict[str, list[int]] = {}
    for row, stride in zip(cfg.rows, strides):
        if stride and channel_positions(row.module, cfg.family):
            groups.setdefault(f"{row.section}/{int(round(stride))}", []).append(row.index)
    stages = []
    for name, rows in groups.items():
        widths = settings.widths
        if isinstance(widths, dict):
            choices = widths.get(name, [1.0])
        else:
            choices = widths or DEFAULT_WIDTHS
        stages.append(StageChoice(name, tuple(rows), tuple(sorted(float(c) for c in set(choices)))))
    depths = []
    for row in cfg.rows:
        if row.repeats <= 1:
            continue
        n0 = scale_repeats(row.repeats, cfg.scale.depth)
        spec = settings.depths
        if isinstance(spec, dict):
            counts = spec.get(row.index, [n0])
        elif spec is not None:
            counts = [max(1, round(n0 * m)) for m in spec]
        else:
            counts = list(range(1, max(2, 2 * n0) + 1))
        depths.append(DepthChoice(row.index, tuple(sorted(set(int(c) for c in counts))), n0, row.repeats))
    return SearchSpace(cfg, strides, tuple(stages), tuple(depths), settings)


def _nearest(choices: Sequence[float], value: float) -> int:
    return min(range(len(choices)), key=lambda i: (abs(choices[i] - value), choices[i]))
