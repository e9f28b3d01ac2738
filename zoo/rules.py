"""Channel rules: how a row's YAML args become constructor args and output channels.

A rule sees the row, the shapes of its inputs, the scale and the rows built so far, and returns a
`Resolved`. Modules name a rule here or bring their own callable in their registration.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import shown
from .schema import Row, Scale


class RuleError(ValueError):
    """A row's args do not fit its module; the builder adds file and row."""


@dataclass(frozen=True)
class ShapeSpec:
    """Channels, stride and size of one row's output at the real image size (detectron2's ShapeSpec,
    plus size); channels None for a head's output."""

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


ChannelScaler = Callable[[int, Scale, float], int]


def scale_channels(c: int, scale: Scale, mult: float = 1.0) -> int:
    """YOLOv5's and Ultralytics' channel rule: make_divisible(min(c, max_channels) * width * mult, 8).

    The one channel rule of the tree, in the reference's operation order (cap first, then the product,
    then round up), so every float gives the reference's integer. `mult` is the search's extra width
    multiple of one row (1.0 when a config is built as written)."""
    x: float = c if scale.max_channels is None else min(c, scale.max_channels)
    x = x * scale.width
    if mult != 1.0:
        x = x * mult
    return make_divisible(x, 8)


@dataclass(frozen=True)
class RowContext:
    """What a rule sees of one row: the row, its inputs, the scale, and what its registrations decide.

    `repeat` is the block's repeat mode, `unscaled` the head sizes its family never width-scales and
    `scaler` its family's channel rule (all from the registrations, so rules need no registry);
    `width_mult` is a per-row width multiple the search sets (1.0 otherwise); `keys` are the config's
    top-level keys outside the schema (Ultralytics' `reg_max`, `end2end`, `kpt_shape`), which some
    reference parsers pass to head rows.
    """

    row: Row
    inputs: tuple[ShapeSpec, ...]
    scale: Scale
    nc: int
    family: str
    anchors: Any
    n: int  # repeats after the depth multiple
    built: tuple[BuiltRow, ...] = ()
    repeat: str = "chain"
    unscaled: frozenset[int] = frozenset()
    width_mult: float = 1.0
    scaler: ChannelScaler = scale_channels
    keys: Mapping[str, Any] = field(default_factory=dict)

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

    def channels(self, c: Any) -> int:
        """Scale a channel argument by the family's rule; the family's head sizes stay as written."""
        if isinstance(c, bool) or not isinstance(c, int) or c <= 0:
            raise RuleError(f"output channels must be a positive integer, got {c!r}")
        if c in self.unscaled:
            return c
        scaled = self.scaler(c, self.scale, self.width_mult)
        if isinstance(scaled, bool) or not isinstance(scaled, int) or scaled < 1:
            # a width so small that the product underflows, or a plugin's rule: never build 0 channels
            raise RuleError(f"the channel rule turns {c} into {scaled!r} channels at width "
                            f"{self.scale.width:g} x {self.width_mult:g}; a row needs at least 1")
        return scaled


@dataclass(frozen=True)
class Resolved:
    """Constructor arguments and the declared output channels (None: a head without one)."""

    args: tuple[Any, ...]
    out_channels: int | None
    kwargs: Mapping[str, Any] = field(default_factory=dict)


Rule = Callable[[RowContext], Resolved]


def make_divisible(x: float, divisor: int = 8) -> int:
    """The smallest multiple of `divisor` >= x (rounds up, as YOLOv5 and Ultralytics do)."""
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
        if not ctx.args:
            raise RuleError("needs its output channels as the first argument")
        c2 = ctx.channels(ctx.args[0])
        args = [ctx.c1, c2, *ctx.args[1:]]
        if ctx.repeat == "inside":
            args.insert(n_at, ctx.n)
        return Resolved(tuple(args), c2)

    rule.__name__ = "out_arg"
    return rule


def same_width_rule(n_at: int = 2) -> Rule:
    """out_arg for blocks that keep their width (a gate, a split-and-fuse): the scaled c2 must be c1."""
    scaled = out_arg_rule(n_at)

    def rule(ctx: RowContext) -> Resolved:
        resolved = scaled(ctx)
        if resolved.out_channels != ctx.c1:
            raise RuleError(f"{ctx.row.module} keeps its width: input {ctx.c1} != output "
                            f"{resolved.out_channels} after scaling")
        return resolved

    rule.__name__ = "out_arg (c1 == c2)"
    return rule


def same(ctx: RowContext) -> Resolved:
    """Channels pass through (upsample, pooling, padding, identity)."""
    return Resolved(tuple(ctx.args), ctx.c1)


def in_arg(ctx: RowContext) -> Resolved:
    """The only argument is the input width (nn.BatchNorm2d)."""
    return Resolved((ctx.c1,), ctx.c1)


def concat(ctx: RowContext) -> Resolved:
    """Output channels are the sum of the inputs'; all inputs must share height and width. The one
    dimension is the channels' (1, as every published config writes it): along any other the sum of
    widths would not be the output's."""
    if len(ctx.args) > 1 or (ctx.args and (type(ctx.args[0]) is not int or ctx.args[0] not in (1, -3))):
        raise RuleError(f"Concat joins along the channels (dimension 1), got {shown(list(ctx.args))}")
    sizes = {(s.height, s.width) for s in ctx.inputs}
    if len(sizes) > 1:
        parts = ", ".join(f"row {i}: {s.height}x{s.width}" for i, s in zip(ctx.row.sources, ctx.inputs))
        raise RuleError(f"Concat inputs differ in spatial size ({parts})")
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("Concat reads a detection head")
    return Resolved(tuple(ctx.args), sum(s.channels for s in ctx.inputs))  # type: ignore[misc]


RULES: dict[str, Rule] = {"out_arg": out_arg_rule(), "same": same, "in_arg": in_arg, "concat": concat}


def rule_name(rule: Rule) -> str:
    return getattr(rule, "__name__", type(rule).__name__)
