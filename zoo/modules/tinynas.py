"""TinyNAS super-blocks (DAMO-YOLO's searched backbone stages) as config rows.

`[-1, L, ResK1KX, [out, btn, k, stride]]` is one searched stage of depth L: the first block carries
the stride and takes the row's input width, the L-1 others keep `out`. Structure per MODULES.md:
k1kx = 1x1 ConvBN -> act -> RepConv kxk (stride, no act) -> + residual when stride is 1 (1x1 ConvBN
projection when widths differ) -> act; kxkx replaces the first 1x1 by a kxk conv. The RepConv here is
private (DAMO's: kxk ConvBN + 1x1 ConvBN summed, no identity branch) so this family file stands alone;
`reparameterize()` folds every branch and BN into plain convs (the deploy form the MAE score reads).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..fuse import conv_branch, conv_like, fold_branches, fold_conv_bn_attrs
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError

FAMILY = "damo"
_ACTS = {"relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "identity": nn.Identity,
         "lrelu": lambda: nn.LeakyReLU(0.1), "hardsigmoid": nn.Hardsigmoid}


def _activation(name: Any) -> nn.Module:
    if name not in _ACTS:
        raise ValueError(f"act must be one of {', '.join(_ACTS)}, got {name!r}")
    return _ACTS[name]()


class _ConvBN(nn.Module):
    """Conv2d (no bias, 'same' padding) + BatchNorm2d; folds to one biased conv."""

    def __init__(self, c1: int, c2: int, k: int, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def reparameterize(self) -> None:
        fold_conv_bn_attrs(self)


class _RepConv(nn.Module):
    """DAMO's RepConv without activation: kxk ConvBN + 1x1 ConvBN (padding 0), summed."""

    def __init__(self, c1: int, c2: int, k: int, s: int = 1) -> None:
        super().__init__()
        if k % 2 == 0:
            raise ValueError(f"RepConv needs an odd kernel, got k={k}")
        self.k = k
        self.dense: nn.Module | None = _ConvBN(c1, c2, k, s)
        self.one: nn.Module | None = nn.Sequential(nn.Conv2d(c1, c2, 1, s, 0, bias=False), nn.BatchNorm2d(c2))
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return self.dense(x) + self.one(x)  # type: ignore[misc]

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.fused is not None:
            return
        dense: nn.Conv2d = self.dense.conv  # type: ignore[union-attr,assignment]
        kernel, bias = fold_branches([conv_branch(dense, self.dense.bn),  # type: ignore[union-attr]
                                      conv_branch(self.one[0], self.one[1])], self.k)  # type: ignore[index]
        self.fused, self.dense, self.one = conv_like(dense, kernel, bias), None, None


class _ResBlock(nn.Module):
    """One TinyNAS residual block; `first_k` 1 gives k1kx, k gives kxkx."""

    def __init__(self, c1: int, c2: int, btn: int, k: int, s: int, first_k: int, act: str) -> None:
        super().__init__()
        if s not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {s}")
        self.conv1 = _ConvBN(c1, btn, first_k)
        self.act1 = _activation(act)
        self.conv2 = _RepConv(btn, c2, k, s)
        self.residual = s == 1
        self.proj: nn.Module | None = _ConvBN(c1, c2, 1) if self.residual and c1 != c2 else None
        self.act2 = _activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.act1(self.conv1(x)))
        if self.residual:
            y = y + (self.proj(x) if self.proj is not None else x)
        return self.act2(y)


def _stage_rule(ctx: RowContext) -> Resolved:
    """args [out, btn, k, stride(, act)]: out and btn are channels (width-scaled); L goes inside."""
    args = ctx.args
    if len(args) < 4 or len(args) > 5:
        raise RuleError(f"takes [out, btn, k, stride(, act)], got {list(args)}")
    out, btn = ctx.channels(args[0]), ctx.channels(args[1])
    k, s = args[2], args[3]
    for name, v in (("k", k), ("stride", s)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RuleError(f"{name} must be a positive integer, got {v!r}")
    return Resolved((ctx.c1, out, btn, k, s, ctx.n, *args[4:]), out)


_stage_rule.__name__ = "out_arg (out, btn) +n"


class _TinyNASStage(nn.Module):
    """L blocks; the first takes the input width and the stride."""

    first_kernel_is_k = False

    def __init__(self, c1: int, c2: int, btn: int, k: int = 3, s: int = 1, n: int = 1,
                 act: str = "relu") -> None:
        super().__init__()
        fk = k if self.first_kernel_is_k else 1
        self.m = nn.Sequential(*(_ResBlock(c1 if i == 0 else c2, c2, btn, k, s if i == 0 else 1, fk, act)
                                 for i in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)

    def reparameterize(self) -> None:
        """Fold every RepConv and ConvBN of the stage (the inference graph)."""
        for mod in list(self.modules()):
            if isinstance(mod, (_RepConv, _ConvBN)):
                mod.reparameterize()


@register_module("ResK1KX", family=FAMILY, io=_stage_rule, repeat="inside", channels=(0, 1))
class ResK1KX(_TinyNASStage):
    """TinyNAS k1kx stage: L blocks of 1x1 ConvBN-act then RepConv kxk, residual at stride 1."""


@register_module("ResKXKX", family=FAMILY, io=_stage_rule, repeat="inside", channels=(0, 1), example=(-1, [64, 32, 3, 1]))
class ResKXKX(_TinyNASStage):
    """TinyNAS kxkx stage: L blocks of kxk ConvBN-act then RepConv kxk, residual at stride 1."""

    first_kernel_is_k = True
