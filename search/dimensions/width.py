"""Width: one multiple per stage (rows grouped by section and output stride whose blocks declare channel
arguments), relative to the base's channels; the family's channel rule scales every declared channel."""
from __future__ import annotations

from typing import Any

from zoo.config import Config
from zoo.limits import MAX_MULTIPLE

from .base import Candidate, Dimension, Knob, SpaceBase, Uniform, nearest, register_dimension
from .numbers import numbers

DEFAULT_WIDTHS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25)


@register_dimension
class Width(Dimension):
    name = "width"
    key = "widths"
    order = 40

    def parse(self, value: Any) -> Any:
        lists = value.values() if isinstance(value, dict) else [value]
        if not all(numbers(v, positive=True, limit=MAX_MULTIPLE) for v in lists):
            raise ValueError(f"must be a list of multiples in (0, {MAX_MULTIPLE}] or {{stage: list}}, got {value!r}")
        return value

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        groups: dict[str, list[int]] = {}
        for rp in base.plan.rows:
            if rp.stride and rp.channel_values:
                groups.setdefault(f"{rp.section}/{int(round(rp.stride))}", []).append(rp.index)
        widths = base.setting(self.key)
        out = []
        for name, rows in groups.items():
            choices = widths.get(name, [1.0]) if isinstance(widths, dict) else (widths or DEFAULT_WIDTHS)
            out.append(Knob(self.name, f"w:{name}", name, tuple(rows), tuple(sorted(float(c) for c in set(choices))),
                            1.0))
        return tuple(out)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        if value == 1.0:
            return cand
        for r in knob.rows:
            cand = cand.with_row(r, width=float(value))
        return cand

    def uniform_index(self, knob: Knob, u: Uniform, config: Config) -> int:
        return nearest(knob.choices, u.width)
