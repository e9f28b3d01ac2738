"""RT-DETR's blocks as Ultralytics 8.4 builds them (family "ultralytics"), with its attribute names.

HGNetV2 stem and stages, RepC3, the AIFI encoder layer and the RTDETRDecoder (input projection, top-k
query selection, deformable decoder, inference path). Widths and params follow MODULES-ultralytics §5-6.
Attention is written with plain matmul/linear/grid_sample so that fvcore counts every multiply.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..grids import cell_grid
from ..limits import MAX_DECODER_LAYERS, MAX_HEADS, MAX_LEVELS, MAX_NC, MAX_POINTS, MAX_QUERIES, check_count
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError, out_arg_rule
from .ultralytics import FAMILY, LightConv, RepConv
from .yolov5 import Conv, batch_norm


def _unscaled(ctx: RowContext) -> Resolved:
    """HGStem: [cm, c2] -> (c1, cm, c2); HGNetV2 widths are never width-scaled nor capped."""
    if len(ctx.args) != 2:
        raise RuleError(f"HGStem takes [cm, c2], got {len(ctx.args)} arguments")
    return Resolved((ctx.c1, *ctx.args), ctx.args[1])


_unscaled.__name__ = "unscaled [cm, c2]"


@register_module("HGStem", family=FAMILY, io=_unscaled, channels=())
class HGStem(nn.Module):
    """HGNetV2 stem to stride 4: a 3x3 s2 conv, then a 2x2 conv pair beside a max-pool, then 3x3 s2 and 1x1."""

    def __init__(self, c1: int, cm: int, c2: int) -> None:
        super().__init__()
        self.stem1 = Conv(c1, cm, 3, 2, act=nn.ReLU())
        self.stem2a = Conv(cm, cm // 2, 2, 1, 0, act=nn.ReLU())
        self.stem2b = Conv(cm // 2, cm, 2, 1, 0, act=nn.ReLU())
        self.stem3 = Conv(cm * 2, cm, 3, 2, act=nn.ReLU())
        self.stem4 = Conv(cm, c2, 1, 1, act=nn.ReLU())
        self.pool = nn.MaxPool2d(kernel_size=2, stride=1, padding=0, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(self.stem1(x), [0, 1, 0, 1])
        x2 = self.stem2b(F.pad(self.stem2a(x), [0, 1, 0, 1]))
        x = torch.cat([self.pool(x), x2], dim=1)
        return self.stem4(self.stem3(x))


def hgblock_rule(ctx: RowContext) -> Resolved:
    """[cm, c2, k, light, shortcut] -> (c1, cm, c2, k, n, ...): n is the internal conv count, after k."""
    if not 2 <= len(ctx.args) <= 5:
        raise RuleError(f"HGBlock takes [cm, c2(, k, lightconv, shortcut)], got {len(ctx.args)} arguments")
    cm, c2, *rest = ctx.args
    k = rest[0] if rest else 3
    return Resolved((ctx.c1, cm, c2, k, ctx.n, *rest[1:]), c2)


hgblock_rule.__name__ = "unscaled, n after k"


@register_module("HGBlock", family=FAMILY, io=hgblock_rule, repeat="inside", channels=())
class HGBlock(nn.Module):
    """HGNetV2 stage block: n chained convs, all outputs concatenated with the input, squeezed and excited."""

    def __init__(self, c1: int, cm: int, c2: int, k: int = 3, n: int = 6, lightconv: bool = False,
                 shortcut: bool = False, act: Any = None) -> None:
        super().__init__()
        act = nn.ReLU() if act is None else act
        block = LightConv if lightconv else Conv
        self.m = nn.ModuleList(block(c1 if i == 0 else cm, cm, k=k, act=act) for i in range(n))
        self.sc = Conv(c1 + n * cm, c2 // 2, 1, 1, act=act)
        self.ec = Conv(c2 // 2, c2, 1, 1, act=act)
        self.add = bool(shortcut) and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [x]
        for m in self.m:
            y.append(m(y[-1]))
        out = self.ec(self.sc(torch.cat(y, 1)))
        return out + x if self.add else out


@register_module("RepC3", family=FAMILY, io=out_arg_rule(n_at=2), repeat="inside", channels=(0,))
class RepC3(nn.Module):
    """CSP of n RepConvs whose path is *added* to a 1x1 shortcut path."""

    def __init__(self, c1: int, c2: int, n: int = 3, e: float = 1.0) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.m = nn.Sequential(*(RepConv(c_, c_) for _ in range(n)))
        self.cv3 = Conv(c_, c2, 1, 1) if c_ != c2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.m(self.cv1(x)) + self.cv2(x))


def multihead_attention(ma: nn.MultiheadAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """nn.MultiheadAttention's maths on batch-first (B, L, d) inputs, from its own parameters.

    torch's fused kernel is invisible to fvcore; linear + matmul + softmax are counted.
    """
    d, h = ma.embed_dim, ma.num_heads
    wq, wk, wv = ma.in_proj_weight.chunk(3)
    bq, bk, bv = ma.in_proj_bias.chunk(3) if ma.in_proj_bias is not None else (None, None, None)
    b, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    q = F.linear(q, wq, bq).view(b, lq, h, d // h).transpose(1, 2)
    k = F.linear(k, wk, bk).view(b, lk, h, d // h).transpose(1, 2)
    v = F.linear(v, wv, bv).view(b, lk, h, d // h).transpose(1, 2)
    attn = (q * (d // h) ** -0.5) @ k.transpose(-2, -1)
    if mask is not None:
        attn = attn.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else attn + mask
    out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, d)
    return ma.out_proj(out)


def sincos_2d(h: int, w: int, dim: int, temperature: float = 10000.0, *, device: Any = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fixed 2D position embedding (1, h*w, dim): blocks sin/cos of row then column times 1/T^(j/(dim/4))."""
    if dim % 4:
        raise ValueError(f"the 2D sin-cos embedding needs a width divisible by 4, got {dim}")
    pos_dim = dim // 4
    omega = 1.0 / temperature ** (torch.arange(pos_dim, device=device, dtype=torch.float32) / pos_dim)
    gy, gx = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    oy, ox = gy.reshape(-1, 1) * omega, gx.reshape(-1, 1) * omega
    return torch.cat([oy.sin(), oy.cos(), ox.sin(), ox.cos()], 1).unsqueeze(0).to(dtype)


