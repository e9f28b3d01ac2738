"""Open-vocabulary Ultralytics heads and blocks (8.4): YOLO-World (C2fAttn, ImagePoolingAttn, WorldDetect)
and YOLOE (YOLOEDetect), with Ultralytics' attribute names so checkpoints load strictly.

The text model is no part of the graph. Its class embeddings enter as a constant of the stated size,
(1, nc, embed), held by every block that reads them as a non-persistent buffer (`txt_feats`), so the
state dict equals Ultralytics' (whose model keeps them as a plain attribute). `set_text_embeddings`
puts real embeddings in; the YAML's `text_model:` key is accepted and ignored for the graph.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..limits import MAX_HEADS, check_count
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError, out_arg_rule
from .heads import Proto
from .ultralytics import FAMILY, NON_LEGACY_ROWS, Bottleneck, Conv, Detect, DWConv

TEXT_DIM = 512  # CLIP ViT-B/32's embedding width: WorldModel's and YOLOEModel's placeholder size


def finish(head: Any, x: Sequence[torch.Tensor], boxes: torch.Tensor, scores: torch.Tensor) -> Any:
    """A text head's boxes and class scores through Detect's decode: the raw dict in training, else
    (decoded, raw), as Ultralytics' heads return them."""
    raw = {"boxes": boxes, "scores": scores, "feats": list(x)}
    return raw if head.training else (head.decode(raw), raw)


def text_constant(nc: int, dim: int) -> torch.Tensor:
    """The class embeddings a model runs on without a text model: zeros of the stated size (YOLOE's own
    default; YOLO-World's placeholder is random, so tests set both with set_text_embeddings)."""
    return torch.zeros(1, nc, dim)


def set_text_embeddings(model: nn.Module, embeddings: torch.Tensor) -> None:
    """Give every block that reads class embeddings these (1, classes, dim) ones (a text model's output)."""
    for m in model.modules():
        if isinstance(getattr(m, "txt_feats", None), torch.Tensor):
            if m.txt_feats.shape[-1] != embeddings.shape[-1]:
                raise ValueError(f"{type(m).__name__} takes {m.txt_feats.shape[-1]}-wide embeddings, "
                                 f"got {embeddings.shape[-1]}")
            m.txt_feats = embeddings.detach().to(m.txt_feats.device, m.txt_feats.dtype).clone()


