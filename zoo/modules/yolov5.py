"""The YOLOv5 v7.0 module set, with YOLOv5's attribute names so its state dicts load.

Structure and widths follow shared/MODULES.md; each class carries its channel rule in its registration.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..activation import Activation, default_activation
from ..config import anchors_problem
from ..errors import shown
from ..fuse import fold_conv_bn_attrs
from ..grids import cell_grid
from ..norms import norm_settings
from ..registry import register_family, register_module
from ..rules import Resolved, RowContext, RuleError, anchors_per_level

FAMILY = "yolov5"


def head_outputs(nc: int, anchors: Any) -> frozenset[int]:
    """YOLOv5's parse_model leaves `no = na * (nc + 5)` as written (its `if c2 != no`); nc itself scales."""
    na = anchors_per_level(anchors)
    return frozenset({na * (nc + 5)}) if na else frozenset()


register_family(FAMILY, recognise=lambda data: True, priority=-100, unscaled=head_outputs,
                doc="YOLOv5 v7.0: depth/width multiples (or scales), anchors; the fallback family")
BN_EPS, BN_MOMENTUM = 1e-3, 0.03  # what YOLOv5's initialize_weights sets on every BatchNorm2d


def autopad(k: int | Sequence[int], p: Any = None, d: int = 1) -> Any:
    """'Same' padding for odd kernels, dilation included, unless p is given."""
    if p is not None:
        return p
    if isinstance(k, int):
        return (d * (k - 1) + 1) // 2
    return [(d * (x - 1) + 1) // 2 for x in k]


def make_act(act: Any) -> nn.Module:
    """True: the build's default activation; False/None: identity; a module or Activation: that."""
    if act is True:
        return default_activation()
    if isinstance(act, Activation):
        return act.make()
    if isinstance(act, nn.Module):
        return act
    if act in (False, None):
        return nn.Identity()
    raise TypeError(f"act must be True, False or an activation, got {act!r}")


def batch_norm(c: int) -> nn.BatchNorm2d:
    """BN_EPS and BN_MOMENTUM unless the build's family sets others for its config (zoo.norms)."""
    settings = norm_settings()
    return nn.BatchNorm2d(c, eps=settings.eps, momentum=settings.momentum)


CONV_KERNELS = (1, 3, 5, 7)  # kernel sizes a search may give a Conv-like row (odd: "same" padding)


@register_module("Conv", family=FAMILY, io="out_arg", kernels=(1,), kernel_sizes=CONV_KERNELS,
                 example=(-1, [32, 3, 2]))
class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + activation (SiLU unless the config's `activation:`)."""

    def __init__(self, c1: int, c2: int, k: Any = 1, s: Any = 1, p: Any = None, g: int = 1, d: int = 1,
                 act: Any = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = batch_norm(c2)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def reparameterize(self) -> None:
        fold_conv_bn_attrs(self)


@register_module("DWConv", family=FAMILY, io="out_arg", kernels=(1,), kernel_sizes=CONV_KERNELS,
                 example=(-1, [64, 5, 1]))
class DWConv(Conv):
    """Depth-wise Conv: groups = gcd(c1, c2)."""

    def __init__(self, c1: int, c2: int, k: Any = 1, s: Any = 1, d: int = 1, act: Any = True) -> None:
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), d=d, act=act)


@register_module("Focus", family=FAMILY, io="out_arg",
                 example=(-1, [32, 3]))
class Focus(nn.Module):
    """Space-to-depth (4 pixel phases on channels) then Conv(4*c1, c2)."""

    def __init__(self, c1: int, c2: int, k: Any = 1, s: Any = 1, p: Any = None, g: int = 1,
                 act: Any = True) -> None:
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, s, p, g, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = (x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2])
        return self.conv(torch.cat(phases, 1))


@register_module("Bottleneck", family=FAMILY, io="out_arg", expansion=(3,),
                 example=(-1, [64]))