def aifi_rule(ctx: RowContext) -> Resolved:
    """[cm, heads] -> AIFI(c1, cm, heads); width kept (the clean form of parse_model's stale c2)."""
    return Resolved((ctx.c1, *ctx.args), ctx.c1)


aifi_rule.__name__ = "same (c1 first)"


@register_module("AIFI", family=FAMILY, io=aifi_rule, channels=())
class AIFI(nn.Module):
    """Attention-based intra-scale feature interaction: one post-norm transformer encoder layer on the map."""

    def __init__(self, c1: int, cm: int = 2048, num_heads: int = 8, dropout: float = 0.0, act: Any = None,
                 normalize_before: bool = False) -> None:
        super().__init__()
        check_count("num_heads", num_heads, MAX_HEADS)
        self.ma = nn.MultiheadAttention(c1, num_heads, dropout=dropout, batch_first=True)
        self.fc1 = nn.Linear(c1, cm)
        self.fc2 = nn.Linear(cm, c1)
        self.norm1 = nn.LayerNorm(c1)
        self.norm2 = nn.LayerNorm(c1)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.act = nn.GELU() if act is None else act
        self.normalize_before = normalize_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        src = x.flatten(2).permute(0, 2, 1)
        pos = sincos_2d(h, w, c, device=x.device, dtype=x.dtype)
        if self.normalize_before:
            s = self.norm1(src)
            src = src + self.dropout1(multihead_attention(self.ma, s + pos, s + pos, s))
            s = self.norm2(src)
            src = src + self.dropout2(self.fc2(self.dropout(self.act(self.fc1(s)))))
        else:
            src = self.norm1(src + self.dropout1(multihead_attention(self.ma, src + pos, src + pos, src)))
            src = self.norm2(src + self.dropout2(self.fc2(self.dropout(self.act(self.fc1(src))))))
        return src.permute(0, 2, 1).reshape(b, c, h, w).contiguous()


