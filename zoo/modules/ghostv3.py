"""GhostNetV3's re-parameterisable Ghost module (both published modes).

Registered in the shared set: it appears in an Ultralytics config (RT-DETR-l) and fits YOLOv5 ones too.
Its `c2` is taken as written (not width-scaled), as the published config expects. Attribute names follow
GhostNetV3's so its state dicts load.
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

from ..fuse import conv_branch, conv_like, fold_branches, fold_sequential_conv_bn, identity_branch
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError
from .gfpn import conv_bn

MODES = ("ori", "ori_shortcut_mul_conv15")
BRANCHES = 3  # parallel k x k branches per conv in training form


def ghostv3_rule(ctx: RowContext) -> Resolved:
    """[oup, kernel_size, ratio, dw_size, stride, relu, mode] -> GhostModuleV3(c1, oup, ...), oup unscaled."""
    if not ctx.args:
        raise RuleError("needs its output channels as the first argument")
    oup = ctx.args[0]
    if isinstance(oup, bool) or not isinstance(oup, int) or oup <= 0:
        raise RuleError(f"output channels must be a positive integer, got {oup!r}")
    args = (ctx.c1, *ctx.args)
    defaults = (None, None, 1, 2, 3, 1, True, "ori")
    ratio = args[3] if len(args) > 3 else defaults[3]
    mode = args[7] if len(args) > 7 else defaults[7]
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise RuleError(f"ratio must be a positive integer, got {ratio!r}")
    if mode not in MODES:
        raise RuleError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    out = oup if mode != "ori" else math.ceil(oup / ratio) * ratio  # 'ori' does not trim to oup
    return Resolved(args, out)


ghostv3_rule.__name__ = "out_arg (unscaled)"


def _fold_branches(convs: nn.ModuleList, scale: nn.Module | None, skip: nn.BatchNorm2d | None,
                   k: int) -> nn.Conv2d:
    """The k x k branches, the 1x1 `scale` branch and the BN `skip` as one biased conv."""
    ref: nn.Conv2d = convs[0].conv
    branches = [conv_branch(branch.conv, branch.bn) for branch in convs]
    if scale is not None:
        branches.append(conv_branch(scale.conv, scale.bn))
    if skip is not None:
        branches.append(identity_branch(skip, ref.in_channels // ref.groups, k, ref.weight))
    return conv_like(ref, *fold_branches(branches, k))


@register_module("GhostModuleV3", family="shared", io=ghostv3_rule, channels=())
class GhostModuleV3(nn.Module):
    """Ghost module trained with 3 parallel conv branches + 1x1 + BN skip; deploys as two plain convs."""

    def __init__(self, inp: int, oup: int, kernel_size: int = 1, ratio: int = 2, dw_size: int = 3,
                 stride: int = 1, relu: bool = True, mode: str = "ori") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        for name, k in (("kernel_size", kernel_size), ("dw_size", dw_size)):
            if k % 2 == 0:
                raise ValueError(f"{name} must be odd (the branches are summed), got {k}")
        self.mode, self.oup = mode, oup
        self.kernel_size, self.dw_size = kernel_size, dw_size
        init = math.ceil(oup / ratio)
        new = init * (ratio - 1)
        self.primary_rpr_skip = nn.BatchNorm2d(inp) if inp == init and stride == 1 else None
        self.primary_rpr_conv = nn.ModuleList(conv_bn(inp, init, kernel_size, stride, kernel_size // 2)
                                              for _ in range(BRANCHES))
        # the 1x1 branch takes the stride too, so strided modules run (same params as published)
        self.primary_rpr_scale = conv_bn(inp, init, 1, stride, 0) if kernel_size > 1 else None
        self.primary_activation = nn.ReLU(inplace=True) if relu else None
        self.cheap_rpr_skip = nn.BatchNorm2d(init) if init == new else None
        self.cheap_rpr_conv = nn.ModuleList(conv_bn(init, new, dw_size, 1, dw_size // 2, g=init)
                                            for _ in range(BRANCHES))
        self.cheap_rpr_scale = conv_bn(init, new, 1, 1, 0, g=init) if dw_size > 1 else None
        self.cheap_activation = nn.ReLU(inplace=True) if relu else None
        self.primary_conv: nn.Module | None = None
        self.cheap_operation: nn.Module | None = None
        if mode == "ori_shortcut_mul_conv15":
            self.short_conv = nn.Sequential(
                nn.Conv2d(inp, oup, kernel_size, stride, kernel_size // 2, bias=False), nn.BatchNorm2d(oup),
                nn.Conv2d(oup, oup, (1, 5), 1, (0, 2), groups=oup, bias=False), nn.BatchNorm2d(oup),
                nn.Conv2d(oup, oup, (5, 1), 1, (2, 0), groups=oup, bias=False), nn.BatchNorm2d(oup))

    @staticmethod
    def _branches(x: torch.Tensor, convs: nn.ModuleList, scale: nn.Module | None,
                  skip: nn.Module | None) -> torch.Tensor:
        y = sum(conv(x) for conv in convs)
        if scale is not None:
            y = y + scale(x)
        if skip is not None:
            y = y + skip(x)
        return y

    def _act(self, y: torch.Tensor, act: nn.Module | None) -> torch.Tensor:
        return act(y) if act is not None else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.primary_conv is not None:
            x1 = self._act(self.primary_conv(x), self.primary_activation)
            x2 = self._act(self.cheap_operation(x1), self.cheap_activation)
        else:
            x1 = self._act(self._branches(x, self.primary_rpr_conv, self.primary_rpr_scale,
                                          self.primary_rpr_skip), self.primary_activation)
            x2 = self._act(self._branches(x1, self.cheap_rpr_conv, self.cheap_rpr_scale, self.cheap_rpr_skip),
                           self.cheap_activation)
        out = torch.cat((x1, x2), 1)
        if self.mode == "ori":
            return out
        gate = torch.sigmoid(self.short_conv(F.avg_pool2d(x, kernel_size=2, stride=2)))
        return out[:, :self.oup] * F.interpolate(gate, size=out.shape[-2:], mode="nearest")

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Primary and cheap branches each become one conv with bias; the gate's conv-BN pairs fold too."""
        if self.primary_conv is None:
            self.primary_conv = _fold_branches(self.primary_rpr_conv, self.primary_rpr_scale,
                                               self.primary_rpr_skip, self.kernel_size)
            self.cheap_operation = _fold_branches(self.cheap_rpr_conv, self.cheap_rpr_scale,
                                                  self.cheap_rpr_skip, self.dw_size)
            for name in ("primary_rpr_conv", "primary_rpr_scale", "primary_rpr_skip",
                         "cheap_rpr_conv", "cheap_rpr_scale", "cheap_rpr_skip"):
                setattr(self, name, None)
        if self.mode != "ori":
            fold_sequential_conv_bn(self.short_conv)

