"""YOLOv10's blocks as Ultralytics 8.4 builds them (family "ultralytics"), with its attribute names.

SCDown (pointwise then depthwise stride), PSA (one attention block on half the channels), C2fCIB (C2f of
compact inverted blocks, whose large-kernel RepVGGDW folds in deploy) and v10Detect, the dual-assignment
head: Detect's one-to-many branches plus one-to-one copies, with a light depthwise class branch.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from ..fuse import conv_branch, conv_like, fold_branches
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError, same_width_rule
from .ultralytics import FAMILY, C2f, Attention, Detect
from .yolov5 import Conv


@register_module("SCDown", family=FAMILY, io="out_arg", example=(-1, [64, 3, 2]))
class SCDown(nn.Module):
    """Separable downsampling: a 1x1 Conv to c2, then a k x k depthwise Conv at stride s (no activation)."""

    def __init__(self, c1: int, c2: int, k: int, s: int) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c2, 1, 1)
        self.cv2 = Conv(c2, c2, k=k, s=s, g=c2, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv2(self.cv1(x))


@register_module("PSA", family=FAMILY, io=same_width_rule(), channels=(0,), example=(-1, [64]))
class PSA(nn.Module):
    """Half the channels through attention and a conv FFN (each residual), the other half passed by."""

    def __init__(self, c1: int, c2: int, e: float = 0.5) -> None:
        super().__init__()
        if c1 != c2:
            raise ValueError(f"PSA needs c1 == c2, got {c1} and {c2}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.attn = Attention(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1))
        self.ffn = nn.Sequential(Conv(self.c, self.c * 2, 1), Conv(self.c * 2, self.c, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        b = b + self.attn(b)
        b = b + self.ffn(b)
        return self.cv2(torch.cat((a, b), 1))


class RepVGGDW(nn.Module):
    """act(7x7 depthwise ConvBN + 3x3 depthwise ConvBN); deploy folds both into one biased 7x7 conv."""

    def __init__(self, ed: int) -> None:
        super().__init__()
        self.conv: nn.Module = Conv(ed, ed, 7, 1, 3, g=ed, act=False)
        self.conv1 = Conv(ed, ed, 3, 1, 1, g=ed, act=False)
        self.dim = ed
        self.act = nn.SiLU()  # fixed, as Ultralytics': not the config's default activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "conv1"):  # deploy form
            return self.act(self.conv(x))
        return self.act(self.conv(x) + self.conv1(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """The 3x3 branch padded to the 7x7 centre and added to it, both BNs folded."""
        if not hasattr(self, "conv1"):
            return
        big, small = self.conv, self.conv1
        self.conv = conv_like(big.conv, *fold_branches([conv_branch(big.conv, big.bn),
                                                        conv_branch(small.conv, small.bn)], 7))
        del self.conv1


class CIB(nn.Module):
    """Compact inverted block: depthwise 3x3, 1x1 expand, depthwise (RepVGGDW when lk), 1x1, depthwise 3x3."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 0.5, lk: bool = False) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = nn.Sequential(
            Conv(c1, c1, 3, g=c1),
            Conv(c1, 2 * c_, 1),
            RepVGGDW(2 * c_) if lk else Conv(2 * c_, 2 * c_, 3, g=2 * c_),
            Conv(2 * c_, c2, 1),
            Conv(c2, c2, 3, g=c2),
        )
        self.add = bool(shortcut) and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv1(x) if self.add else self.cv1(x)


@register_module("C2fCIB", family=FAMILY, io="out_arg", repeat="inside", example=(-1, [64, True, True]))
class C2fCIB(C2f):
    """C2f whose inner blocks are CIBs (large-kernel RepVGGDW when lk)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, lk: bool = False, g: int = 1,
                 e: float = 0.5) -> None:
        self._lk = bool(lk)
        super().__init__(c1, c2, n, shortcut, g, e)

    def inner(self, n: int, shortcut: bool, g: int) -> list[nn.Module]:
        return [CIB(self.c, self.c, shortcut, e=1.0, lk=self._lk) for _ in range(n)]


def v10detect_rule(ctx: RowContext) -> Resolved:
    """[nc] -> v10Detect(nc, ch): reg_max 16 and both branch sets always (parse_model passes neither key)."""
    if len(ctx.args) != 1:
        raise RuleError(f"v10Detect takes [nc], got {len(ctx.args)} arguments")
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("a detection head cannot read another head")
    return Resolved((ctx.args[0], [s.channels for s in ctx.inputs]), None,
                    {"strides": [s.stride for s in ctx.inputs]})


v10detect_rule.__name__ = "multi_in, nc only"


@register_module("v10Detect", family=FAMILY, io=v10detect_rule, channels=(), example=([2, 3, 4], ["nc"]))
class v10Detect(Detect):  # noqa: N801 - Ultralytics' name, which configs write
    """YOLOv10's dual head: one-to-many (cv2, cv3) and one-to-one (one2one_cv2, one2one_cv3) branches.

    Eval decodes the one-to-many branch to (B, 4 + nc, anchors) xywh, as Ultralytics 8.4 does unless
    `end2end` is set; with it, the one-to-one branch gives the top `max_det` (B, k, 6) xyxy-score-class
    rows without NMS. The raw dict holds both branches. `dfl` is a fixed projection (frozen, no gradient).
    """

    def __init__(self, nc: int = 80, ch: Sequence[int] = (), *, strides: Sequence[float] | None = None) -> None:
        # Ultralytics' Detect with its one-to-one copies always built (end2end off until set on the module);
        # the class branch is the depthwise, non-legacy one
        super().__init__(nc, 16, True, ch, legacy=False, strides=strides)