class MLP(nn.Module):
    """Linear layers with ReLU between them (none after the last)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention: each query samples n_points per head and level by grid_sample."""

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4) -> None:
        super().__init__()
        check_count("n_heads", n_heads, MAX_HEADS)
        check_count("n_levels", n_levels, MAX_LEVELS)
        check_count("n_points", n_points, MAX_POINTS)
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    @torch.no_grad()
    def _reset_parameters(self) -> None:
        """Offsets start on a star of directions, k-th point k cells out; uniform attention weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        theta = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        direction = torch.stack([theta.cos(), theta.sin()], -1)
        direction = direction / direction.abs().max(-1, keepdim=True).values
        steps = torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        grid = direction.view(self.n_heads, 1, 1, 2) * steps
        self.sampling_offsets.bias.copy_(grid.expand(-1, self.n_levels, -1, -1).reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: torch.Tensor, refer_bbox: torch.Tensor, value: torch.Tensor,
                shapes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """query (B, Q, d); refer_bbox (B, Q, 1, 4) as cx, cy, w, h in [0, 1]; value (B, sum(h*w), d)."""
        b, nq = query.shape[:2]
        nh, nl, npt = self.n_heads, self.n_levels, self.n_points
        dh = self.d_model // nh
        value = self.value_proj(value)
        offsets = self.sampling_offsets(query).view(b, nq, nh, nl, npt, 2)
        weights = self.attention_weights(query).view(b, nq, nh, nl * npt).softmax(-1)
        loc = refer_bbox[:, :, None, :, None, :2] + offsets / npt * refer_bbox[:, :, None, :, None, 2:] * 0.5
        grids = 2 * loc - 1  # grid_sample's [-1, 1] coordinates
        sampled = []
        for lvl, v in enumerate(value.split([h * w for h, w in shapes], dim=1)):
            h, w = shapes[lvl]
            v = v.transpose(1, 2).reshape(b * nh, dh, h, w)
            g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)  # (B*nh, Q, points, 2)
            sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
        weights = weights.transpose(1, 2).reshape(b * nh, 1, nq, nl * npt)
        out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(b, nh * dh, nq)
        return self.output_proj(out.transpose(1, 2))


class DeformableTransformerDecoderLayer(nn.Module):
    """Self-attention over queries, deformable cross-attention into the feature maps, ReLU FFN (post-norm)."""

    def __init__(self, d_model: int = 256, n_heads: int = 8, d_ffn: int = 1024, dropout: float = 0.0,
                 act: Any = None, n_levels: int = 4, n_points: int = 4) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.act = nn.ReLU() if act is None else act
        self.dropout3 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout4 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, embed: torch.Tensor, refer_bbox: torch.Tensor, feats: torch.Tensor,
                shapes: Sequence[tuple[int, int]], query_pos: torch.Tensor) -> torch.Tensor:
        q = embed + query_pos
        embed = self.norm1(embed + self.dropout1(multihead_attention(self.self_attn, q, q, embed)))
        cross = self.cross_attn(embed + query_pos, refer_bbox.unsqueeze(2), feats, shapes)
        embed = self.norm2(embed + self.dropout2(cross))
        ffn = self.linear2(self.dropout3(self.act(self.linear1(embed))))
        return self.norm3(embed + self.dropout4(ffn))


class DeformableTransformerDecoder(nn.Module):
    """ndl copies of the layer; boxes refined layer by layer, query positions recomputed from them."""

    def __init__(self, hidden_dim: int, decoder_layer: nn.Module, num_layers: int, eval_idx: int = -1) -> None:
        super().__init__()
        import copy

        check_count("num_layers", num_layers, MAX_DECODER_LAYERS)
        self.layers = nn.ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.eval_idx = eval_idx if eval_idx >= 0 else num_layers + eval_idx

    def forward(self, embed: torch.Tensor, refer_bbox: torch.Tensor, feats: torch.Tensor,
                shapes: Sequence[tuple[int, int]], bbox_head: nn.ModuleList, score_head: nn.ModuleList,
                pos_mlp: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval: boxes and logits of layer eval_idx only; train: of every layer (no denoising here)."""
        out, boxes, logits = embed, [], []
        refer = refer_bbox.sigmoid()
        for i, layer in enumerate(self.layers):
            out = layer(out, refer, feats, shapes, pos_mlp(refer))
            refined = torch.sigmoid(bbox_head[i](out) + inverse_sigmoid(refer))
            if self.training:
                boxes.append(refined)
                logits.append(score_head[i](out))
            elif i == self.eval_idx:
                boxes.append(refined)
                logits.append(score_head[i](out))
                break
            refer = refined.detach() if self.training else refined
        return torch.stack(boxes), torch.stack(logits)


