"""DAMO-YOLO's Efficient RepGFPN blocks (ConvBNAct, RepConv, BasicBlock_3x3_Reverse, CSPStage).

Registered under family "damo": Ultralytics has a different RepConv, and a YOLOv5 config still finds
CSPStage because only one other family has it. Attribute names follow DAMO-YOLO's so its state dicts
load; BatchNorm uses YOLOv5's eps/momentum because the published neck runs inside YOLOv5, whose
initialisation sets them on every BatchNorm2d.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..fuse import conv_branch, conv_like, fold_branches, fold_conv_bn_attrs
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError
from .yolov5 import batch_norm

FAMILY = "damo"

_ACTIVATIONS = {
    "silu": nn.SiLU, "swish": nn.SiLU,  # DAMO's Swish is x * sigmoid(x), the same function as SiLU
    "relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.1), "hardsigmoid": nn.Hardsigmoid,
    "identity": nn.Identity,
}


def damo_activation(name: Any) -> nn.Module:
    """DAMO-YOLO's activation names; anything else is a clear error, never a silent default."""
    if isinstance(name, str) and name.lower() in _ACTIVATIONS:
        return _ACTIVATIONS[name.lower()]()
    raise ValueError(f"act must be one of {', '.join(_ACTIVATIONS)}, got {name!r}")


def conv_bn(c1: int, c2: int, k: int, s: int = 1, p: int | None = None, g: int = 1) -> nn.Sequential:
    """Conv2d without bias + BN as a named Sequential (keys `conv`, `bn`), as DAMO's branches are."""
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False))
    seq.add_module("bn", batch_norm(c2))
    return seq


@register_module("ConvBNAct", family=FAMILY, io="out_arg", example=(-1, [32, 3, 2, 1, "relu"]))
class ConvBNAct(nn.Module):
    """Conv2d (no bias, padding (k-1)//2) + BN + a DAMO-named activation."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: str = "silu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, (k - 1) // 2, groups=g, bias=False)
        self.bn = batch_norm(c2)
        self.act = damo_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def reparameterize(self) -> None:
        fold_conv_bn_attrs(self)


@register_module("RepConv", family=FAMILY, io="out_arg", example=(-1, [64, 3, 1]))
class RepConv(nn.Module):
    """RepVGG-style 3x3 + 1x1 branches (no identity branch) that fold into one 3x3 conv for inference."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, g: int = 1, act: str = "relu") -> None:
        super().__init__()
        if k != 3:
            raise ValueError(f"RepConv folds into a 3x3 conv; kernel {k} is not supported")
        self.in_channels, self.out_channels, self.stride, self.groups = c1, c2, s, g
        self.rbr_dense: nn.Module | None = conv_bn(c1, c2, 3, s, 1, g)
        self.rbr_1x1: nn.Module | None = conv_bn(c1, c2, 1, s, 0, g)
        self.rbr_reparam: nn.Conv2d | None = None
        self.nonlinearity = damo_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rbr_reparam is not None:
            return self.nonlinearity(self.rbr_reparam(x))
        return self.nonlinearity(self.rbr_dense(x) + self.rbr_1x1(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold each branch's BN, pad the 1x1 kernel to 3x3 and sum: one conv with bias."""
        if self.rbr_reparam is not None:
            return
        dense = self.rbr_dense.conv
        kernel, bias = fold_branches([conv_branch(dense, self.rbr_dense.bn),
                                      conv_branch(self.rbr_1x1.conv, self.rbr_1x1.bn)], 3)
        self.rbr_reparam = conv_like(dense, kernel, bias)
        self.rbr_dense = None
        self.rbr_1x1 = None


def basic_block_rule(ctx: RowContext) -> Resolved:
    """YAML [ch_out, hidden_ratio=1.0, act='silu', shortcut=True] -> (ch_in, hidden_ratio, ch_out, ...)."""
    if not ctx.args:
        raise RuleError("needs its output channels as the first argument")
    c2 = ctx.channels(ctx.args[0])
    rest = list(ctx.args[1:])
    ratio = rest.pop(0) if rest else 1.0
    return Resolved((ctx.c1, ratio, c2, *rest), c2)


basic_block_rule.__name__ = "out_arg (ch_in, ratio, ch_out)"


@register_module("BasicBlock_3x3_Reverse", family=FAMILY, io=basic_block_rule, channels=(0,),
                 example=(-1, [64, 0.75]))
class BasicBlock_3x3_Reverse(nn.Module):
    """RepConv to the hidden width, then a 3x3 ConvBNAct back; residual add (no act after it)."""

    def __init__(self, ch_in: int, ch_hidden_ratio: float, ch_out: int, act: str = "silu",
                 shortcut: bool = True) -> None:
        super().__init__()
        hidden = int(ch_in * ch_hidden_ratio)
        self.conv1 = ConvBNAct(hidden, ch_out, 3, 1, act=act)
        self.conv2 = RepConv(ch_in, hidden, 3, 1, act=act)
        # DAMO adds unconditionally (and fails when widths differ); we keep the block runnable and
        # record the dropped shortcut so `zoo.lint` can say so.
        self.add = bool(shortcut) and ch_in == ch_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.conv2(x))
        return x + y if self.add else y


@register_module("CSPStage", family=FAMILY, io="out_arg", repeat="inside",
                 example=(-1, [64]))
class CSPStage(nn.Module):
    """RepGFPN fusion stage: two 1x1 splits, n reversed basic blocks whose every output is kept, 1x1 fuse."""

    def __init__(self, ch_in: int, ch_out: int, n: int = 1, ch_hidden_ratio: float = 1.0,
                 act: str = "silu") -> None:
        super().__init__()
        first = ch_out // 2
        mid = ch_out - first
        self.conv1 = ConvBNAct(ch_in, first, 1, act=act)
        self.conv2 = ConvBNAct(ch_in, mid, 1, act=act)
        self.convs = nn.Sequential(*(BasicBlock_3x3_Reverse(mid, ch_hidden_ratio, mid, act=act, shortcut=True)
                                     for _ in range(n)))
        self.conv3 = ConvBNAct(mid * n + first, ch_out, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.conv1(x)]
        y = self.conv2(x)
        for block in self.convs:
            y = block(y)
            outs.append(y)
        return self.conv3(torch.cat(outs, 1))
