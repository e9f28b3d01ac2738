"""Depth: the repeats of each row repeated in the YAML (an explicit count after the depth multiple)."""
from __future__ import annotations

from typing import Any

from zoo.config import Config
from zoo.limits import MAX_MULTIPLE, MAX_REPEATS
from zoo.registry import REGISTRY

from .base import Candidate, Dimension, Knob, SpaceBase, Uniform, nearest, register_dimension, row_key
from .numbers import numbers


@register_dimension
class Depth(Dimension):
    name = "depth"
    key = "depths"
    order = 50

    def parse(self, value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = row_key(k)
                if not isinstance(key, int) or not numbers(v, positive=True, integer=True, limit=MAX_REPEATS):
                    raise ValueError(f"must be a list of multipliers in (0, {MAX_MULTIPLE}] or {{row: list of "
                                     f"counts 1..{MAX_REPEATS}}}, got {value!r}")
                out[key] = v
            return out
        if not numbers(value, positive=True, limit=MAX_MULTIPLE):
            raise ValueError(f"must be a list of multipliers in (0, {MAX_MULTIPLE}] or {{row: list of counts "
                             f"1..{MAX_REPEATS}}}, got {value!r}")
        return value

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        spec = base.setting(self.key)
        out = []
        for rp in base.plan.rows:
            if rp.row.repeats <= 1:
                continue
            n0 = rp.n
            if isinstance(spec, dict):
                counts = spec.get(rp.index, [n0])
            elif spec is not None:
                counts = [max(1, round(n0 * m)) for m in spec]
            else:
                counts = list(range(1, max(2, 2 * n0) + 1))
            out.append(Knob(self.name, f"d:{rp.index}", f"row {rp.index}", (rp.index,),
                            tuple(sorted(set(int(c) for c in counts))), n0))
        return tuple(out)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        return cand.with_row(knob.row, repeats=int(value))

    def uniform_index(self, knob: Knob, u: Uniform, config: Config) -> int:
        if u.depth is None:
            return self.base_index(knob)
        repeats = REGISTRY.family(config.family).repeats
        return nearest(knob.choices, repeats(config.rows[knob.row].repeats, u.depth))