def inverse_sigmoid(p: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Logit of a probability, finite everywhere: p is clipped to [0, 1] and neither odds term drops below eps."""
    p = p.clamp(0, 1)
    odds_for, odds_against = p.clamp(min=eps), (1 - p).clamp(min=eps)
    return torch.log(odds_for / odds_against)


def rtdetr_rule(ctx: RowContext) -> Resolved:
    """[nc, ...] -> RTDETRDecoder(nc, ch, ...) with one level per input row."""
    if not ctx.args:
        raise RuleError("RTDETRDecoder needs [nc]")
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("a detection head cannot read another head")
    return Resolved((ctx.args[0], [s.channels for s in ctx.inputs], *ctx.args[1:]), None)


rtdetr_rule.__name__ = "multi_in"


@register_module("RTDETRDecoder", family=FAMILY, io=rtdetr_rule, channels=())
class RTDETRDecoder(nn.Module):
    """RT-DETR head: project and flatten levels, pick the top-nq tokens as queries, refine with a deformable
    decoder. Eval returns ((B, nq, 6) [cx, cy, w, h, score, class], raw); training without targets returns
    every layer's (boxes, logits) and the encoder's. Denoising queries (training with targets) are not built,
    but their embedding `denoising_class_embed` is present so checkpoints load (it gets no gradient here).
    """

    def __init__(self, nc: int = 80, ch: Sequence[int] = (512, 1024, 2048), hd: int = 256, nq: int = 300,
                 ndp: int = 4, nh: int = 8, ndl: int = 6, d_ffn: int = 1024, dropout: float = 0.0,
                 act: Any = None, eval_idx: int = -1, nd: int = 100, label_noise_ratio: float = 0.5,
                 box_noise_scale: float = 1.0, learnt_init_query: bool = False) -> None:
        super().__init__()
        check_count("ndl (decoder layers)", ndl, MAX_DECODER_LAYERS)
        check_count("nq (queries)", nq, MAX_QUERIES)
        check_count("nh (heads)", nh, MAX_HEADS)
        check_count("ndp (points)", ndp, MAX_POINTS)
        check_count("nc", nc, MAX_NC)
        self.hidden_dim, self.nhead, self.nl, self.nc = hd, nh, len(ch), nc
        self.num_queries, self.num_decoder_layers = nq, ndl
        self.num_denoising, self.label_noise_ratio, self.box_noise_scale = nd, label_noise_ratio, box_noise_scale
        self.learnt_init_query = learnt_init_query
        self.input_proj = nn.ModuleList(nn.Sequential(nn.Conv2d(x, hd, 1, bias=False), batch_norm(hd)) for x in ch)
        layer = DeformableTransformerDecoderLayer(hd, nh, d_ffn, dropout, act, self.nl, ndp)
        self.decoder = DeformableTransformerDecoder(hd, layer, ndl, eval_idx)
        self.denoising_class_embed = nn.Embedding(nc, hd)
        if learnt_init_query:
            self.tgt_embed = nn.Embedding(nq, hd)
        self.query_pos_head = MLP(4, 2 * hd, hd, num_layers=2)
        self.enc_output = nn.Sequential(nn.Linear(hd, hd), nn.LayerNorm(hd))
        self.enc_score_head = nn.Linear(hd, nc)
        self.enc_bbox_head = MLP(hd, hd, 4, num_layers=3)
        self.dec_score_head = nn.ModuleList(nn.Linear(hd, nc) for _ in range(ndl))
        self.dec_bbox_head = nn.ModuleList(MLP(hd, hd, 4, num_layers=3) for _ in range(ndl))
        self._anchor_cache: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self._reset_parameters()

    @torch.no_grad()
    def _reset_parameters(self) -> None:
        """Class logits start at a 1% prior; box deltas start at zero (boxes = their anchors)."""
        prior = -math.log((1 - 0.01) / 0.01)
        for cls, reg in zip([self.enc_score_head, *self.dec_score_head], [self.enc_bbox_head, *self.dec_bbox_head]):
            nn.init.constant_(cls.bias, prior)
            nn.init.zeros_(reg.layers[-1].weight)
            nn.init.zeros_(reg.layers[-1].bias)

    def _anchors(self, shapes: Sequence[tuple[int, int]], like: torch.Tensor,
                 grid_size: float = 0.05, eps: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor]:
        """One prior box per cell of every level, in logit space: (1, N, 4) and the (1, N, 1) mask of usable ones.

        A box sits on its cell centre, normalised to [0, 1] by the map size, with a square side that doubles
        per level (grid_size at the first). Boxes with a coordinate within eps of 0 or 1 are unusable: their
        logits are set to +inf and the decoder masks their tokens out.
        """
        key = (tuple(shapes), like.device, like.dtype)
        if key not in self._anchor_cache:
            per_level = []
            for level, (h, w) in enumerate(shapes):
                centres = (cell_grid(h, w, like) + 0.5) / like.new_tensor([w, h])
                side = grid_size * 2.0 ** level
                per_level.append(torch.cat((centres, torch.full_like(centres, side)), -1).flatten(0, 1))
            boxes = torch.cat(per_level).unsqueeze(0)
            usable = ((boxes > eps) & (boxes < 1 - eps)).all(-1, keepdim=True)
            logit = torch.log(boxes / (1 - boxes))
            self._anchor_cache = {key: (logit.masked_fill(~usable, float("inf")), usable)}
        return self._anchor_cache[key]

    def forward(self, x: list[torch.Tensor]) -> Any:
        feats, shapes = [], []
        for proj, level in zip(self.input_proj, x):
            f = proj(level)
            shapes.append((int(f.shape[2]), int(f.shape[3])))
            feats.append(f.flatten(2).permute(0, 2, 1))
        feats_all = torch.cat(feats, 1)  # (B, sum h*w, hd)
        bs, n = feats_all.shape[:2]
        anchors, valid = self._anchors(shapes, feats_all)
        memory = self.enc_output(valid * feats_all)
        enc_logits = self.enc_score_head(memory)  # every token is scored
        k = min(self.num_queries, n)
        top = torch.topk(enc_logits.max(-1).values, k, dim=1).indices  # (B, k)
        embed = memory.gather(1, top.unsqueeze(-1).expand(-1, -1, memory.shape[-1]))
        top_anchors = anchors.expand(bs, -1, -1).gather(1, top.unsqueeze(-1).expand(-1, -1, 4))
        refer = self.enc_bbox_head(embed) + top_anchors
        enc_boxes = refer.sigmoid()  # before the detach below: the encoder's box loss trains enc_bbox_head
        enc_scores = enc_logits.gather(1, top.unsqueeze(-1).expand(-1, -1, self.nc))
        if self.learnt_init_query:
            embed = self.tgt_embed.weight[:k].unsqueeze(0).expand(bs, -1, -1)
        if self.training:
            refer, embed = refer.detach(), embed.detach()
        dec_boxes, dec_logits = self.decoder(embed, refer, feats_all, shapes, self.dec_bbox_head,
                                             self.dec_score_head, self.query_pos_head)
        raw = (dec_boxes, dec_logits, enc_boxes, enc_scores)
        if self.training:
            return raw
        return self._postprocess(dec_boxes[-1], dec_logits[-1]), raw

    def _postprocess(self, boxes: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Top nq (query, class) pairs by score -> (B, nq, 6) rows [cx, cy, w, h, score, class]."""
        scores = logits.sigmoid().flatten(1)
        k = min(self.num_queries, scores.shape[1])
        score, idx = scores.topk(k, dim=1)
        query, cls = idx // self.nc, idx % self.nc
        picked = boxes.gather(1, query.unsqueeze(-1).expand(-1, -1, 4))
        return torch.cat([picked, score.unsqueeze(-1), cls.unsqueeze(-1).to(picked.dtype)], -1)
