"""YOLO12's area-attention blocks (Ultralytics 8.4): A2C2f, ABlock, AAttn, with Ultralytics' attribute names
so checkpoints load. The hidden width of A2C2f is split into heads of 32 channels; its registration
declares the width granularity that implies (64 on c2 at the default e = 0.5) so a search stays buildable.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..limits import MAX_HEADS, check_count
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError, out_arg_rule
from .ultralytics import FAMILY, C3k, Conv

HEAD_DIM = 32  # A2C2f gives each ABlock hidden // 32 heads
RESIDUAL_SCALES = frozenset({"l", "x"})  # scales at which parse_model appends (residual=True, mlp_ratio=1.2)


class AAttn(nn.Module):
    """Self-attention within `area` horizontal strips of the map (fewer tokens per softmax than global
    attention), qkv/proj 1x1 convs and a 7x7 depthwise position conv on the values."""

    def __init__(self, dim: int, num_heads: int, area: int = 1) -> None:
        super().__init__()
        check_count("num_heads", num_heads, MAX_HEADS)
        self.area = area
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.all_head_dim = self.head_dim * num_heads
        c = self.all_head_dim
        self.qkv = Conv(dim, c * 3, 1, act=False)
        self.proj = Conv(c, dim, 1, act=False)
        self.pe = Conv(c, c, 7, 1, 3, g=c, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        c, hd = self.all_head_dim, self.head_dim
        groups = b * max(self.area, 1)  # each strip of h*w/area consecutive tokens attends within itself
        tokens = self.qkv(x).flatten(2).transpose(1, 2).reshape(groups, -1, 3 * c)
        # per head the channels are [query | key | value]: (groups, heads, 3 * head_dim, tokens)
        per_head = tokens.unflatten(2, (self.num_heads, 3 * hd)).permute(0, 2, 3, 1)
        query, key, value = per_head.split((hd, hd, hd), dim=2)
        # torch.matmul rather than a fused attention kernel, so that fvcore counts both products
        affinity = torch.matmul((query * hd ** -0.5).transpose(-2, -1), key)  # (groups, heads, t, t)
        mixed = torch.matmul(value, affinity.softmax(-1).transpose(-2, -1))  # (groups, heads, hd, t)

        def to_map(t: torch.Tensor) -> torch.Tensor:
            return t.permute(0, 3, 1, 2).reshape(b, h, w, c).permute(0, 3, 1, 2)

        value_map = to_map(value)
        return self.proj(to_map(mixed) + self.pe(value_map))


class ABlock(nn.Module):
    """Area attention then a 1x1 conv MLP, each with a residual."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 1.2, area: int = 1) -> None:
        super().__init__()
        self.attn = AAttn(dim, num_heads=num_heads, area=area)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(Conv(dim, hidden, 1), Conv(hidden, dim, 1, act=False))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """Ultralytics' init (truncated normal conv weights), so a fresh model starts where its does."""
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


def a2c2f_rule(ctx: RowContext) -> Resolved:
    """out_arg with n at 2; at l/x parse_model appends residual=True, mlp_ratio=1.2; the hidden width
    int(c2 * e) must be a positive multiple of 32 and the map's tokens divisible into `area` strips."""
    resolved = out_arg_rule(n_at=2)(ctx)
    args = list(resolved.args)
    if ctx.scale.name in RESIDUAL_SCALES:
        args.extend((True, 1.2))
    # constructor order: c1, c2, n, a2, area, residual, mlp_ratio, e, g, shortcut
    full = (*args, *(True, 1, False, 2.0, 0.5)[max(len(args) - 3, 0):])
    c2, a2, area, e = full[1], full[3], full[4], full[7]
    if isinstance(e, bool) or not isinstance(e, (int, float)) or e <= 0:
        raise RuleError(f"A2C2f's e must be a positive number, got {e!r}")
    hidden = int(c2 * e)
    if hidden < HEAD_DIM or hidden % HEAD_DIM:
        raise RuleError(f"A2C2f's hidden width int({c2} * {e}) = {hidden} must be a positive multiple of "
                        f"{HEAD_DIM} (its attention heads are {HEAD_DIM} wide)")
    if a2 and full[5] and c2 != ctx.c1:
        raise RuleError(f"A2C2f with a residual keeps its width: input {ctx.c1} != output {c2}")
    if a2:
        if isinstance(area, bool) or not isinstance(area, int) or area < 1:
            raise RuleError(f"A2C2f's area must be a positive integer with attention on, got {area!r}")
        tokens = ctx.inputs[0].height * ctx.inputs[0].width
        if tokens % area:
            raise RuleError(f"A2C2f's {ctx.inputs[0].height}x{ctx.inputs[0].width} map ({tokens} tokens) does "
                            f"not split into {area} areas; choose an image size it divides")
    return Resolved(tuple(args), resolved.out_channels)


a2c2f_rule.__name__ = "out_arg, residual at l/x"


@register_module("A2C2f", family=FAMILY, io=a2c2f_rule, repeat="inside", channels=(0,), width_step=2 * HEAD_DIM,
                 example=(-1, [128, True, 4]))
class A2C2f(nn.Module):
    """C2f-like block whose n inner blocks are pairs of area-attention ABlocks (a2) or C3k; an optional
    learnt per-channel `gamma` scales the output onto a residual (l/x scales)."""

    def __init__(self, c1: int, c2: int, n: int = 1, a2: bool = True, area: int = 1, residual: bool = False,
                 mlp_ratio: float = 2.0, e: float = 0.5, g: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        c_ = int(c2 * e)
        if c_ < HEAD_DIM or c_ % HEAD_DIM:
            raise ValueError(f"A2C2f's hidden width {c_} must be a positive multiple of {HEAD_DIM}")
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv((1 + n) * c_, c2, 1)
        self.gamma = nn.Parameter(0.01 * torch.ones(c2)) if a2 and residual else None
        self.m = nn.ModuleList(
            nn.Sequential(*(ABlock(c_, c_ // HEAD_DIM, mlp_ratio, area) for _ in range(2))) if a2
            else C3k(c_, c_, 2, shortcut, g) for _ in range(n))

    def forward(self, x: torch.Tensor) -> Any:
        y = [self.cv1(x)]
        for m in self.m:
            y.append(m(y[-1]))
        out = self.cv2(torch.cat(y, 1))
        if self.gamma is not None:
            return x + self.gamma.view(1, -1, 1, 1) * out
        return out
