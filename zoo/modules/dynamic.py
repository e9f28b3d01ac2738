"""Dynamic convolution (CondConv) blocks as published on YOLOv5: DynamicConv, a dynamic GhostModule and
the C3 variants built from them.

The per-sample kernel is a routing-weighted sum of expert kernels. The forward computes it as a matmul
(routing x experts) and runs one grouped conv over batch x groups, so FLOP counters that see aten
matmul/convolution count both the mixing and the convolution.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..fuse import bn_scale_shift
from ..limits import MAX_EXPERTS, check_count
from ..registry import register_module
from .yolov5 import C3, Bottleneck, autopad, batch_norm, make_act

FAMILY = "yolov5"


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class CondConv2d(nn.Module):
    """Conditionally parameterised conv: `num_experts` kernels mixed per sample by routing weights.

    `weight` holds the experts flattened, (num_experts, c2 * c1/g * kh * kw). After BN folding the BN
    shift lives in `shift` (one bias per output channel, shared by all samples: the routing weights are
    sigmoids and need not sum to 1, so the shift cannot go into the experts).
    """

    def __init__(self, c1: int, c2: int, k: Any = 3, s: Any = 1, padding: Any = 0, d: Any = 1, g: int = 1,
                 bias: bool = False, num_experts: int = 4) -> None:
        super().__init__()
        check_count("num_experts", num_experts, MAX_EXPERTS)
        if c1 % g or c2 % g:
            raise ValueError(f"channels {c1} -> {c2} are not divisible by groups {g}")
        self.in_channels, self.out_channels, self.groups = c1, c2, g
        self.kernel_size, self.stride, self.padding, self.dilation = _pair(k), _pair(s), _pair(padding), _pair(d)
        self.num_experts = num_experts
        self.weight_shape = (c2, c1 // g, *self.kernel_size)
        self.weight = nn.Parameter(torch.empty(num_experts, math.prod(self.weight_shape)))
        self.bias = nn.Parameter(torch.empty(num_experts, c2)) if bias else None
        self.shift: nn.Parameter | None = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Each expert initialised as a plain Conv2d of the same shape would be."""
        fan_in = math.prod(self.weight_shape[1:])
        bound = 1.0 / math.sqrt(fan_in)
        for e in range(self.num_experts):
            kernel = torch.empty(self.weight_shape)
            nn.init.kaiming_uniform_(kernel, a=math.sqrt(5))
            self.weight[e].copy_(kernel.flatten())
            if self.bias is not None:
                self.bias[e].uniform_(-bound, bound)

    def forward(self, x: torch.Tensor, routing: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if torch.jit.is_tracing():
            # a traced graph (FLOP counting) would otherwise record the size arithmetic as aten::mul
            # ops that cost nothing; the batch is fixed in a trace anyway
            b = int(b)
        kernel = torch.matmul(routing, self.weight).reshape(-1, *self.weight_shape[1:])
        bias = torch.matmul(routing, self.bias).reshape(-1) if self.bias is not None else None
        if self.shift is not None:
            shift = self.shift.expand(b, -1).reshape(-1)
            bias = shift if bias is None else bias + shift
        out = F.conv2d(x.reshape(1, -1, x.shape[2], x.shape[3]), kernel, bias, self.stride, self.padding,
                       self.dilation, self.groups * b)
        return out.reshape(-1, self.out_channels, out.shape[-2], out.shape[-1])

    @torch.no_grad()
    def fold_bn(self, bn: nn.BatchNorm2d) -> None:
        """Scale every expert (and expert bias) by the BN scale; the BN shift becomes `shift`."""
        scale, shift = bn_scale_shift(bn)
        experts = self.weight.view(self.num_experts, self.out_channels, -1)
        experts.mul_(scale.reshape(1, -1, 1))
        if self.bias is not None:
            self.bias.mul_(scale.reshape(1, -1))
        self.shift = nn.Parameter(shift if self.shift is None else self.shift * scale + shift)


class DynamicConvSingle(nn.Module):
    """Routing (global average pool -> Linear -> sigmoid) feeding a CondConv2d."""

    def __init__(self, c1: int, c2: int, k: Any = 1, s: Any = 1, padding: Any = 0, d: Any = 1, g: int = 1,
                 bias: bool = False, num_experts: int = 4) -> None:
        super().__init__()
        check_count("num_experts", num_experts, MAX_EXPERTS)
        self.routing = nn.Linear(c1, num_experts)
        self.cond_conv = CondConv2d(c1, c2, k, s, padding, d, g, bias, num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.routing(F.adaptive_avg_pool2d(x, 1).flatten(1)))
        return self.cond_conv(x, weights)


@register_module("DynamicConv", family=FAMILY, io="out_arg", example=(-1, [32, 3, 2]))
class DynamicConv(nn.Module):
    """YOLOv5 Conv with a dynamic (CondConv, 4 experts) kernel: routing + CondConv2d -> BN -> SiLU."""

    def __init__(self, c1: int, c2: int, k: Any = 1, s: Any = 1, p: Any = None, g: int = 1, d: int = 1,
                 act: Any = True, num_experts: int = 4) -> None:
        super().__init__()
        self.conv = DynamicConvSingle(c1, c2, k, s, autopad(k, p, d), d, g, num_experts=num_experts)
        self.bn: nn.Module = batch_norm(c2)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def reparameterize(self) -> None:
        """Fold BN into every expert (exact: the BN is affine per channel after a linear mix)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv.cond_conv.fold_bn(self.bn)
            self.bn = nn.Identity()


@register_module("GhostModule", family=FAMILY, io="out_arg", example=(-1, [64, 1]))
class GhostModule(nn.Module):
    """Ghost module with dynamic convs: a primary conv to ceil(oup/ratio), a cheap depthwise one for the rest."""

    def __init__(self, inp: int, oup: int, kernel_size: int = 1, ratio: int = 2, dw_size: int = 3,
                 stride: int = 1, num_experts: int = 4) -> None:
        super().__init__()
        self.oup = oup
        init = math.ceil(oup / ratio)
        new = init * (ratio - 1)
        self.primary_conv = DynamicConv(inp, init, kernel_size, stride, num_experts=num_experts)
        self.cheap_operation = DynamicConv(init, new, dw_size, 1, g=init, num_experts=num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary_conv(x)
        return torch.cat((y, self.cheap_operation(y)), 1)[:, :self.oup]


@register_module("C3_GhostDynamicConv", family=FAMILY, io="out_arg", repeat="inside")
class C3_GhostDynamicConv(C3):
    """C3 whose inner path is n dynamic GhostModules (no residual inside, whatever `shortcut` says)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1,
                 e: float = 0.5) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return nn.Sequential(*(GhostModule(c_, c_) for _ in range(n)))


class Bottleneck_DynamicConv(Bottleneck):
    """YOLOv5 Bottleneck whose 3x3 conv is a DynamicConv (same wiring, same residual rule)."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__(c1, c2, shortcut, g, e)
        self.cv2 = DynamicConv(int(c2 * e), c2, 3, 1, g=g)


@register_module("C3_DynamicConv", family=FAMILY, io="out_arg", repeat="inside",
                 example=(-1, [64]))
class C3_DynamicConv(C3):
    """C3 whose bottlenecks use a DynamicConv as their 3x3 conv."""

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return nn.Sequential(*(Bottleneck_DynamicConv(c_, c_, shortcut, g, e=1.0) for _ in range(n)))
