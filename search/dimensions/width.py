"""Width: one multiple per stage (rows grouped by section and output stride whose blocks declare channel
arguments), relative to the base's channels; the family's channel rule scales every declared channel."""
from __future__ import annotations

from typing import Any

from zoo.config import Config
from zoo.limits import MAX_MULTIPLE
from zoo.registry import REGISTRY

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
        by_index = {rp.index: rp for rp in base.plan.rows}
        for name, rows in groups.items():
            choices = widths.get(name, [1.0]) if isinstance(widths, dict) else (widths or DEFAULT_WIDTHS)
            kept = [float(c) for c in set(choices) if _buildable(base.config, [by_index[r] for r in rows], float(c))]
            out.append(Knob(self.name, f"w:{name}", name, tuple(rows), tuple(sorted(kept or [1.0])), 1.0))
        return tuple(out)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        if value == 1.0:
            return cand
        for r in knob.rows:
            cand = cand.with_row(r, width=float(value))
        return cand

    def uniform_index(self, knob: Knob, u: Uniform, config: Config) -> int:
        return nearest(knob.choices, u.width)


def _buildable(cfg: Config, rows: list[Any], width: float) -> bool:
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
