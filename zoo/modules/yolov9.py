"""YOLOv9's blocks as Ultralytics 8.4 builds them (family "ultralytics"), with its attribute names.

GELAN stages (RepNCSPELAN4 over RepCSP/RepBottleneck/RepConv, ELAN1), the downsamplers ADown and AConv,
SPPELAN, and YOLOv9-E's auxiliary reversible branch (CBLinear, CBFuse). parse_model width-scales the
first argument of every block here except CBLinear and CBFuse; the other widths stay as written.

CBLinear returns its one conv output whole (Ultralytics splits it into a tuple): a row's output is one
tensor in this project's plan, and CBFuse, which alone reads it, takes its groups by channel offset.
The values and the state dict are Ultralytics'.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..limits import MAX_LEVELS, MAX_REPEATS, check_count
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError
from .ultralytics import FAMILY, Bottleneck, RepConv
from .yolov5 import C3, Conv, autopad


class RepBottleneck(Bottleneck):
    """Bottleneck whose first conv is a RepConv (folds to one 3x3 conv in deploy)."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k: Sequence[Any] = (3, 3),
                 e: float = 0.5) -> None:
        super().__init__(c1, c2, shortcut, g, k, e)
        self.cv1 = RepConv(c1, int(c2 * e), k[0], 1)


class RepCSP(C3):
    """C3 of RepBottlenecks (YOLOv9's RepNCSP)."""

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return nn.Sequential(*(RepBottleneck(c_, c_, shortcut, g, e=1.0) for _ in range(n)))