class Bottleneck(nn.Module):
    """1x1 then 3x3 Conv, residual when shortcut and c1 == c2."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_, c2, 3, 1, g=g)
        self.add = bool(shortcut) and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


@register_module("BottleneckCSP", family=FAMILY, io="out_arg", repeat="inside", expansion=(3,),
                 example=(-1, [64, True]))
class BottleneckCSP(nn.Module):
    """CSP bottleneck (CSPNet): bare 1x1 convs on both paths, BN + act on the concat."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1,
                 e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = nn.Conv2d(c1, c_, 1, 1, bias=False)
        self.cv3 = nn.Conv2d(c_, c_, 1, 1, bias=False)
        self.cv4 = Conv(2 * c_, c2, 1, 1)
        self.bn = batch_norm(2 * c_)
        self.act = nn.SiLU()
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.cv3(self.m(self.cv1(x)))
        y2 = self.cv2(x)
        return self.cv4(self.act(self.bn(torch.cat((y1, y2), 1))))


@register_module("CrossConv", family=FAMILY, io="out_arg",
                 example=(-1, [64, 3, 1, 1, 1.0, True]))
class CrossConv(nn.Module):
    """(1,k) then (k,1) Conv, residual when shortcut and c1 == c2."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, g: int = 1, e: float = 1.0,
                 shortcut: bool = False) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, (1, k), (1, s))
        self.cv2 = Conv(c_, c2, (k, 1), (s, 1), g=g)
        self.add = bool(shortcut) and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


@register_module("C3", family=FAMILY, io="out_arg", repeat="inside", expansion=(3,),
                 example=(-1, [64]))
class C3(nn.Module):
    """CSP with 3 convs: n bottlenecks on cv1's path, concatenated with cv2's, fused by cv3."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1,
                 e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = self.inner(c_, n, shortcut, g)

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


@register_module("C3x", family=FAMILY, io="out_arg", repeat="inside", expansion=(3,),
                 example=(-1, [64]))
class C3x(C3):
    """C3 with cross convolutions."""

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return nn.Sequential(*(CrossConv(c_, c_, 3, 1, g, 1.0, shortcut) for _ in range(n)))


