"""Block choice: per row (an index, or every row of a block), one of interchangeable registered blocks
(the same channel rule, repeat mode and channel positions: C3 / C3Ghost, Conv / GhostConv). The row's own
block is always a choice; a space opts in with `blocks:` in a `search:` block or a --space file."""
from __future__ import annotations

from typing import Any

from zoo.config import Config
from zoo.registry import REGISTRY

from .base import Candidate, Dimension, Knob, SpaceBase, matching_rows, per_row, register_dimension


def _name(x: Any, key: Any) -> str:
    if not isinstance(x, str) or not x:
        raise ValueError(f"{key}: {x!r} is not a block name")
    return x


@register_dimension
class BlockChoice(Dimension):
    name = "block"
    key = "blocks"
    order = 10

    def parse(self, value: Any) -> Any:
        return per_row(value, _name, "block names")

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        value = base.setting(self.key)
        if not value:
            return ()
        chosen: dict[int, list[str]] = {}
        for key, names in value.items():
            for r in matching_rows(base.config, key):
                chosen[r] = list(names)
        out = []
        for r, names in sorted(chosen.items()):
            own = base.config.rows[r].module
            spec = base.spec(r)
            choices = [own] + [n for n in dict.fromkeys(names) if n != own]
            for n in choices[1:]:
                try:
                    other = REGISTRY.lookup(n, base.config.family)
                except KeyError as e:
                    raise ValueError(f"row {r}: {e.args[0]}") from None
                if (other.io, other.repeat, other.channels) != (spec.io, spec.repeat, spec.channels):
                    raise ValueError(f"row {r}: {n} cannot replace {own}: its arguments mean other things "
                                     f"(rule {other.io}, repeat {other.repeat}, channel positions "
                                     f"{list(other.channels)} vs {spec.io}, {spec.repeat}, {list(spec.channels)})")
            out.append(Knob(self.name, f"b:{r}", f"row {r}", (r,), tuple(choices), own))
        return tuple(out)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        return cand if value == knob.base else cand.with_row(knob.row, module=str(value))
