"""The search space of a base config: the registered dimensions' parameters over it.

Derived space (SPEC §6): rows are grouped into stages by output stride, backbone and head apart; each
stage whose rows have channel arguments (declared in their registrations) gets one width multiple
(relative to the base config's channels), each row whose YAML repeats exceed 1 gets a depth (an
explicit repeat count). Defaults:
  widths  DEFAULT_WIDTHS for every stage (1.0 is the base);
  depths  every count from 1 to twice the base's resolved repeats (at least 1..2).
A `search:` block or `--space FILE` may set them and opt into the other dimensions (search.dimensions):
the input size (`imgsz`), kernel sizes (`kernels`), expansion ratios (`expansions`), block choices
(`blocks`).

A candidate (search.dimensions.Candidate) is one value: its input size and per-row overrides, made by
applying every parameter's chosen value in the dimensions' order, and planned whole (zoo.plan): the
family's channel rule scales every declared channel argument of a row, so this module holds no channel
arithmetic of its own and builds no model.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from zoo.config import Config, load_config
from zoo.errors import ConfigError
from zoo.plan import ModelPlan, Prober, explicit_config, plan_config

from .dimensions import DEFAULT_WIDTHS, DIMENSIONS, Candidate, Knob, SpaceBase, Uniform, ordered
from .settings import SearchSettings, load_settings

UNIFORM_DEPTHS: tuple[float, ...] = (0.25, 0.33, 0.5, 0.67, 1.0, 1.33)  # YOLO's depth multiples
PLAN_IMGSZ = 640  # the size the base is planned at to learn its stages (strides do not depend on it)


@dataclass(frozen=True)
class SearchSpace:
    """Knobs over a base config, in application order; Optuna parameters are indices into their choices
    (ordered for TPE)."""

    base: Config
    strides: tuple[float | None, ...]
    knobs: tuple[Knob, ...]
    settings: SearchSettings = field(default_factory=SearchSettings)

    @property
    def stages(self) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.dimension == "width")

    @property
    def depths(self) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.dimension == "depth")

    @property
    def sizes(self) -> tuple[int, ...]:
        """The input sizes searched (empty: the study's one size)."""
        return next((tuple(k.choices) for k in self.knobs if k.dimension == "imgsz"), ())

    def dimensions(self) -> dict[str, int]:
        """Parameter name -> number of choices (fixed choices are not parameters)."""
        return {k.param: len(k.choices) for k in self.knobs if len(k.choices) > 1}

    def uniform_params(self, width: float = 1.0, depth: float | None = None,
                       imgsz: int | None = None) -> dict[str, int]:
        """Every stage at one width multiple (of the base); repeats as the base, or as the YAML repeats
        scaled by one depth multiple (the family's rule); the base's other choices; nearest choices."""
        u = Uniform(depth, width, imgsz)
        return {k.param: DIMENSIONS[k.dimension].uniform_index(k, u, self.base) for k in self.knobs
                if len(k.choices) > 1}

    def uniform_grid(self) -> list[Uniform]:
        """The uniform scalings in the space: the YOLO depth multiples within half to twice the base's,
        every width choice up to 1.0, at every searched size."""
        d0 = self.base.scale.depth
        depths = [d for d in UNIFORM_DEPTHS if d0 / 2 <= d <= 2 * d0] or [d0]
        widths = sorted({w for s in self.stages for w in s.choices if w <= 1.0}) or [1.0]
        grid: list[Uniform] = []
        seen: list[dict[str, int]] = []
        for size in self.sizes or (None,):
            for d in depths:
                for w in widths:
                    p = self.uniform_params(w, d, size)
                    if p not in seen:
                        seen.append(p)
                        grid.append(Uniform(d, w, size, p))
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

    def values(self, params: Mapping[str, int]) -> dict[str, Any]:
        """Chosen values by parameter name (missing parameters: the base's)."""
        return {k.param: k.choices[self._index(k, params)] for k in self.knobs}

    def _index(self, k: Knob, params: Mapping[str, int]) -> int:
        i = params.get(k.param)
        return DIMENSIONS[k.dimension].base_index(k) if i is None else int(i)

    def candidate(self, params: Mapping[str, int]) -> Candidate:
        """The candidate of these parameters: every knob's value applied in order."""
        cand = Candidate()
        for k in self.knobs:
            cand = DIMENSIONS[k.dimension].apply(k, k.choices[self._index(k, params)], cand, self.base)
        return cand

    def imgsz(self, params: Mapping[str, int], default: int) -> int:
        """The candidate's input size: its own when the size is searched, else `default` (the study's)."""
        return next((int(k.choices[self._index(k, params)]) for k in self.knobs if k.dimension == "imgsz"), default)

    def plan(self, params: Mapping[str, int], *, imgsz: int = PLAN_IMGSZ, prober: Prober | None = None) -> ModelPlan:
        """The candidate's row plan at its own size (else `imgsz`), no weights."""
        cand = self.candidate(params)
        return plan_config(self.base, imgsz=cand.imgsz or imgsz, overrides=cand.rows, prober=prober)

    def resolve(self, params: Mapping[str, int], *, prober: Prober | None = None) -> dict[str, Any]:
        """The candidate as a plain config mapping: explicit channels, repeats and every chosen block and
        argument, multiples 1.0 (the size is the candidate's, not part of a config)."""
        return explicit_config(self.plan(params, prober=prober))

    def describe(self) -> dict[str, Any]:
        return {"knobs": [{"dimension": k.dimension, "param": k.param, "rows": list(k.rows),
                           "choices": list(k.choices), "base": k.base} for k in self.knobs],
                "settings": self.settings.as_dict()}


def build_space(base: Config | str | Any, settings: SearchSettings | None = None, *,
                prober: Prober | None = None) -> SearchSpace:
    """Every registered dimension's knobs over the base plan (a setting that does not fit the config is
    one ConfigError naming the file, the key and the row)."""
    cfg = load_config(base)
    settings = settings or load_settings(cfg)
    plan = plan_config(cfg, imgsz=PLAN_IMGSZ, prober=prober)
    sb = SpaceBase(cfg, plan, settings)
    knobs: list[Knob] = []
    for dim in ordered():
        try:
            knobs += dim.knobs(sb)
        except ValueError as e:
            raise ConfigError(cfg.path, f"search: {dim.key or dim.name}: {e}") from None
    return SearchSpace(cfg, tuple(rp.stride for rp in plan.rows), tuple(knobs), settings)


__all__ = ["DEFAULT_WIDTHS", "PLAN_IMGSZ", "UNIFORM_DEPTHS", "SearchSpace", "build_space", "load_settings"]
