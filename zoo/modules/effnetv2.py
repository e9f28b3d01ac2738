"""EfficientNetV2 blocks as published for a YOLOv5s backbone: stem, SqueezeExcite, FusedMBConv, MBConv.

Conv-like and chained in a config (`[c2, k, s, expansion, se_ratio]`). The published variant sizes its
SE from the expanded width (the official EfficientNetV2 uses the input width); we follow the published
one so its params match. Attribute names follow it so its state dicts load.
"""
from __future__ import annotations

import torch
from torch import nn

from ..fuse import fold_conv_bn_attrs
from ..registry import register_module
from ..rules import same_width_rule

FAMILY = "yolov5"


class DropPath(nn.Module):
    """Stochastic depth on the residual branch: whole samples dropped while training, identity in eval."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


@register_module("stem", family=FAMILY, io="out_arg")
class stem(nn.Module):  # noqa: N801  (the published config names it in lower case)
    """Conv2d (no bias, padding (k-1)//2) + BN(eps 1e-3, momentum 0.1) + SiLU."""

    def __init__(self, c1: int, c2: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def reparameterize(self) -> None:
        fold_conv_bn_attrs(self)


@register_module("SqueezeExcite", family=FAMILY, io=same_width_rule(), channels=(0,), example=(-1, [64, 0.25]))
class SqueezeExcite(nn.Module):
    """Channel gate: pooled -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid, times the input (so c2 == c1)."""

    def __init__(self, c1: int, c2: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        reduced = int(c1 * se_ratio)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(c1, reduced, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, c2, 1, bias=True)
        self.gate_fn = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate_fn(self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x)))))
        return x * gate


def _check_stride(s: int) -> None:
    if s not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {s!r}")


@register_module("FusedMBConv", family=FAMILY, io="out_arg")
class FusedMBConv(nn.Module):
    """Fused-MBConv: k x k expansion conv then 1x1 projection (one k x k conv when expansion is 1)."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, expansion: int = 1, se_ratio: float = 0,
                 dropout_rate: float = 0.2, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        _check_stride(s)
        self.has_shortcut = s == 1 and c1 == c2
        self.has_expansion = expansion != 1
        e = c1 * expansion
        if self.has_expansion:
            self.expansion_conv = stem(c1, e, k, s)
            self.project_conv = stem(e, c2, 1, 1)
        else:
            self.project_conv = stem(c1, c2, k, s)
        self.drop_connect_rate = drop_connect_rate
        if self.has_shortcut and drop_connect_rate > 0:
            self.dropout = DropPath(drop_connect_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project_conv(self.expansion_conv(x) if self.has_expansion else x)
        if not self.has_shortcut:
            return y
        if self.drop_connect_rate > 0:
            y = self.dropout(y)
        return y + x


@register_module("MBConv", family=FAMILY, io="out_arg")
class MBConv(nn.Module):
    """MBConv: 1x1 expansion, depthwise k x k, optional SE on the expanded width, 1x1 projection."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, expansion: int = 1, se_ratio: float = 0,
                 dropout_rate: float = 0.2, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        _check_stride(s)
        self.has_shortcut = s == 1 and c1 == c2
        e = c1 * expansion
        self.expansion_conv = stem(c1, e, 1, 1)
        self.dw_conv = stem(e, e, k, s, groups=e)
        self.se: nn.Module = SqueezeExcite(e, e, se_ratio) if se_ratio > 0 else nn.Identity()
        self.project_conv = stem(e, c2, 1, 1)
        self.drop_connect_rate = drop_connect_rate
        if self.has_shortcut and drop_connect_rate > 0:
            self.dropout = DropPath(drop_connect_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project_conv(self.se(self.dw_conv(self.expansion_conv(x))))
        if not self.has_shortcut:
            return y
        if self.drop_connect_rate > 0:
            y = self.dropout(y)
        return y + x