class TransformerLayer(nn.Module):
    """Self-attention + 2-layer MLP (no norm layers), both residual."""

    def __init__(self, c: int, num_heads: int) -> None:
        super().__init__()
        self.q = nn.Linear(c, c, bias=False)
        self.k = nn.Linear(c, c, bias=False)
        self.v = nn.Linear(c, c, bias=False)
        self.ma = nn.MultiheadAttention(embed_dim=c, num_heads=num_heads)
        self.fc1 = nn.Linear(c, c, bias=False)
        self.fc2 = nn.Linear(c, c, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ma(self.q(x), self.k(x), self.v(x), need_weights=False)[0] + x
        return self.fc2(self.fc1(x)) + x


class TransformerBlock(nn.Module):
    """Vision transformer block on the flattened feature map with a learned position projection."""

    def __init__(self, c1: int, c2: int, num_heads: int, num_layers: int) -> None:
        super().__init__()
        self.conv = Conv(c1, c2) if c1 != c2 else None
        self.linear = nn.Linear(c2, c2)
        self.tr = nn.Sequential(*(TransformerLayer(c2, num_heads) for _ in range(num_layers)))
        self.c2 = c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        b, _, h, w = x.shape
        p = x.flatten(2).permute(2, 0, 1)
        return self.tr(p + self.linear(p)).permute(1, 2, 0).reshape(b, self.c2, h, w)


@register_module("C3TR", family=FAMILY, io="out_arg", repeat="inside",
                 example=(-1, [64]))
class C3TR(C3):
    """C3 whose inner path is a 4-head TransformerBlock of n layers."""

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return TransformerBlock(c_, c_, 4, n)


@register_module("SPP", family=FAMILY, io="out_arg",
                 example=(-1, [64, [5, 9, 13]]))
class SPP(nn.Module):
    """Spatial pyramid pooling: parallel same-size max-pools, concatenated."""

    def __init__(self, c1: int, c2: int, k: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


@register_module("SPPF", family=FAMILY, io="out_arg", kernels=(1,), kernel_sizes=(3, 5, 7, 9),
                 example=(-1, [64, 5]))
class SPPF(nn.Module):
    """SPP-Fast: one max-pool applied three times in sequence (same output as SPP(5, 9, 13))."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


@register_module("C3SPP", family=FAMILY, io="out_arg",
                 example=(-1, [64, [5, 9, 13]]))
class C3SPP(C3):
    """C3 whose inner path is an SPP (YOLOv5 does not insert n for it)."""

    def __init__(self, c1: int, c2: int, k: Sequence[int] = (5, 9, 13), n: int = 1, shortcut: bool = True,
                 g: int = 1, e: float = 0.5) -> None:
        self._k = tuple(k)
        super().__init__(c1, c2, n, shortcut, g, e)

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return SPP(c_, c_, self._k)


@register_module("GhostConv", family=FAMILY, io="out_arg", kernels=(1,), kernel_sizes=CONV_KERNELS,
                 example=(-1, [64, 3, 2]))
class GhostConv(nn.Module):
    """Ghost convolution (GhostNet): half the outputs from a conv, half from a cheap 5x5 depthwise."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: Any = True) -> None:
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, k, s, None, g, act=act)
        self.cv2 = Conv(c_, c_, 5, 1, None, c_, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        return torch.cat((y, self.cv2(y)), 1)


@register_module("GhostBottleneck", family=FAMILY, io="out_arg", kernels=(1,), kernel_sizes=(3, 5, 7),
                 example=(-1, [64, 3, 2]))
class GhostBottleneck(nn.Module):
    """GhostConv -> (depthwise s2) -> GhostConv, with a conv shortcut when strided."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        c_ = c2 // 2
        self.conv = nn.Sequential(
            GhostConv(c1, c_, 1, 1),
            DWConv(c_, c_, k, s, act=False) if s == 2 else nn.Identity(),
            GhostConv(c_, c2, 1, 1, act=False))
        self.shortcut = nn.Sequential(DWConv(c1, c1, k, s, act=False), Conv(c1, c2, 1, 1, act=False)) \
            if s == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


@register_module("C3Ghost", family=FAMILY, io="out_arg", repeat="inside", expansion=(3,),
                 example=(-1, [64]))
class C3Ghost(C3):
    """C3 with GhostBottlenecks."""

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return nn.Sequential(*(GhostBottleneck(c_, c_) for _ in range(n)))


def _gain_rule(grow: bool):
    def rule(ctx: RowContext) -> Resolved:
        gain = ctx.args[0] if ctx.args else 2
        if isinstance(gain, bool) or not isinstance(gain, int) or gain < 1:
            raise RuleError(f"gain must be a positive integer, got {gain!r}")
        c1 = ctx.c1
        if grow:
            return Resolved(tuple(ctx.args), c1 * gain ** 2)
        if c1 % gain ** 2:
            raise RuleError(f"input channels {c1} are not divisible by gain^2 = {gain ** 2}")
        return Resolved(tuple(ctx.args), c1 // gain ** 2)

    rule.__name__ = "channels*gain^2" if grow else "channels/gain^2"
    return rule


@register_module("Contract", family=FAMILY, io=_gain_rule(True), channels=(),
                 example=(-1, [2]))
class Contract(nn.Module):
    """Space to depth: (b, c, h, w) -> (b, c*g*g, h/g, w/g), channels grouped by pixel phase.

    Output channel (dy * g + dx) * c + k holds input channel k at phase (dy, dx) of each g x g cell.
    """

    def __init__(self, gain: int = 2) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = self.gain * self.gain
        by_channel = F.pixel_unshuffle(x, self.gain)  # channel-major: k * g*g + phase
        return by_channel.unflatten(1, (-1, phases)).transpose(1, 2).flatten(1, 2)


@register_module("Expand", family=FAMILY, io=_gain_rule(False), channels=(),
                 example=(-1, [2]))
class Expand(nn.Module):
    """Depth to space: (b, c, h, w) -> (b, c/g/g, h*g, w*g), the inverse of Contract's channel layout."""

    def __init__(self, gain: int = 2) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = self.gain * self.gain
        phase_major = x.unflatten(1, (phases, -1))  # Contract's order: phase * c + k
        return F.pixel_shuffle(phase_major.transpose(1, 2).flatten(1, 2), self.gain)


@register_module("Concat", family=FAMILY, io="concat",
                 example=([-1, 4], [1]))
class Concat(nn.Module):
    """Concatenate a list of tensors along a dimension (channels by default)."""

    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


def _anchor_table(anchors: Any, levels: int) -> list[list[float]]:
    problem = anchors_problem(anchors)
    if problem is not None:
        raise RuleError(f"anchors: {problem}")
    if isinstance(anchors, int):  # n anchors per level, to be evolved by AutoAnchor
        return [list(range(anchors * 2))] * levels
    if len(anchors) != levels:
        raise RuleError(f"anchors has {len(anchors)} levels but the head reads {levels} rows")
    return anchors


def _head_inputs(ctx: RowContext) -> tuple[list[int], list[float]]:
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("a detection head cannot read another head")
    return [s.channels for s in ctx.inputs], [s.stride for s in ctx.inputs]  # type: ignore[misc]


def detect_rule(ctx: RowContext) -> Resolved:
    """[nc, anchors] -> Detect(nc, anchors, ch, strides=...) with one level per input row."""
    if len(ctx.args) != 2:
        raise RuleError(f"Detect takes [nc, anchors], got {len(ctx.args)} arguments")
    nc, anchors = ctx.args
    ch, strides = _head_inputs(ctx)
    return Resolved((nc, _anchor_table(anchors, len(ch)), ch), None, {"strides": strides})


detect_rule.__name__ = "multi_in"


@register_module("Detect", family=FAMILY, io=detect_rule, channels=(),
                 example=([2, 3, 4], ["nc", "anchors"]))
class Detect(nn.Module):
    """YOLOv5 anchor-based head: one 1x1 conv per level, boxes decoded in eval mode."""

    def __init__(self, nc: int = 80, anchors: Sequence[Sequence[float]] = (), ch: Sequence[int] = (),
                 inplace: bool = True, *, strides: Sequence[float] | None = None) -> None:
        super().__init__()
        if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
            raise ValueError(f"nc must be a positive integer, got {nc!r}")
        if not isinstance(anchors, (list, tuple)):
            raise ValueError(f"anchors must be a [w, h, w, h, ...] list per level, got {shown(anchors)}")
        problem = anchors_problem([list(a) if isinstance(a, tuple) else a for a in anchors], table=True)
        if problem is not None:
            raise ValueError(f"anchors: {problem}")
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.inplace = inplace
        strides_ = [float(s) for s in strides] if strides else [8.0 * 2 ** i for i in range(self.nl)]
        table = [[(float(a[j]), float(a[j + 1])) for j in range(0, len(a), 2)] for a in anchors]
        area = [sum(w * h for w, h in level) / len(level) for level in table]
        if self.nl > 1 and (area[-1] - area[0]) * (strides_[-1] - strides_[0]) < 0:
            table = table[::-1]  # anchors written in the opposite order to the strides
        self.register_buffer("anchors", torch.tensor(
            [[(w / s, h / s) for w, h in level] for level, s in zip(table, strides_)], dtype=torch.float32))
        self.strides = strides_
        self.stride = torch.tensor(strides_)  # plain attribute: not in the state dict, as in YOLOv5
        self.m = nn.ModuleList(nn.Conv2d(c, self.no_total * self.na, 1) for c in ch)
        self._init_biases()

    @property
    def no_total(self) -> int:
        return self.no

    @torch.no_grad()
    def _init_biases(self) -> None:
        """Start from sensible priors (YOLOv5's figures): ~8 objects in a 640 px image spread over a
        level's cells, and a class probability of about 0.6 / nc."""
        class_prior = math.log(0.6 / (self.nc - 0.99999))
        for conv, stride in zip(self.m, self.strides):
            cells = (640 / stride) ** 2
            per_anchor = conv.bias.view(self.na, self.no_total)  # one row of outputs per anchor
            per_anchor[:, 4].add_(math.log(8 / cells))
            per_anchor[:, 5:5 + self.nc].add_(class_prior)

    def _place(self, xy: torch.Tensor, wh: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel centres and sizes from the sigmoid box outputs (B, na, ny, nx, 2 each) of level i.

        A centre may move up to half a cell beyond its own cell; a size ranges over (0, 4) anchors.
        """
        ny, nx = xy.shape[2:4]
        stride = self.strides[i]
        corner = cell_grid(ny, nx, xy) - 0.5  # (ny, nx, 2), broadcast over batch and anchors
        anchor_px = (self.anchors[i] * stride).view(1, self.na, 1, 1, 2).to(xy.dtype)
        return (xy * 2 + corner) * stride, (wh * 2) ** 2 * anchor_px

    def _decode(self, p: torch.Tensor, i: int) -> torch.Tensor:
        probs = p.sigmoid()
        centre, size = self._place(probs[..., :2], probs[..., 2:4], i)
        return torch.cat((centre, size, probs[..., 4:]), 4).view(p.shape[0], -1, self.no)

    def forward(self, x: list[torch.Tensor]) -> Any:
        out = []
        for i in range(self.nl):
            y = self.m[i](x[i])
            bs, _, ny, nx = y.shape
            out.append(y.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        if self.training:
            return out
        return torch.cat([self._decode(p, i) for i, p in enumerate(out)], 1), out


def segment_rule(ctx: RowContext) -> Resolved:
    """[nc, anchors, nm, npr] -> Segment(...); npr (YAML position 3) is width-scaled as YOLOv5 does."""
    if not 2 <= len(ctx.args) <= 4:
        raise RuleError(f"Segment takes [nc, anchors, nm, npr], got {len(ctx.args)} arguments")
    nc, anchors, *rest = ctx.args
    nm = rest[0] if rest else 32
    npr = rest[1] if len(rest) > 1 else 256
    for name, v in (("nm", nm), ("npr", npr)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RuleError(f"{name} must be a positive integer, got {v!r}")
    ch, strides = _head_inputs(ctx)
    return Resolved((nc, _anchor_table(anchors, len(ch)), nm, ctx.channels(npr), ch), None, {"strides": strides})


segment_rule.__name__ = "multi_in"


class Proto(nn.Module):
    """Mask prototypes: Conv 3x3 -> upsample x2 -> Conv 3x3 -> Conv 1x1 to nm masks."""

    def __init__(self, c1: int, c_: int = 256, c2: int = 32) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c_, k=3)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.cv2 = Conv(c_, c_, k=3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


@register_module("Segment", family=FAMILY, io=segment_rule, channels=(3,),
                 example=([2, 3, 4], ["nc", "anchors", 32, 64]))
class Segment(Detect):
    """Detect plus nm mask coefficients per anchor and a Proto branch on the first level."""

    def __init__(self, nc: int = 80, anchors: Sequence[Sequence[float]] = (), nm: int = 32, npr: int = 256,
                 ch: Sequence[int] = (), inplace: bool = True, *,
                 strides: Sequence[float] | None = None) -> None:
        self.nm = nm
        self.npr = npr
        super().__init__(nc, anchors, ch, inplace, strides=strides)
        self.proto = Proto(ch[0], npr, nm)

    @property
    def no_total(self) -> int:
        return self.nc + 5 + self.nm

    def _decode(self, p: torch.Tensor, i: int) -> torch.Tensor:
        """Boxes as Detect's; the nm mask coefficients pass through raw (no sigmoid)."""
        n_box = 5 + self.nc
        centre, size = self._place(p[..., :2].sigmoid(), p[..., 2:4].sigmoid(), i)
        scores, coefficients = p[..., 4:n_box].sigmoid(), p[..., n_box:]
        return torch.cat((centre, size, scores, coefficients), 4).view(p.shape[0], -1, self.no_total)

    def forward(self, x: list[torch.Tensor]) -> Any:
        proto = self.proto(x[0])
        out = []
        for i in range(self.nl):
            y = self.m[i](x[i])
            bs, _, ny, nx = y.shape
            out.append(y.view(bs, self.na, self.no_total, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        if self.training:
            return out, proto
        return torch.cat([self._decode(p, i) for i, p in enumerate(out)], 1), proto, out
