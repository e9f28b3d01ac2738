"""The Ultralytics (8.4) blocks of YOLOv8 and YOLO11, with Ultralytics' attribute names so checkpoints load.

Structure and closed-form widths follow shared/MODULES-ultralytics.md. What Ultralytics' parse_model decides
by scale or by earlier rows (C3k2's c3k flag at m/l/x, SPPF's activation on legacy rows, Detect's legacy
class branch) is decided here, in each block's registration rule. RT-DETR's blocks live in rtdetr.py.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..fuse import conv_branch, conv_like, fold_branches, identity_branch
from ..grids import level_points
from ..limits import MAX_HEADS, MAX_REG_MAX, MAX_REPEATS, check_count
from ..norms import TORCH as TORCH_NORM, NormSettings
from ..registry import register_family, register_module
from ..schema import Config
from ..rules import Resolved, Rule, RowContext, RuleError, out_arg_rule, same_width_rule
from .yolov5 import C3, Concat, Conv, DWConv, batch_norm, make_act

FAMILY = "ultralytics"
# Heads only Ultralytics has without anchors: a YOLOv5 Detect or Segment always takes them. Ultralytics' v3, v6 and v9
# files keep YOLOv5's depth/width multiples (or none) but end in one of these, so they are recognised by it.
ANCHOR_FREE_HEADS = frozenset({"Detect", "WorldDetect", "YOLOEDetect", "YOLOESegment", "YOLOESegment26",
                               "v10Detect", "Segment", "Pose", "OBB", "Pose26", "OBB26", "Segment26", "Depth",
                               "SemanticSegment"})


def recognise(data: Mapping[str, Any]) -> bool:
    """`scales` without anchors (v8 and later), or no anchors and a row naming an anchor-free head (v3, v6, v9)."""
    if "anchors" in data:
        return False
    if "scales" in data:
        return True
    rows = data.get("head")
    return isinstance(rows, list) and any(
        isinstance(r, list) and len(r) == 4 and r[2] in ANCHOR_FREE_HEADS for r in rows)


def classifier_norm(cfg: Config) -> NormSettings | None:
    """Torch's BatchNorm defaults for a classifier (a config ending in Classify): Ultralytics'
    ClassificationModel never runs initialize_weights, which sets eps 1e-3 on every other model."""
    return TORCH_NORM if cfg.rows and cfg.rows[-1].module == "Classify" else None


register_family(FAMILY, recognise=recognise, priority=10, scale_by_name=True, norm=classifier_norm,
                doc="Ultralytics 8.x (v3, v6, YOLOv8, v9, v10, YOLO11, YOLO12, YOLO26, World, YOLOE, RT-DETR): scales "
                    "[depth, width, max_channels] (or v3's multiples), anchor-free heads, nc unscaled")

# Ultralytics' Conv and DWConv are the same blocks as YOLOv5's (same args, attributes and BN settings);
# registering them here keeps `ultralytics` configs unambiguous if another family adds a `Conv`.
register_module("Conv", family=FAMILY, io="out_arg")(Conv)
register_module("DWConv", family=FAMILY, io="out_arg")(DWConv)
register_module("Concat", family=FAMILY, io="concat")(Concat)
# parse_model width-scales a transposed conv's c2 like a Conv's and puts c1 first (YOLOv6's upsampling)
register_module("nn.ConvTranspose2d", family=FAMILY, io="out_arg", example=(-1, [32, 2, 2, 0]))(nn.ConvTranspose2d)

# Rows after which parse_model's local `legacy` flag is False (Detect then builds depthwise class branches).
NON_LEGACY_ROWS = frozenset({"C3k2", "A2C2f", "C2fCIB"})
LARGE_SCALES = frozenset({"m", "l", "x"})  # scales at which parse_model forces C3k2's c3k flag


@register_module("RepConv", family=FAMILY, io="out_arg", example=(-1, [64, 3, 1]))
class RepConv(nn.Module):
    """RepVGG block: act(3x3 ConvBN + 1x1 ConvBN [+ BN identity]); folds to one biased 3x3 conv."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, p: int = 1, g: int = 1, d: int = 1,
                 act: Any = True, bn: bool = False, deploy: bool = False) -> None:
        super().__init__()
        if k != 3 or p != 1:
            raise ValueError(f"RepConv needs k=3 and p=1, got k={k}, p={p}")
        self.g, self.c1, self.c2 = g, c1, c2
        self.act = make_act(act)
        self.bn = batch_norm(c1) if bn and c2 == c1 and s == 1 else None
        self.conv1 = Conv(c1, c2, k, s, p=p, g=g, act=False)
        self.conv2 = Conv(c1, c2, 1, s, p=p - k // 2, g=g, act=False)
        if deploy:
            self.reparameterize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "conv"):  # deploy form
            return self.act(self.conv(x))
        y = self.conv1(x) + self.conv2(x)
        if self.bn is not None:
            y = y + self.bn(x)
        return self.act(y)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Sum the three branches into the 3x3 kernel (1x1 and identity padded to the centre)."""
        if hasattr(self, "conv"):
            return
        branches = [conv_branch(self.conv1.conv, self.conv1.bn), conv_branch(self.conv2.conv, self.conv2.bn)]
        if self.bn is not None:
            branches.append(identity_branch(self.bn, self.c1 // self.g, 3, self.conv1.conv.weight))
        self.conv = conv_like(self.conv1.conv, *fold_branches(branches, 3))
        del self.conv1, self.conv2
        self.bn = None


@register_module("LightConv", family=FAMILY, io="out_arg", example=(-1, [64, 3]))
class LightConv(nn.Module):
    """1x1 Conv (no activation) then a k x k depthwise Conv: HGNetV2's cheap block."""

    def __init__(self, c1: int, c2: int, k: int = 1, act: Any = None) -> None:
        super().__init__()
        self.conv1 = Conv(c1, c2, 1, act=False)
        self.conv2 = DWConv(c2, c2, k, act=nn.ReLU() if act is None else act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


@register_module("Bottleneck", family=FAMILY, io="out_arg", example=(-1, [64, True, 1, [3, 3], 0.5]))
class Bottleneck(nn.Module):
    """Two Convs with kernels k[0], k[1]; residual when shortcut and c1 == c2."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k: Sequence[Any] = (3, 3),
                 e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.add = bool(shortcut) and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


@register_module("C2f", family=FAMILY, io="out_arg", repeat="inside")
class C2f(nn.Module):
    """CSP with 2 convs: cv1's output split in halves, each bottleneck feeds the next, all 2+n concatenated."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(self.inner(n, shortcut, g))

    def inner(self, n: int, shortcut: bool, g: int) -> list[nn.Module]:
        return [Bottleneck(self.c, self.c, shortcut, g, k=((3, 3), (3, 3)), e=1.0) for _ in range(n)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


@register_module("C2", family=FAMILY, io="out_arg", repeat="inside", example=(-1, [64, False]))
class C2(nn.Module):
    """CSP with 2 convs (YOLOv8-P6's head): n bottlenecks on one half of cv1's output, the other half passed by."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(self.c, self.c, shortcut, g, k=((3, 3), (3, 3)), e=1.0)
                                 for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat((self.m(a), b), 1))


@register_module("C3k", family=FAMILY, io="out_arg", repeat="inside", example=(-1, [64]))
class C3k(C3):
    """C3 whose bottlenecks use a k x k kernel for both convs."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: int = 3) -> None:
        self._k = k
        super().__init__(c1, c2, n, shortcut, g, e)

    def inner(self, c_: int, n: int, shortcut: bool, g: int) -> nn.Module:
        return nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, k=(self._k, self._k), e=1.0) for _ in range(n)))


