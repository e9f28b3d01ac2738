"""DAMO-YOLO's remaining blocks (family "damo"): SPPBottleneck, the CSP wrapper of the TinyNAS_csp
backbone (DAMO-YOLO M/L) and the ZeroHead. TinyNAS stages are in tinynas.py, the RepGFPN neck blocks in
gfpn.py. Structure and widths follow MODULES.md §"DAMO-YOLO as its reference code builds it".
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..grids import level_points
from ..registry import register_family, register_module
from ..rules import Resolved, RowContext, RuleError
from .gfpn import ConvBNAct
from .tinynas import ResKXKX
from .yolov5 import Concat

FAMILY = "damo"
register_family(FAMILY, doc="DAMO-YOLO (TinyNAS backbones, RepGFPN neck, ZeroHead): chosen by `family: damo` only")

# YOLOv5 and Ultralytics both have a Concat, so a damo config needs its own entry to resolve the name.
register_module("Concat", family=FAMILY, io="concat")(Concat)


@register_module("SPPBottleneck", family=FAMILY, io="out_arg")
class SPPBottleneck(nn.Module):
    """SPP with parallel max-pools (5, 9, 13) between two 1x1 ConvBNActs (SiLU, whatever the backbone's)."""

    def __init__(self, c1: int, c2: int, k: Sequence[int] = (5, 9, 13), act: str = "silu") -> None:
        super().__init__()
        hidden = c1 // 2
        self.conv1 = ConvBNAct(c1, hidden, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k)
        self.conv2 = ConvBNAct(hidden * (len(k) + 1), c2, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], 1))


def csp_wrapper_rule(ctx: RowContext) -> Resolved:
    """[out, btn, k(, spp, act, block_act)] -> CSPWrapper(c1, out, btn, k, n, ...); out and btn scale."""
    if not 3 <= len(ctx.args) <= 6:
        raise RuleError(f"takes [out, btn, k(, spp, act, block_act)], got {list(ctx.args)}")
    out, btn = ctx.channels(ctx.args[0]), ctx.channels(ctx.args[1])
    if out % 2:
        raise RuleError(f"the CSP split needs an even width, got {out}")
    return Resolved((ctx.c1, out, btn, ctx.args[2], ctx.n, *ctx.args[3:]), out)


csp_wrapper_rule.__name__ = "out_arg (out, btn) +n"