@register_module("RepNCSPELAN4", family=FAMILY, io="out_arg", example=(-1, [64, 64, 32, 1]))
class RepNCSPELAN4(nn.Module):
    """GELAN stage: cv1's output halved, two RepCSP+Conv steps chained on the second half, all four fused.

    Only c2 is width-scaled by parse_model; c3, c4 and the inner repeat n are used as written."""

    def __init__(self, c1: int, c2: int, c3: int, c4: int, n: int = 1) -> None:
        super().__init__()
        check_count("n (RepCSP bottlenecks)", n, MAX_REPEATS)
        self.c = c3 // 2
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = nn.Sequential(RepCSP(c3 // 2, c4, n), Conv(c4, c4, 3, 1))
        self.cv3 = nn.Sequential(RepCSP(c4, c4, n), Conv(c4, c4, 3, 1))
        self.cv4 = Conv(c3 + 2 * c4, c2, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.append(self.cv2(y[-1]))
        y.append(self.cv3(y[-1]))
        return self.cv4(torch.cat(y, 1))


@register_module("ELAN1", family=FAMILY, io="out_arg", example=(-1, [64, 64, 32]))
class ELAN1(RepNCSPELAN4):
    """GELAN-tiny stage: RepNCSPELAN4 with plain 3x3 Convs in place of the RepCSP steps."""

    def __init__(self, c1: int, c2: int, c3: int, c4: int) -> None:
        nn.Module.__init__(self)
        self.c = c3 // 2
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = Conv(c3 // 2, c4, 3, 1)
        self.cv3 = Conv(c4, c4, 3, 1)
        self.cv4 = Conv(c3 + 2 * c4, c2, 1, 1)


def _avg2(x: torch.Tensor) -> torch.Tensor:
    """The 2x2 stride-1 average both downsamplers start with (count_include_pad, ceil_mode off)."""
    return F.avg_pool2d(x, 2, 1, 0, False, True)


@register_module("AConv", family=FAMILY, io="out_arg", example=(-1, [64]))
class AConv(nn.Module):
    """2x2 average (stride 1) then a 3x3 stride-2 Conv."""

    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c2, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv1(_avg2(x))


@register_module("ADown", family=FAMILY, io="out_arg", example=(-1, [64]))
class ADown(nn.Module):
    """2x2 average, then half the channels through a 3x3 s2 Conv and half through a 3x3 s2 max-pool + 1x1."""

    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1 // 2, self.c, 3, 2, 1)
        self.cv2 = Conv(c1 // 2, self.c, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = _avg2(x).chunk(2, 1)
        return torch.cat((self.cv1(x1), self.cv2(F.max_pool2d(x2, 3, 2, 1))), 1)


@register_module("SPPELAN", family=FAMILY, io="out_arg", example=(-1, [64, 32]))
class SPPELAN(nn.Module):
    """SPP as an ELAN: a 1x1 Conv, three k x k max-pools in series, all four concatenated and fused."""

    def __init__(self, c1: int, c2: int, c3: int, k: int = 5) -> None:
        super().__init__()
        self.c = c3
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv3 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv4 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv5 = Conv(4 * c3, c2, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for m in (self.cv2, self.cv3, self.cv4):
            y.append(m(y[-1]))
        return self.cv5(torch.cat(y, 1))


def _group_sizes(value: Any) -> list[int]:
    if not isinstance(value, list) or not value or len(value) > MAX_LEVELS or any(
            isinstance(c, bool) or not isinstance(c, int) or c <= 0 for c in value):
        raise RuleError(f"CBLinear's first argument is a list of 1 to {MAX_LEVELS} positive channel counts, "
                        f"got {value!r}")
    return list(value)


def cblinear_rule(ctx: RowContext) -> Resolved:
    """[[c2, ...](, k, s, p, g)] as written (never width-scaled); output width = the sum of the groups."""
    if not 1 <= len(ctx.args) <= 5:
        raise RuleError(f"CBLinear takes [[c2, ...](, k, s, p, g)], got {len(ctx.args)} arguments")
    sizes = _group_sizes(ctx.args[0])
    return Resolved((ctx.c1, sizes, *ctx.args[1:]), sum(sizes))


cblinear_rule.__name__ = "unscaled channel groups"


@register_module("CBLinear", family=FAMILY, io=cblinear_rule, channels=(), example=(-1, [[16, 32]]))
class CBLinear(nn.Module):
    """One biased conv whose output channels are groups of sizes c2s (read by CBFuse, group by group)."""

    def __init__(self, c1: int, c2s: Sequence[int], k: int = 1, s: int = 1, p: Any = None, g: int = 1) -> None:
        super().__init__()
        self.c2s = list(c2s)
        self.conv = nn.Conv2d(c1, sum(self.c2s), k, s, autopad(k, p), groups=g, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def cbfuse_rule(ctx: RowContext) -> Resolved:
    """[[i, ...]]: output width = the last input's, which group i of each earlier input must have.

    Group i of an earlier row is that CBLinear's i-th channel group (a row of another block is one group)."""
    if len(ctx.args) != 1 or not isinstance(ctx.args[0], list):
        raise RuleError("CBFuse takes [[index, ...]]: one group index per input row but the last")
    picks = ctx.args[0]
    sources, inputs = ctx.row.sources, ctx.inputs
    if len(inputs) < 2 or len(picks) != len(inputs) - 1:
        raise RuleError(f"CBFuse reads {len(inputs)} rows, so it needs {max(len(inputs) - 1, 1)} group "
                        f"indices, got {len(picks)}")
    if any(s.channels is None for s in inputs):
        raise RuleError("CBFuse cannot read a detection head")
    target = inputs[-1].channels
    slices = []
    for src, spec, i in zip(sources, inputs, picks):
        built = ctx.built[src] if src >= 0 else None
        sizes = list(built.args[1]) if built is not None and built.module == "CBLinear" else [spec.channels]
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(sizes):
            raise RuleError(f"group index {i!r} for row {src}: it has {len(sizes)} group(s)")
        if sizes[i] != target:
            raise RuleError(f"group {i} of row {src} has {sizes[i]} channels, the target row "
                            f"{sources[-1]} has {target}")
        slices.append((sum(sizes[:i]), sizes[i]))
    return Resolved((list(picks),), target, {"slices": slices})


cbfuse_rule.__name__ = "sum of picked groups"


@register_module("CBFuse", family=FAMILY, io=cbfuse_rule, channels=(), example=([3, 4], [[0]]))
class CBFuse(nn.Module):
    """Sum of the last input and one channel group of each earlier input, resized (nearest) to its size.

    `slices` are the (offset, size) of each picked group, which the rule reads from the CBLinear rows."""

    def __init__(self, idx: Sequence[int], *, slices: Sequence[Sequence[int]] = ()) -> None:
        super().__init__()
        self.idx = list(idx)
        self.slices = [(int(a), int(b)) for a, b in slices]

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        size = xs[-1].shape[2:]
        groups = [x.narrow(1, *cut) for x, cut in zip(xs[:-1], self.slices)] if self.slices else xs[:-1]
        resized = [F.interpolate(x, size=size, mode="nearest") for x in groups]
        return torch.stack([*resized, xs[-1]]).sum(0)
