"""Channel rules: how a row's YAML args become constructor args and output channels.

A rule sees the row, the shapes of its inputs, the scale and the rows built so far, and returns a
`Resolved`. Modules name a rule here or bring their own callable in their registration.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .config import Row, Scale


class RuleError(ValueError):
    """A row's args do not fit its module; the builder adds file and row."""


@dataclass(frozen=True)
class ShapeSpec:
    """Channels, stride and probe size of one row's output (detectron2's ShapeSpec, plus size)."""

    channels: int | None
    stride: float
    height: int = 0
    width: int = 0


@dataclass(frozen=True)
class BuiltRow:
    """What later rules may read of an earlier row."""

    index: int
    module: str
    args: tuple[Any, ...]
    out: ShapeSpec


@dataclass(frozen=True)
class RowContext:
    row: Row
    inputs: tuple[ShapeSpec, ...]
    scale: Scale
    nc: int
    family: str
    anchors: Any
    n: int  # repeats after the depth multiple
    built: tuple[BuiltRow, ...] = ()

    @property
    def c1(self) -> int:
        if len(self.inputs) != 1:
            raise RuleError(f"takes one input, got 'from' with {len(self.inputs)}")
        c = self.inputs[0].channels
        if c is None:
            raise RuleError("its input has no channel count (it reads a detection head)")
        return c

    @property
    def args(self) -> tuple[Any, ...]:
        return self.row.args

    @property
    def unscaled_outputs(self) -> frozenset[int]:
        """Channel counts never width-scaled: a head's output size, as each reference builder decides.

        YOLOv5 leaves `no = na * (nc + 5)` alone, Ultralytics (and DAMO configs) leave `nc` alone.
        """
        if self.family == "yolov5":
            na = anchors_per_level(self.anchors)
            return frozenset({na * (self.nc + 5)}) if na else frozenset()
        return frozenset({self.nc})

    def channels(self, c: Any) -> int:
        """Scale a channel argument: make_divisible(min(c, max_channels) * width, 8)."""
        if isinstance(c, bool) or not isinstance(c, int) or c <= 0:
            raise RuleError(f"output channels must be a positive integer, got {c!r}")
        if c in self.unscaled_outputs:
            return c
        if self.scale.max_channels is not None:
            c = min(c, self.scale.max_channels)
        return make_divisible(c * self.scale.width, 8)


@dataclass(frozen=True)
class Resolved:
    """Constructor arguments and the declared output channels (None: a head without one)."""

    args: tuple[Any, ...]
    out_channels: int | None
    kwargs: Mapping[str, Any] = field(default_factory=dict)


Rule = Callable[[RowContext], Resolved]


def make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


def scale_repeats(n: int, depth: float) -> int:
    return max(round(n * depth), 1) if n > 1 else n


def anchors_per_level(anchors: Any) -> int:
    if anchors is None:
        return 0
    if isinstance(anchors, int):
        return anchors
    return len(anchors[0]) // 2


def out_arg_rule(n_at: int = 2) -> Rule:
    """c1 from the input, c2 = scaled args[0]; repeat-inside modules get n at `n_at`."""

    def rule(ctx: RowContext) -> Resolved:
        from .registry import REGISTRY

        if not ctx.args:
            raise RuleError("needs its output channels as the first argument")
        c2 = ctx.channels(ctx.args[0])
        args = [ctx.c1, c2, *ctx.args[1:]]
        if REGISTRY.lookup(ctx.row.module, ctx.family).repeat == "inside":
            args.insert(n_at, ctx.n)
        return Resolved(tuple(args), c2)

    rule.__name__ = "out_arg"
    return rule


def same(ctx: RowContext) -> Resolved:
    """Channels pass through (upsample, pooling, padding, identity)."""
    return Resolved(tuple(ctx.args), ctx.c1)


def in_arg(ctx: RowContext) -> Resolved:
    """The only argument is the input width (nn.BatchNorm2d)."""
    return Resolved((ctx.c1,), ctx.c1)


def concat(ctx: RowContext) -> Resolved:
    """Output channels are the sum of the inputs'; all inputs must share height and width."""
    sizes = {(s.height, s.width) for s in ctx.inputs}
    if len(sizes) > 1:
        parts = ", ".join(f"row {i}: {s.height}x{s.width}" for i, s in zip(ctx.row.sources, ctx.inputs))
        raise RuleError(f"Concat inputs differ in spatial size ({parts} at the probe size)")
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("Concat reads a detection head")
    return Resolved(tuple(ctx.args), sum(s.channels for s in ctx.inputs))  # type: ignore[misc]


RULES: dict[str, Rule] = {"out_arg": out_arg_rule(), "same": same, "in_arg": in_arg, "concat": concat}


def rule_name(rule: Rule) -> str:
    return getattr(rule, "__name__", type(rule).__name__)
