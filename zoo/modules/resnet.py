"""ResNet stages as Ultralytics 8.4 builds them (family "ultralytics"): RT-DETR-ResNet's backbones.

parse_model passes a ResNetLayer row's arguments as written (input width included) and scales nothing:
the output is c2 for the stem layer, else e * c2 (e = 4, the bottleneck expansion).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..limits import MAX_REPEATS, check_count
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError
from .ultralytics import FAMILY
from .yolov5 import Conv


class ResNetBlock(nn.Module):
    """Bottleneck 1x1 -> 3x3 (stride s) -> 1x1 (x e), plus a 1x1 projection shortcut when shapes change."""

    def __init__(self, c1: int, c2: int, s: int = 1, e: int = 4) -> None:
        super().__init__()
        c3 = e * c2
        self.cv1 = Conv(c1, c2, k=1, s=1, act=True)
        self.cv2 = Conv(c2, c2, k=3, s=s, p=1, act=True)
        self.cv3 = Conv(c2, c3, k=1, act=False)
        self.shortcut = nn.Sequential(Conv(c1, c3, k=1, s=s, act=False)) if s != 1 or c1 != c3 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.cv3(self.cv2(self.cv1(x))) + self.shortcut(x))


def resnet_layer_rule(ctx: RowContext) -> Resolved:
    """[c1, c2, s, is_first, n(, e)] as written (c1 must be the input's); output width c2 (stem) or e * c2."""
    if not 2 <= len(ctx.args) <= 6:
        raise RuleError(f"ResNetLayer takes [c1, c2(, s, is_first, n, e)], got {len(ctx.args)} arguments")
    c1, c2, *rest = ctx.args
    is_first = bool(rest[1]) if len(rest) > 1 else False
    e = rest[3] if len(rest) > 3 else 4
    for name, v in (("c2", c2), ("e", e)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise RuleError(f"ResNetLayer's {name} must be a positive integer, got {v!r}")
    if c1 != ctx.c1:
        raise RuleError(f"ResNetLayer's first argument (input width {c1!r}) differs from its input's {ctx.c1}")
    return Resolved(tuple(ctx.args), c2 if is_first else e * c2)


resnet_layer_rule.__name__ = "as written, c1 checked"


@register_module("ResNetLayer", family=FAMILY, io=resnet_layer_rule, channels=(),
                 example=(-1, [64, 16, 2, False, 2]))
class ResNetLayer(nn.Module):
    """The ResNet stem (7x7 s2 Conv + 3x3 s2 max-pool) when is_first, else n ResNetBlocks (first at stride s)."""

    def __init__(self, c1: int, c2: int, s: int = 1, is_first: bool = False, n: int = 1, e: int = 4) -> None:
        super().__init__()
        check_count("n (ResNet blocks)", n, MAX_REPEATS)
        self.is_first = is_first
        if is_first:
            self.layer = nn.Sequential(Conv(c1, c2, k=7, s=2, p=3, act=True),
                                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        else:
            self.layer = nn.Sequential(ResNetBlock(c1, c2, s, e=e),
                                       *(ResNetBlock(e * c2, c2, 1, e=e) for _ in range(n - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)
