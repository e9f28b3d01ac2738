"""What the kernel and expansion dimensions share: a YAML argument a block declares searchable
(`register_module(kernels=..., expansion=...)`), chosen per row and written at the declared positions."""
from __future__ import annotations

from typing import Any, ClassVar

from zoo.config import Config
from zoo.plan import yaml_default
from zoo.registry import REGISTRY, ModuleSpec

from .base import Candidate, Dimension, Knob, SpaceBase, matching_rows, per_row


class ArgumentDimension(Dimension):
    """Per row (a row index or every row of a block): the values of one searchable argument kind."""

    kind: ClassVar[str]  # the registration's kind: "kernel", "expansion"
    prefix: ClassVar[str]  # the parameter prefix: "k", "e"
    what: ClassVar[str]

    def item(self, x: Any, key: Any) -> Any:
        raise NotImplementedError

    def parse(self, value: Any) -> Any:
        return per_row(value, self.item, self.what)

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        value = base.setting(self.key)
        if not value:
            return ()
        chosen: dict[int, tuple[Any, ...]] = {}
        for key, values in value.items():
            for r in matching_rows(base.config, key):
                chosen[r] = tuple(values)
        out = []
        for r, values in sorted(chosen.items()):
            row = base.config.rows[r]
            spec = base.spec(r)
            arg = spec.search_arg(self.kind)
            if arg is None:
                raise ValueError(f"row {r}: {spec.name} declares no {self.kind} argument a search may set")
            wrong = [v for v in values if arg.values is not None and v not in arg.values]
            if wrong:
                raise ValueError(f"row {r}: {spec.name} takes {self.kind} {', '.join(map(str, arg.values or ()))}, "
                                 f"not {', '.join(map(str, wrong))}")
            out.append(Knob(self.name, f"{self.prefix}:{r}", f"row {r}", (r,), tuple(sorted(set(values))),
                            current(row.args, spec, arg.positions[0])))
        return tuple(out)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        r = knob.row
        spec = REGISTRY.lookup(cand.row(r).module or config.rows[r].module, config.family)
        arg = spec.search_arg(self.kind)
        if arg is None:  # the block chosen for this row has no such argument: nothing to set
            return cand
        return cand.with_row(r, args=tuple((p, value) for p in arg.positions))


def current(args: tuple[Any, ...], spec: ModuleSpec, pos: int) -> Any:
    """The row's value at `pos`: as written, else the block's default (None when unknown)."""
    if pos < len(args):
        return args[pos]
    try:
        return yaml_default(spec, pos)
    except KeyError:
        return None