@register_module("CSPWrapper", family=FAMILY, io=csp_wrapper_rule, repeat="inside", channels=(0, 1))
class CSPWrapper(nn.Module):
    """One TinyNAS_csp stage: a 3x3 s2 downsampler (it stands for the stage's strided first block), an
    optional SPP, then a CSP split: n kxkx blocks at half width beside a 1x1 shortcut, concat, 1x1 fuse.

    The wrapper's own convs use `act` (ReLU in DAMO-YOLO), the blocks `block_act` (SiLU for M).
    """


    def __init__(self, c1: int, c2: int, btn: int, k: int = 3, n: int = 1, spp: bool = False,
                 act: str = "relu", block_act: str = "silu") -> None:
        super().__init__()
        half = c2 // 2
        self.downsampler = ConvBNAct(c1, c2, 3, 2, act=act)
        self.spp = SPPBottleneck(c2, c2) if spp else None
        self.conv_shortcut = ConvBNAct(c2, half, 1, act=act)
        self.conv_start = ConvBNAct(c2, half, 1, act=act)
        self.convstem = ResKXKX(half, half, btn, k, 1, n, block_act)
        self.conv_fuse = ConvBNAct(2 * half, c2, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsampler(x)
        if self.spp is not None:
            x = self.spp(x)
        y = self.convstem(self.conv_start(x))
        return self.conv_fuse(torch.cat((y, self.conv_shortcut(x)), 1))


class Scale(nn.Module):
    """One learnable scalar multiplying a level's box logits."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Integral(nn.Module):
    """Expected distance from a softmax over reg_max + 1 bins (GFL): a fixed projection, not a parameter."""

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer("project", torch.linspace(0, reg_max, reg_max + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., 4 * (reg_max + 1)) logits -> (..., 4) distances in grid cells (sides l, t, r, b)."""
        probs = x.unflatten(-1, (4, self.reg_max + 1)).softmax(-1)
        bin_values = self.project.to(probs.dtype).unsqueeze(0)  # (1, bins): a linear map to one output
        return F.linear(probs, bin_values).squeeze(-1)


def zero_head_rule(ctx: RowContext) -> Resolved:
    """[nc(, reg_max)] -> ZeroHead(nc, ch, reg_max) with one level per input row."""
    if not 1 <= len(ctx.args) <= 2:
        raise RuleError(f"ZeroHead takes [nc(, reg_max)], got {len(ctx.args)} arguments")
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("a detection head cannot read another head")
    return Resolved((ctx.args[0], [s.channels for s in ctx.inputs], *ctx.args[1:]), None,
                    {"strides": [s.stride for s in ctx.inputs]})


zero_head_rule.__name__ = "multi_in"


@register_module("ZeroHead", family=FAMILY, io=zero_head_rule, channels=())
class ZeroHead(nn.Module):
    """DAMO-YOLO's head with no stacked convs: per level one 3x3 class conv and one 3x3 GFL box conv.

    Eval returns ((B, anchors, 4 + nc) [x1, y1, x2, y2 in pixels, class scores], raw); training returns
    the raw (class logits (B, A, nc), box distributions (B, A, 4 (reg_max + 1))).
    """

    def __init__(self, nc: int = 80, ch: Sequence[int] = (), reg_max: int = 16, *,
                 strides: Sequence[float] | None = None) -> None:
        super().__init__()
        if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
            raise ValueError(f"nc must be a positive integer, got {nc!r}")
        self.nc, self.reg_max, self.nl = nc, reg_max, len(ch)
        self.strides = [float(s) for s in strides] if strides else [8.0 * 2 ** i for i in range(self.nl)]
        self.cls_convs = nn.ModuleList()  # DAMO's stacked convs: none for the published T/S/M (stacked_convs 0)
        self.reg_convs = nn.ModuleList()
        self.gfl_cls = nn.ModuleList(nn.Conv2d(c, nc, 3, padding=1) for c in ch)
        self.gfl_reg = nn.ModuleList(nn.Conv2d(c, 4 * (reg_max + 1), 3, padding=1) for c in ch)
        self.scales = nn.ModuleList(Scale(1.0) for _ in ch)
        self.integral = Integral(reg_max)
        self._prior_cache: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """Small weights; class logits start at a 1% prior."""
        for conv in (*self.gfl_cls, *self.gfl_reg):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        for conv in self.gfl_cls:
            nn.init.constant_(conv.bias, -4.595)  # -log((1 - 0.01) / 0.01)

    def _priors(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell origins in pixels (A, 2) and per-anchor strides (A, 1), cached per input shape."""
        shapes = tuple(f.shape[2:] for f in feats)
        key = (shapes, feats[0].device, feats[0].dtype)
        if key not in self._prior_cache:
            self._prior_cache = {key: level_points(shapes, self.strides, feats[0], in_pixels=True)}
        return self._prior_cache[key]

    def forward(self, x: list[torch.Tensor]) -> Any:
        cls = torch.cat([self.gfl_cls[i](f).flatten(2) for i, f in enumerate(x)], 2).permute(0, 2, 1)
        reg = torch.cat([self.scales[i](self.gfl_reg[i](f)).flatten(2) for i, f in enumerate(x)], 2).permute(0, 2, 1)
        if self.training:
            return cls, reg
        points, strides = self._priors(x)
        dist = self.integral(reg) * strides
        boxes = torch.cat((points - dist[..., :2], points + dist[..., 2:]), -1)
        return torch.cat((boxes, cls.sigmoid()), -1), (cls, reg)
