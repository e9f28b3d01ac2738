"""The search space of a base config: per-stage width multiples and per-row repeats.

Derived space (SPEC §6): rows are grouped into stages by output stride, backbone and head apart; each
stage whose rows have channel arguments (declared in their registrations) gets one width multiple
(relative to the base config's channels), each row whose YAML repeats exceed 1 gets a depth (an
explicit repeat count). Defaults:
  widths  DEFAULT_WIDTHS for every stage (1.0 is the base);
  depths  every count from 1 to twice the base's resolved repeats (at least 1..2).
A `search:` block or `--space FILE` may set them (search.settings).

A candidate is the base config planned with per-row width multiples and repeats (zoo.plan): the
family's channel rule scales every declared channel argument of a row, so this module holds no
channel arithmetic of its own and builds no model.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from zoo.config import Config, load_config
from zoo.plan import ModelPlan, Prober, explicit_config, plan_config
from zoo.registry import REGISTRY

from .settings import SearchSettings, load_settings

DEFAULT_WIDTHS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25)
UNIFORM_DEPTHS: tuple[float, ...] = (0.25, 0.33, 0.5, 0.67, 1.0, 1.33)  # YOLO's depth multiples
PLAN_IMGSZ = 640  # the size the base is planned at to learn its stages (strides do not depend on it)


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
        repeats scaled by one depth multiple (the family's rule); nearest choices."""
        repeats = REGISTRY.family(self.base.family).repeats
        params = {s.param: _nearest(s.choices, width) for s in self.stages if len(s.choices) > 1}
        params.update({d.param: _nearest(d.choices, d.base if depth is None else repeats(d.yaml, depth))
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

    def sample(self, n: int, *, seed: int = 0) -> list[dict[str, int]]:
        """`n` candidates drawn uniformly from the space (every parameter independently), the same for
        the same seed; a candidate drawn twice is kept once (so fewer come back from a tiny space)."""
        rng = random.Random(seed)
        dims = sorted(self.dimensions().items())
        seen: set[tuple[int, ...]] = set()
        out: list[dict[str, int]] = []
        for _ in range(n):
            draw = tuple(rng.randrange(size) for _, size in dims)
            if draw not in seen:
                seen.add(draw)
                out.append({name: v for (name, _), v in zip(dims, draw)})
        return out

    def values(self, params: Mapping[str, int]) -> dict[str, float | int]:
        """Chosen widths and depths by parameter name (missing parameters: the base's)."""
        out: dict[str, float | int] = {}
        for s in self.stages:
            out[s.param] = s.choices[params.get(s.param, _nearest(s.choices, 1.0))]
        for d in self.depths:
            out[d.param] = d.choices[params.get(d.param, _nearest(d.choices, d.base))]
        return out

    def overrides(self, params: Mapping[str, int]) -> tuple[dict[int, float], dict[int, int]]:
        """(row -> width multiple, row -> repeats) of a candidate: what the plan takes."""
        vals = self.values(params)
        widths = {r: float(vals[s.param]) for s in self.stages for r in s.rows if vals[s.param] != 1.0}
        repeats = {d.row: int(vals[d.param]) for d in self.depths}
        return widths, repeats

    def plan(self, params: Mapping[str, int], *, imgsz: int = PLAN_IMGSZ, prober: Prober | None = None) -> ModelPlan:
        """The candidate's row plan at `imgsz` (no weights)."""
        widths, repeats = self.overrides(params)
        return plan_config(self.base, imgsz=imgsz, widths=widths, repeats=repeats, prober=prober)

    def resolve(self, params: Mapping[str, int], *, prober: Prober | None = None) -> dict[str, Any]:
        """The candidate as a plain config mapping: explicit channels and repeats, multiples 1.0."""
        return explicit_config(self.plan(params, prober=prober))

    def describe(self) -> dict[str, Any]:
        return {"stages": [{"name": s.name, "rows": list(s.rows), "widths": list(s.choices)} for s in self.stages],
                "depths": [{"row": d.row, "base": d.base, "choices": list(d.choices)} for d in self.depths],
                "settings": self.settings.as_dict()}


def build_space(base: Config | str | Any, settings: SearchSettings | None = None, *,
                prober: Prober | None = None) -> SearchSpace:
    """Stages by (section, output stride) of the base plan; depths of rows repeated in the YAML."""
    cfg = load_config(base)
    settings = settings or load_settings(cfg)
    plan = plan_config(cfg, imgsz=PLAN_IMGSZ, prober=prober)
    strides = tuple(rp.stride for rp in plan.rows)
    groups: dict[str, list[int]] = {}
    for rp in plan.rows:
        if rp.stride and rp.channel_values:
            groups.setdefault(f"{rp.section}/{int(round(rp.stride))}", []).append(rp.index)
    stages = []
    by_index = {rp.index: rp for rp in plan.rows}
    for name, rows in groups.items():
        widths = settings.widths
        choices = widths.get(name, [1.0]) if isinstance(widths, dict) else (widths or DEFAULT_WIDTHS)
        kept = [float(c) for c in set(choices) if _buildable(cfg, [by_index[r] for r in rows], float(c))]
        stages.append(StageChoice(name, tuple(rows), tuple(sorted(kept or [1.0]))))
    depths = []
    for rp in plan.rows:
        if rp.row.repeats <= 1:
            continue
        n0 = rp.n
        spec = settings.depths
        if isinstance(spec, dict):
            counts = spec.get(rp.index, [n0])
        elif spec is not None:
            counts = [max(1, round(n0 * m)) for m in spec]
        else:
            counts = list(range(1, max(2, 2 * n0) + 1))
        depths.append(DepthChoice(rp.index, tuple(sorted(set(int(c) for c in counts))), n0, rp.row.repeats))
    return SearchSpace(cfg, strides, tuple(stages), tuple(depths), settings)


def _buildable(cfg: Config, rows: Sequence[Any], width: float) -> bool:
    """Every row of a stage keeps its block's declared width step (ModuleSpec.width_step) at this width
    multiple, by the family's own channel rule: a choice that breaks one is never offered."""
    family = REGISTRY.family(cfg.family)
    unscaled = family.unscaled(cfg.nc, cfg.anchors)
    for rp in rows:
        step = rp.spec.width_step
        if step <= 1:
            continue
        for pos, _ in rp.channel_values:
            c = rp.row.args[pos]
            if c not in unscaled and family.channels(c, cfg.scale, width) % step:
                return False
    return True


def _nearest(choices: Sequence[float], value: float) -> int:
    return min(range(len(choices)), key=lambda i: (abs(choices[i] - value), choices[i]))