def c3k2_rule(ctx: RowContext) -> Resolved:
    """out_arg with n at 2; at scales m/l/x parse_model forces the 4th constructor arg (c3k) to True."""
    resolved = out_arg_rule(n_at=2)(ctx)
    args = list(resolved.args)
    if ctx.scale.name in LARGE_SCALES:
        if len(args) > 3:
            args[3] = True
        else:
            args.append(True)
    return Resolved(tuple(args), resolved.out_channels)


c3k2_rule.__name__ = "out_arg, c3k at m/l/x"


@register_module("C3k2", family=FAMILY, io=c3k2_rule, repeat="inside", channels=(0,))
class C3k2(C2f):
    """C2f whose inner blocks are C3k (c3k=True) or plain Bottlenecks; residual by default."""

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, attn: bool = False,
                 g: int = 1, shortcut: bool = True) -> None:
        self._c3k, self._attn = bool(c3k), bool(attn)
        super().__init__(c1, c2, n, shortcut, g, e)

    def inner(self, n: int, shortcut: bool, g: int) -> list[nn.Module]:
        c = self.c
        if self._attn:  # attention wins over c3k (YOLO26's last row, where m/l/x also force c3k)
            return [nn.Sequential(Bottleneck(c, c, shortcut, g), PSABlock(c, 0.5, max(c // 64, 1)))
                    for _ in range(n)]
        if self._c3k:
            return [C3k(c, c, 2, shortcut, g) for _ in range(n)]
        return [Bottleneck(c, c, shortcut, g) for _ in range(n)]


def sppf_rule(ctx: RowContext) -> Resolved:
    """out_arg; rows with at most [c2, k] are legacy rows whose cv1 keeps the default activation."""
    resolved = out_arg_rule()(ctx)
    return Resolved(resolved.args, resolved.out_channels, {"cv1_act": len(resolved.args) <= 3})


sppf_rule.__name__ = "out_arg, legacy act"


@register_module("SPPF", family=FAMILY, io=sppf_rule, channels=(0,))
class SPPF(nn.Module):
    """SPP-Fast: one max-pool applied n times in series, all stages concatenated, optional residual."""

    def __init__(self, c1: int, c2: int, k: int = 5, n: int = 3, shortcut: bool = False, *,
                 cv1_act: bool = False) -> None:
        super().__init__()
        check_count("n (pools)", n, MAX_REPEATS)
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=cv1_act)
        self.cv2 = Conv(c_ * (n + 1), c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.n = n
        self.add = bool(shortcut) and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(self.n):
            y.append(self.m(y[-1]))
        out = self.cv2(torch.cat(y, 1))
        return out + x if self.add else out


def _width_first(ctx: RowContext) -> Resolved:
    """Blocks that keep their width: args = [c1, *yaml args], out = c1."""
    return Resolved((ctx.c1, *ctx.args), ctx.c1)


_width_first.__name__ = "same (c1 first)"


@register_module("Attention", family=FAMILY, io=_width_first, channels=(), example=(-1, [4, 0.5]))
class Attention(nn.Module):
    """Multi-head self-attention on a feature map with 1x1 qkv/proj convs and a depthwise position conv."""

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5) -> None:
        super().__init__()
        check_count("num_heads", num_heads, MAX_HEADS)
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        hq = dim + 2 * self.key_dim * num_heads
        self.qkv = Conv(dim, hq, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        # one qkv conv; per head its channels are [query | key | value], tokens are the h*w positions
        heads = self.qkv(x).flatten(2).unflatten(1, (self.num_heads, -1))
        query, key, value = heads.split((self.key_dim, self.key_dim, self.head_dim), 2)
        # torch.matmul rather than a fused attention kernel, so that fvcore counts both products
        affinity = torch.matmul(query.transpose(2, 3), key) * self.scale  # (b, heads, tokens, tokens)
        mixed = torch.matmul(value, affinity.softmax(-1).transpose(2, 3))  # (b, heads, head_dim, tokens)
        position = self.pe(value.reshape(shape))  # depthwise conv on the values as a map
        return self.proj(mixed.reshape(shape) + position)


@register_module("PSABlock", family=FAMILY, io=_width_first, channels=(), example=(-1, [0.5, 4]))
class PSABlock(nn.Module):
    """Attention then a 2x-expanding conv FFN, each with a residual."""

    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4, shortcut: bool = True) -> None:
        super().__init__()
        self.attn = Attention(c, num_heads=num_heads, attn_ratio=attn_ratio)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), Conv(c * 2, c, 1, act=False))
        self.add = bool(shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        return x + self.ffn(x) if self.add else self.ffn(x)


@register_module("C2PSA", family=FAMILY, io=same_width_rule(n_at=2), repeat="inside", channels=(0,))
class C2PSA(nn.Module):
    """Half the channels through n PSABlocks, the other half passed by, fused by a 1x1 Conv."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5) -> None:
        super().__init__()
        if c1 != c2:
            raise ValueError(f"C2PSA needs c1 == c2, got {c1} and {c2}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1))
                                 for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class DFL(nn.Module):
    """Distribution focal loss integral: the expectation of a softmax over reg_max bins (a fixed conv)."""

    def __init__(self, c1: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1))
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4 * bins, A) logits -> (B, 4, A) expected distances, side by side."""
        bins_first = x.unflatten(1, (4, self.c1)).transpose(1, 2)  # (B, bin, side, A)
        expected = self.conv(bins_first.softmax(1))  # bins are the conv's input channels: (B, 1, side, A)
        return expected.flatten(1, 2)


def head_rule(fields: Sequence[tuple[str, Any]], scaled: int | None = None) -> Rule:
    """A Detect-family rule: YAML [fields...] (missing trailing ones take their defaults), then reg_max and
    end2end (the config's top-level keys, 16 and off by default, unless the row gives them), then the
    input widths, as parse_model appends them; legacy unless a C3k2-era row came before."""
    names = [f for f, _ in fields]

    def rule(ctx: RowContext) -> Resolved:
        extra = ("reg_max", "end2end")
        if not 1 <= len(ctx.args) <= len(fields) + len(extra):
            raise RuleError(f"takes [{', '.join(names)}(, reg_max(, end2end))], got {len(ctx.args)} arguments")
        given = list(ctx.args)
        args = given[:len(fields)] + [d for _, d in fields[len(given):]]
        reg_max, end2end = (given[len(fields):] + [ctx.keys.get("reg_max", 16), ctx.keys.get("end2end")])[:2]
        if isinstance(reg_max, bool) or not isinstance(reg_max, int) or not 1 <= reg_max <= MAX_REG_MAX:
            raise RuleError(f"reg_max must be an integer from 1 to {MAX_REG_MAX}, got {reg_max!r}")
        if any(s.channels is None for s in ctx.inputs):
            raise RuleError("a detection head cannot read another head")
        if scaled is not None:
            args[scaled] = ctx.channels(args[scaled])
        ch = [s.channels for s in ctx.inputs]
        legacy = not any(b.module in NON_LEGACY_ROWS for b in ctx.built)
        return Resolved((*args, reg_max, bool(end2end), ch), None,
                        {"legacy": legacy, "strides": [s.stride for s in ctx.inputs]})

    rule.__doc__ = (f"[{', '.join(names)}] + reg_max, end2end (config keys) + input widths; "
                    f"legacy unless a C3k2-era row came before")
    rule.__name__ = "multi_in, head"
    return rule


detect_rule = head_rule([("nc", 80)])


@register_module("Detect", family=FAMILY, io=detect_rule, channels=())
class Detect(nn.Module):
    """Anchor-free decoupled head with DFL boxes; eval returns ((B, 4 + nc, anchors) xywh pixels, raw).

    With end2end, one-to-one copies of the branches (`one2one_cv2`, `one2one_cv3`, ...) are built and run
    beside them, as Ultralytics' NMS-free heads; inference decodes the one-to-many outputs unless
    `end2end` is set True on the module, then the top `max_det` one-to-one detections (xyxy, score,
    class). `dfl` is a fixed projection (frozen, no gradient), as in Ultralytics.
    """

    max_det = 300  # detections an end-to-end head keeps

    def __init__(self, nc: int = 80, reg_max: int = 16, end2end: bool = False, ch: Sequence[int] = (), *,
                 legacy: bool = False, strides: Sequence[float] | None = None) -> None:
        super().__init__()
        if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
            raise ValueError(f"nc must be a positive integer, got {nc!r}")
        self.nc, self.nl, self.reg_max, self.legacy = nc, len(ch), reg_max, legacy
        self.no = nc + 4 * reg_max
        self.strides = [float(s) for s in strides] if strides else [8.0 * 2 ** i for i in range(self.nl)]
        self.stride = torch.tensor(self.strides, device="cpu")  # plain attribute, as Ultralytics'
        c2 = max(16, ch[0] // 4, 4 * reg_max)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch)
        if legacy:
            self.cv3 = nn.ModuleList(
                nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        else:
            self.cv3 = nn.ModuleList(
                nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                              nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                              nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self._anchor_cache: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self._init_biases()
        self.one2one = bool(end2end)
        self._end2end = False
        if self.one2one:
            self.copy_branches(("cv2", "cv3"))

    def copy_branches(self, names: Sequence[str]) -> None:
        """The one-to-one branches: copies of the one-to-many ones (same init), run on the same features."""
        if self.one2one:
            for name in names:
                setattr(self, "one2one_" + name, copy.deepcopy(getattr(self, name)))

    @property
    def end2end(self) -> bool:
        """Inference from the one-to-one branches (off by default, as a freshly built Ultralytics head)."""
        return self.one2one and self._end2end

    @end2end.setter
    def end2end(self, value: bool) -> None:
        if value and not self.one2one:
            raise ValueError("this head has no one-to-one branches (built without end2end)")
        self._end2end = bool(value)

    @torch.no_grad()
    def _init_biases(self) -> None:
        """Ultralytics' prior: box logits 1.0; about 5 objects per 640 image over nc classes."""
        for box, cls, s in zip(self.cv2, self.cv3, self.strides):
            box[-1].bias.fill_(1.0)
            cls[-1].bias.fill_(math.log(5 / self.nc / (640 / s) ** 2))

    def _anchors(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell centres (2, A) and per-anchor strides (1, A), cached per input shape."""
        shapes = tuple(f.shape[2:] for f in feats)
        key = (shapes, feats[0].device, feats[0].dtype)
        if key not in self._anchor_cache:
            points, strides = level_points(shapes, self.strides, feats[0], offset=0.5)
            self._anchor_cache = {key: (points.transpose(0, 1), strides.transpose(0, 1))}
        return self._anchor_cache[key]

    def levels(self, heads: nn.ModuleList, x: Sequence[torch.Tensor], width: int) -> torch.Tensor:
        """One per-level head list on every level, flattened and joined: (B, width, anchors)."""
        return torch.cat([heads[i](x[i]).view(x[i].shape[0], width, -1) for i in range(self.nl)], 2)

    def head_outputs(self, x: Sequence[torch.Tensor], prefix: str) -> dict[str, Any]:
        """The raw outputs of one set of branches ("" one-to-many, "one2one_" one-to-one)."""
        return {"boxes": self.levels(getattr(self, prefix + "cv2"), x, 4 * self.reg_max),
                "scores": self.levels(getattr(self, prefix + "cv3"), x, self.nc), "feats": list(x)}

    def decode_boxes(self, raw: dict[str, Any], anchors: torch.Tensor) -> torch.Tensor:
        """Distances to the four sides -> xywh (xyxy when end-to-end), in grid cells."""
        lt, rb = self.dfl(raw["boxes"]).chunk(2, 1)
        x1y1, x2y2 = anchors.unsqueeze(0) - lt, anchors.unsqueeze(0) + rb
        if self.end2end:
            return torch.cat((x1y1, x2y2), 1)
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1)

    def decode(self, raw: dict[str, Any]) -> torch.Tensor:
        """(B, 4 + nc [+ extras], anchors): boxes in pixels, class probabilities, then a head's extras."""
        anchors, strides = self._anchors(raw["feats"])
        return torch.cat((self.decode_boxes(raw, anchors) * strides, raw["scores"].sigmoid()), 1)

    def top_detections(self, y: torch.Tensor) -> torch.Tensor:
        """(B, anchors, 4 + nc + extras) -> (B, k, 6 + extras): the k best (anchor, class) pairs, each as
        box, score, class index and the anchor's extras; k = min(max_det, anchors). No NMS."""
        boxes, scores, extras = y.split((4, self.nc, y.shape[-1] - 4 - self.nc), -1)
        k = min(self.max_det, y.shape[1])
        anchor = scores.amax(-1).topk(k, 1).indices  # the k anchors with the best class
        best, flat = scores.gather(1, anchor[..., None].expand(-1, -1, self.nc)).flatten(1).topk(k, 1)
        anchor = anchor.gather(1, flat // self.nc)

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t.gather(1, anchor[..., None].expand(-1, -1, t.shape[-1]))

        return torch.cat((pick(boxes), best[..., None], (flat % self.nc)[..., None].to(y.dtype), pick(extras)), -1)

    def forward(self, x: list[torch.Tensor]) -> Any:
        preds = self.head_outputs(x, "")
        if self.one2one:  # the one-to-one branches train on detached features (they leave the backbone alone)
            preds = {"one2many": preds,
                     "one2one": self.head_outputs([f.detach() for f in x] if self.training else x, "one2one_")}
        if self.training:
            return preds
        chosen = preds["one2one" if self.end2end else "one2many"] if self.one2one else preds
        y = self.decode(chosen)
        if self.end2end:
            y = self.top_detections(y.transpose(1, 2))
        return y, preds