def _text(module: nn.Module, x: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
    """The embeddings a block uses: those given by the graph, else its constant, batched like x."""
    t = module.txt_feats if text is None else text
    t = t.type_as(x)
    return t.expand(x.shape[0], -1, -1) if t.shape[0] != x.shape[0] else t


class MaxSigmoidAttnBlock(nn.Module):
    """Text-guided gate: per head, the max similarity of a pixel's embedding to any class embedding,
    through a sigmoid, scales a 3x3 projection of the features."""

    def __init__(self, c1: int, c2: int, nh: int = 1, ec: int = 128, gc: int = 512, scale: bool = False) -> None:
        super().__init__()
        check_count("nh", nh, MAX_HEADS)
        self.nh = nh
        self.hc = c2 // nh
        self.ec = Conv(c1, ec, k=1, act=False) if c1 != ec else None
        self.gl = nn.Linear(gc, ec)
        self.bias = nn.Parameter(torch.zeros(nh))
        self.proj_conv = Conv(c1, c2, k=3, s=1, act=False)
        self.scale = nn.Parameter(torch.ones(1, nh, 1, 1)) if scale else 1.0

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g = self.gl(guide).unflatten(2, (self.nh, self.hc))  # (b, classes, heads, hc)
        embed = (self.ec(x) if self.ec is not None else x).reshape(b, self.nh, self.hc, h * w)
        # (b, heads, pixels, hc) @ (b, heads, hc, classes) -> best class per pixel and head
        sim = torch.matmul(embed.transpose(2, 3), g.permute(0, 2, 3, 1)).amax(dim=-1)
        gate = (sim.view(b, self.nh, h, w) / self.hc ** 0.5 + self.bias.view(1, -1, 1, 1)).sigmoid() * self.scale
        y = self.proj_conv(x).view(b, self.nh, -1, h, w)
        return (y * gate.unsqueeze(2)).view(b, -1, h, w)


def c2fattn_rule(ctx: RowContext) -> Resolved:
    """out_arg with n at 2; as parse_model: ec becomes the hidden width int(c2 * e), nh is scaled by the
    scale's width (min(nh, max_channels // 64) first) and must divide the hidden width."""
    args = list(ctx.args)
    if len(args) < 3:
        raise RuleError(f"C2fAttn takes [c2, ec, nh(, gc, shortcut, g, e)], got {len(args)} arguments")
    nh, e = args[2], args[6] if len(args) > 6 else 0.5
    if isinstance(nh, bool) or not isinstance(nh, int) or nh < 1:
        raise RuleError(f"C2fAttn's nh must be a positive integer, got {nh!r}")
    if isinstance(e, bool) or not isinstance(e, (int, float)) or e <= 0:
        raise RuleError(f"C2fAttn's e must be a positive number, got {e!r}")
    resolved = out_arg_rule(n_at=2)(ctx)
    c2 = resolved.out_channels
    assert c2 is not None
    cap = math.inf if ctx.scale.max_channels is None else ctx.scale.max_channels
    if nh > 1:
        nh = int(max(round(min(nh, cap // 2 // 32)) * ctx.scale.width, 1))
    hidden = int(c2 * e)
    if hidden < 1 or hidden % nh:
        raise RuleError(f"C2fAttn's hidden width {hidden} (int({c2} * {e})) must be a positive multiple of its "
                        f"{nh} heads")
    full = list(resolved.args)  # c1, c2, n, ec, nh, ...
    full[3], full[4] = hidden, nh
    return Resolved(tuple(full), c2, {"nc": ctx.nc})  # nc sizes the text constant (1, nc, gc)


c2fattn_rule.__name__ = "out_arg, ec = hidden, nh by width"


@register_module("C2fAttn", family=FAMILY, io=c2fattn_rule, repeat="inside", channels=(0,),
                 example=(-1, [64, 32, 2]))
class C2fAttn(nn.Module):
    """C2f with a text-guided gate (MaxSigmoidAttnBlock) on the last piece, concatenated as one more."""

    takes_text = True  # the graph hands it YOLO-World's refined embeddings once ImagePoolingAttn ran

    def __init__(self, c1: int, c2: int, n: int = 1, ec: int = 128, nh: int = 1, gc: int = TEXT_DIM,
                 shortcut: bool = False, g: int = 1, e: float = 0.5, *, nc: int = 80) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((3 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, k=((3, 3), (3, 3)), e=1.0) for _ in range(n))
        self.attn = MaxSigmoidAttnBlock(self.c, self.c, gc=gc, ec=ec, nh=nh)
        self.register_buffer("txt_feats", text_constant(nc, gc), persistent=False)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        y.append(self.attn(y[-1], _text(self, x, text)))
        return self.cv2(torch.cat(y, 1))


def image_pooling_rule(ctx: RowContext) -> Resolved:
    """[ec(, ct, nh, k, scale)] with the input widths inserted second; ec is not width-scaled. Its
    output is the refined text embeddings, which no row reads as a feature map."""
    if not ctx.args:
        raise RuleError("ImagePoolingAttn takes [ec(, ct, nh, k, scale)]")
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("ImagePoolingAttn cannot read a detection head")
    ec = ctx.args[0]
    nh = ctx.args[2] if len(ctx.args) > 2 else 8
    if isinstance(ec, bool) or not isinstance(ec, int) or isinstance(nh, bool) or not isinstance(nh, int) \
            or nh < 1 or ec < 1 or ec % nh:
        raise RuleError(f"ImagePoolingAttn's ec ({ec!r}) must be a positive multiple of its nh ({nh!r})")
    args = (ec, [s.channels for s in ctx.inputs], *ctx.args[1:])
    return Resolved(args, None, {"nc": ctx.nc})


image_pooling_rule.__name__ = "multi_in, text out"


@register_module("ImagePoolingAttn", family=FAMILY, io=image_pooling_rule, channels=(),
                 example=([2, 3, 4], [32]))
class ImagePoolingAttn(nn.Module):
    """Refines the class embeddings by attending from them to k x k max-pooled patches of every level."""

    takes_text = True
    gives_text = True

    def __init__(self, ec: int = 256, ch: Sequence[int] = (), ct: int = TEXT_DIM, nh: int = 8, k: int = 3,
                 scale: bool = False, *, nc: int = 80) -> None:
        super().__init__()
        check_count("nh", nh, MAX_HEADS)
        self.query = nn.Sequential(nn.LayerNorm(ct), nn.Linear(ct, ec))
        self.key = nn.Sequential(nn.LayerNorm(ec), nn.Linear(ec, ec))
        self.value = nn.Sequential(nn.LayerNorm(ec), nn.Linear(ec, ec))
        self.proj = nn.Linear(ec, ct)
        self.scale = nn.Parameter(torch.tensor([0.0])) if scale else 1.0
        self.projections = nn.ModuleList(nn.Conv2d(c, ec, kernel_size=1) for c in ch)
        self.im_pools = nn.ModuleList(nn.AdaptiveMaxPool2d((k, k)) for _ in ch)
        self.ec, self.nh, self.nf, self.hc, self.k = ec, nh, len(ch), ec // nh, k
        self.register_buffer("txt_feats", text_constant(nc, ct), persistent=False)

    def forward(self, x: list[torch.Tensor], text: torch.Tensor | None = None) -> torch.Tensor:
        b = x[0].shape[0]
        text = _text(self, x[0], text)
        patches = torch.cat([pool(proj(f)).flatten(2) for f, proj, pool in zip(x, self.projections, self.im_pools)],
                            dim=-1).transpose(1, 2)  # (b, levels * k * k, ec)
        q = self.query(text).unflatten(2, (self.nh, self.hc)).transpose(1, 2)  # (b, heads, classes, hc)
        k = self.key(patches).unflatten(2, (self.nh, self.hc)).transpose(1, 2)
        v = self.value(patches).unflatten(2, (self.nh, self.hc)).transpose(1, 2)
        weights = (torch.matmul(q, k.transpose(2, 3)) / self.hc ** 0.5).softmax(-1)
        mixed = torch.matmul(weights, v).transpose(1, 2).reshape(b, -1, self.ec)
        return self.proj(mixed) * self.scale + text


class ContrastiveHead(nn.Module):
    """Class logits as scaled cosine similarity of pixel and class embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([-10.0]))
        self.logit_scale = nn.Parameter(torch.ones([]) * torch.tensor(1 / 0.07).log())

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=1, p=2)
        return _similarity(x, F.normalize(w, dim=-1, p=2)) * self.logit_scale.exp() + self.bias


class BNContrastiveHead(nn.Module):
    """ContrastiveHead with a BatchNorm on the pixel embeddings instead of their L2 normalisation."""

    def __init__(self, embed_dims: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(embed_dims)
        self.bias = nn.Parameter(torch.tensor([-10.0]))
        self.logit_scale = nn.Parameter(-1.0 * torch.ones([]))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _similarity(self.norm(x), F.normalize(w, dim=-1, p=2)) * self.logit_scale.exp() + self.bias


def _similarity(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(b, e, h, w) pixels x (b, classes, e) classes -> (b, classes, h, w)."""
    return torch.matmul(w, x.flatten(2)).view(x.shape[0], w.shape[1], *x.shape[2:])


def text_head_rule(ctx: RowContext) -> Resolved:
    """[nc(, embed, with_bn)] -> (nc, embed, with_bn, reg_max 16, end2end False, ch); legacy as Detect's."""
    if not 1 <= len(ctx.args) <= 3:
        raise RuleError(f"{ctx.row.module} takes [nc(, embed, with_bn)], got {len(ctx.args)} arguments")
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("a detection head cannot read another head")
    # zoo's text heads build only Ultralytics' defaults (YOLOE-26's end-to-end, reg_max 1 heads are not
    # written yet): any other value is refused rather than built as a different model
    for key, default in (("end2end", False), ("reg_max", 16)):
        if ctx.keys.get(key) not in (None, default):
            raise RuleError(f"{ctx.row.module} builds only {key}: {default}, the config sets {ctx.keys[key]!r}")
    nc, embed, with_bn = (*ctx.args, TEXT_DIM, False)[:3]
    if isinstance(embed, bool) or not isinstance(embed, int) or embed < 1:
        raise RuleError(f"embed must be a positive integer, got {embed!r}")
    ch = [s.channels for s in ctx.inputs]
    legacy = not any(b.module in NON_LEGACY_ROWS for b in ctx.built)
    return Resolved((nc, embed, bool(with_bn), 16, False, ch), None,
                    {"legacy": legacy, "strides": [s.stride for s in ctx.inputs]})


text_head_rule.__name__ = "multi_in, text head"


@register_module("WorldDetect", family=FAMILY, io=text_head_rule, channels=(), example=([2, 3, 4], [8, 32, True]))
class WorldDetect(Detect):
    """Detect whose class branch ends in embeddings scored against the class embeddings (open vocabulary).

    `dfl` is a fixed projection (frozen, no gradient), as in Ultralytics.
    """

    def __init__(self, nc: int = 80, embed: int = TEXT_DIM, with_bn: bool = False, reg_max: int = 16,
                 end2end: bool = False, ch: Sequence[int] = (), *, legacy: bool = False,
                 strides: Sequence[float] | None = None) -> None:
        super().__init__(nc, reg_max, end2end, ch, legacy=legacy, strides=strides)
        c3 = max(ch[0], min(nc, 100))
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, embed, 1)) for x in ch)
        self.cv4 = nn.ModuleList(BNContrastiveHead(embed) if with_bn else ContrastiveHead() for _ in ch)
        self.register_buffer("txt_feats", text_constant(nc, embed), persistent=False)
        with torch.no_grad():
            for box in self.cv2:
                box[-1].bias.fill_(1.0)

    def forward(self, x: list[torch.Tensor]) -> Any:
        bs = x[0].shape[0]
        text = _text(self, x[0], None)  # the original embeddings, never ImagePoolingAttn's refined ones
        boxes = torch.cat([self.cv2[i](x[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], 2)
        scores = torch.cat([self.cv4[i](self.cv3[i](x[i]), text).reshape(bs, text.shape[1], -1)
                            for i in range(self.nl)], 2)
        return finish(self, x, boxes, scores)


class SwiGLUFFN(nn.Module):
    """SwiGLU feed-forward: silu(a) * b of one doubled projection, projected back."""

    def __init__(self, gc: int, ec: int, e: int = 4) -> None:
        super().__init__()
        self.w12 = nn.Linear(gc, e * ec)
        self.w3 = nn.Linear(e * ec // 2, ec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class Residual(nn.Module):
    """x + m(x), m's last projection zero-initialised so the block starts as the identity."""

    def __init__(self, m: SwiGLUFFN) -> None:
        super().__init__()
        self.m = m
        nn.init.zeros_(self.m.w3.bias)
        nn.init.zeros_(self.m.w3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)


class SAVPE(nn.Module):
    """YOLOE's visual-prompt encoder (masks -> class embeddings). Built so weights load and parameters
    count as Ultralytics'; the graph runs on class embeddings, so its forward is not part of a pass."""

    def __init__(self, ch: Sequence[int], c3: int, embed: int) -> None:
        super().__init__()
        self.cv1 = nn.ModuleList(
            nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Upsample(scale_factor=i * 2) if i in {1, 2}
                          else nn.Identity()) for i, x in enumerate(ch))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c3, 1), nn.Upsample(scale_factor=i * 2) if i in {1, 2} else nn.Identity())
            for i, x in enumerate(ch))
        self.c = 16
        self.cv3 = nn.Conv2d(3 * c3, embed, 1)
        self.cv4 = nn.Conv2d(3 * c3, self.c, 3, padding=1)
        self.cv5 = nn.Conv2d(1, self.c, 3, padding=1)
        self.cv6 = nn.Sequential(Conv(2 * self.c, self.c, 3), nn.Conv2d(self.c, self.c, 3, padding=1))

    def forward(self, x: list[torch.Tensor], vp: torch.Tensor) -> torch.Tensor:
        """(levels, (b, q, h, w) prompt masks at level 0's size) -> (b, q, embed) unit embeddings."""
        y = self.cv4(torch.cat([m(xi) for m, xi in zip(self.cv2, x)], 1))
        feats = self.cv3(torch.cat([m(xi) for m, xi in zip(self.cv1, x)], 1))
        b, c, h, w = feats.shape
        q = vp.shape[1]
        masks = vp.reshape(b * q, 1, h, w)
        y = y.unsqueeze(1).expand(-1, q, -1, -1, -1).reshape(b * q, self.c, h, w)
        y = self.cv6(torch.cat((y, self.cv5(masks)), 1)).reshape(b, q, self.c, -1)
        m = vp.reshape(b, q, 1, -1)
        score = (y * m + torch.logical_not(m) * torch.finfo(y.dtype).min).softmax(-1).to(y.dtype)
        parts = feats.reshape(b, self.c, c // self.c, -1).transpose(-1, -2)  # (b, groups, hw, c/groups)
        pooled = torch.matmul(score.transpose(1, 2), parts)  # (b, groups, q, c/groups)
        return F.normalize(pooled.transpose(1, 2).reshape(b, q, -1), dim=-1, p=2)


@register_module("YOLOEDetect", family=FAMILY, io=text_head_rule, channels=(),
                 example=([2, 3, 4], [8, 64, True]))
class YOLOEDetect(Detect):
    """Detect whose class branch is scored against class embeddings by BNContrastiveHeads; carries the
    text-refining FFN (`reprta`) and the visual-prompt encoder (`savpe`) Ultralytics keeps in the head.

    `reprta` and `savpe` get no gradient in a plain pass (they embed prompts outside it); `dfl` is a fixed
    projection (frozen, no gradient), as in Ultralytics.
    """

    def __init__(self, nc: int = 80, embed: int = TEXT_DIM, with_bn: bool = True, reg_max: int = 16,
                 end2end: bool = False, ch: Sequence[int] = (), *, legacy: bool = False,
                 strides: Sequence[float] | None = None) -> None:
        super().__init__(nc, reg_max, end2end, ch, legacy=legacy, strides=strides)
        c3 = max(ch[0], min(nc, 100))
        if c3 > embed:
            raise ValueError(f"YOLOEDetect's class width {c3} exceeds its embedding width {embed}")
        if not with_bn:
            raise ValueError("YOLOEDetect needs with_bn=True (BNContrastiveHead)")
        if legacy:
            self.cv3 = nn.ModuleList(
                nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, embed, 1)) for x in ch)
        else:
            self.cv3 = nn.ModuleList(
                nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                              nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                              nn.Conv2d(c3, embed, 1)) for x in ch)
        self.cv4 = nn.ModuleList(BNContrastiveHead(embed) for _ in ch)
        self.reprta = Residual(SwiGLUFFN(embed, embed))
        self.savpe = SAVPE(ch, c3, embed)
        self.embed = embed
        self.register_buffer("txt_feats", text_constant(nc, embed), persistent=False)
        with torch.no_grad():
            for box, cls, head, s in zip(self.cv2, self.cv3, self.cv4, self.strides):
                box[-1].bias.fill_(2.0)
                cls[-1].bias.fill_(0.0)
                head.bias.fill_(math.log(5 / nc / (640 / s) ** 2))

    def forward(self, x: list[torch.Tensor]) -> Any:
        bs = x[0].shape[0]
        text = _text(self, x[0], None)  # YOLOEModel's class embeddings (`pe`), as given
        boxes = torch.cat([self.cv2[i](x[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], 2)
        scores = torch.cat([self.cv4[i](self.cv3[i](x[i]), text).reshape(bs, text.shape[1], -1)
                            for i in range(self.nl)], 2)
        return finish(self, x, boxes, scores)


def yoloe_segment_rule(ctx: RowContext) -> Resolved:
    """[nc(, nm, npr, embed, with_bn)] -> (nc, nm, npr, embed, with_bn, reg_max 16, end2end False, ch); npr
    (YAML position 2) is width-scaled as parse_model does; legacy as Detect's."""
    if not 1 <= len(ctx.args) <= 5:
        raise RuleError(f"YOLOESegment takes [nc(, nm, npr, embed, with_bn)], got {len(ctx.args)} arguments")
    nc, nm, npr, embed, with_bn = (*ctx.args, 32, 256, TEXT_DIM, True)[:5]
    for name, v in (("nm", nm), ("npr", npr), ("embed", embed)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RuleError(f"{name} must be a positive integer, got {v!r}")
    head = text_head_rule(replace_args(ctx, (nc, embed, with_bn)))
    _, _, _, reg_max, end2end, ch = head.args
    return Resolved((nc, nm, ctx.channels(npr), embed, bool(with_bn), reg_max, end2end, ch), None, head.kwargs)


yoloe_segment_rule.__name__ = "multi_in, text head, npr scaled"


def replace_args(ctx: RowContext, args: tuple[Any, ...]) -> RowContext:
    """The same row context with other YAML args (a head rule reusing another's)."""
    return dataclasses.replace(ctx, row=dataclasses.replace(ctx.row, args=args))


@register_module("YOLOESegment", family=FAMILY, io=yoloe_segment_rule, channels=(2,),
                 example=([2, 3, 4], [8, 16, 32, 64, True]))
class YOLOESegment(YOLOEDetect):
    """YOLOEDetect plus nm mask coefficients per anchor and Ultralytics' Proto on the first level; eval
    returns ((boxes, scores, coefficients), protos).

    `reprta` and `savpe` get no gradient in a plain pass; `dfl` is a fixed projection (frozen), as in Ultralytics.
    """

    def __init__(self, nc: int = 80, nm: int = 32, npr: int = 256, embed: int = TEXT_DIM, with_bn: bool = True,
                 reg_max: int = 16, end2end: bool = False, ch: Sequence[int] = (), *, legacy: bool = False,
                 strides: Sequence[float] | None = None) -> None:
        super().__init__(nc, embed, with_bn, reg_max, end2end, ch, legacy=legacy, strides=strides)
        self.nm, self.npr = nm, npr
        self.proto = Proto(ch[0], npr, nm)
        c5 = max(ch[0] // 4, nm)
        self.cv5 = nn.ModuleList(nn.Sequential(Conv(x, c5, 3), Conv(c5, c5, 3), nn.Conv2d(c5, nm, 1)) for x in ch)

    def forward(self, x: list[torch.Tensor]) -> Any:
        bs = x[0].shape[0]
        coefficients = torch.cat([self.cv5[i](x[i]).view(bs, self.nm, -1) for i in range(self.nl)], 2)
        out = super().forward(x)
        protos = self.proto(x[0])
        if self.training:
            return {**out, "mask_coefficient": coefficients, "proto": protos}
        y, raw = out
        return (torch.cat((y, coefficients), 1), protos), {**raw, "mask_coefficient": coefficients, "proto": protos}


__all__ = ["BNContrastiveHead", "C2fAttn", "ContrastiveHead", "ImagePoolingAttn", "MaxSigmoidAttnBlock",
           "SAVPE", "WorldDetect", "YOLOEDetect", "YOLOESegment", "set_text_embeddings", "text_constant"]
