"""The Ultralytics (8.4) task heads beyond Detect: instance segmentation, pose, oriented boxes and
classification (YOLOv8 / YOLO11), and YOLO26's Segment26, Pose26, OBB26, Depth and SemanticSegment.

Attribute names are Ultralytics' so checkpoints load strictly; widths follow parse_model (only Segment's
prototype width is width-scaled). The Detect-family heads take reg_max and end2end from the config's
top-level keys (zoo.modules.ultralytics.head_rule) and decode in eval as Ultralytics' freshly built heads do.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..limits import MAX_KEYPOINTS, check_count
from ..registry import register_module
from ..rules import Resolved, RowContext, RuleError
from .ultralytics import FAMILY, Detect, head_rule
from .yolov5 import Conv

EXAMPLE_LEVELS = [2, 3, 4]  # the contract tests' example backbone: rows 2, 3, 4 at strides 8, 16, 32


def _proto_rule(ctx: RowContext) -> Resolved:
    """[c_(, masks)] -> Proto(c1, c_, masks): c_ width-scaled, the mask count kept; output at stride / 2."""
    if not 1 <= len(ctx.args) <= 2:
        raise RuleError(f"Proto takes [c_(, masks)], got {len(ctx.args)} arguments")
    masks = ctx.args[1] if len(ctx.args) > 1 else 32
    if isinstance(masks, bool) or not isinstance(masks, int) or masks < 1:
        raise RuleError(f"the mask count must be a positive integer, got {masks!r}")
    return Resolved((ctx.c1, ctx.channels(ctx.args[0]), masks), masks)


@register_module("Proto", family=FAMILY, io=_proto_rule, channels=(0,), example=(-1, [64, 32]))
class Proto(nn.Module):
    """Mask prototypes: 3x3 Conv, a learnt 2x up-sampling (transposed conv), 3x3 Conv, 1x1 Conv to the masks.

    Ultralytics' own (YOLOv5's up-samples by nearest neighbour instead of a transposed conv).
    """

    def __init__(self, c1: int, c_: int = 256, c2: int = 32) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c_, k=3)
        self.upsample = nn.ConvTranspose2d(c_, c_, 2, 2, 0, bias=True)
        self.cv2 = Conv(c_, c_, k=3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


class Proto26(Proto):
    """YOLO26 prototypes from every level: deeper levels projected to the first's width, up-sampled and added,
    then a Proto; in training also a semantic map (`semseg`, a training-only branch) over the summed features."""

    def __init__(self, ch: Sequence[int] = (), c_: int = 256, c2: int = 32, nc: int = 80) -> None:
        super().__init__(c_, c_, c2)
        self.feat_refine = nn.ModuleList(Conv(x, ch[0], k=1) for x in ch[1:])
        self.feat_fuse = Conv(ch[0], c_, k=3)
        self.semseg = nn.Sequential(Conv(ch[0], c_, k=3), Conv(c_, c_, k=3), nn.Conv2d(c_, nc, 1))

    def forward(self, x: Sequence[torch.Tensor]) -> Any:  # type: ignore[override]
        feat = x[0]
        for i, refine in enumerate(self.feat_refine):  # level i + 1 is 2 ** (i + 1) times coarser
            feat = feat + F.interpolate(refine(x[i + 1]), scale_factor=2 ** (i + 1), mode="nearest")
        masks = super().forward(self.feat_fuse(feat))
        return (masks, self.semseg(feat)) if self.training else masks


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _per_level(ch: Sequence[int], mid: int, out: int | None) -> nn.ModuleList:
    """Two 3x3 Convs per level (and a 1x1 conv to `out` unless None): the extra branches of the task heads."""
    return nn.ModuleList(nn.Sequential(Conv(x, mid, 3), Conv(mid, mid, 3), *([nn.Conv2d(mid, out, 1)] if out else []))
                         for x in ch)


@register_module("Segment", family=FAMILY, io=head_rule([("nc", 80), ("nm", 32), ("npr", 256)], scaled=2),
                 channels=(2,), example=(EXAMPLE_LEVELS, ["nc", 32, 64]))
class Segment(Detect):
    """Detect plus nm mask coefficients per anchor (`cv4`) and prototypes from the first level (`proto`).

    Eval returns ((detections with coefficients, prototypes), raw). `dfl` is frozen, as in Detect.
    """

    def __init__(self, nc: int = 80, nm: int = 32, npr: int = 256, reg_max: int = 16, end2end: bool = False,
                 ch: Sequence[int] = (), *, legacy: bool = False, strides: Sequence[float] | None = None) -> None:
        super().__init__(nc, reg_max, False, ch, legacy=legacy, strides=strides)
        _check_positive("nm", nm)
        _check_positive("npr", npr)
        self.nm, self.npr = nm, npr
        self.proto = self.make_proto(ch, nc)
        self.cv4 = _per_level(ch, max(ch[0] // 4, nm), nm)
        self.one2one = bool(end2end)
        self.copy_branches(("cv2", "cv3", "cv4"))

    def make_proto(self, ch: Sequence[int], nc: int) -> nn.Module:
        return Proto(ch[0], self.npr, self.nm)

    def run_proto(self, x: Sequence[torch.Tensor]) -> Any:
        return self.proto(x[0])

    def head_outputs(self, x: Sequence[torch.Tensor], prefix: str) -> dict[str, Any]:
        out = super().head_outputs(x, prefix)
        out["mask_coefficient"] = self.levels(getattr(self, prefix + "cv4"), x, self.nm)
        return out

    def decode(self, raw: dict[str, Any]) -> torch.Tensor:
        return torch.cat((super().decode(raw), raw["mask_coefficient"]), 1)

    def forward(self, x: list[torch.Tensor]) -> Any:
        out = super().forward(x)
        preds = out[1] if isinstance(out, tuple) else out
        proto = self.run_proto(x)
        if "one2one" in preds:  # the one-to-one loss sees the prototypes without training them
            preds["one2many"]["proto"] = proto
            preds["one2one"]["proto"] = tuple(p.detach() for p in proto) if isinstance(proto, tuple) \
                else proto.detach()
        else:
            preds["proto"] = proto
        return preds if self.training else ((out[0], proto), preds)


@register_module("Segment26", family=FAMILY, io=head_rule([("nc", 80), ("nm", 32), ("npr", 256)], scaled=2),
                 channels=(2,), example=(EXAMPLE_LEVELS, ["nc", 32, 64]))
class Segment26(Segment):
    """Segment whose prototypes fuse every level (Proto26, with a training-only semantic branch).

    `dfl` is frozen, as in Detect.
    """

    def make_proto(self, ch: Sequence[int], nc: int) -> nn.Module:
        return Proto26(ch, self.npr, self.nm, nc)

    def run_proto(self, x: Sequence[torch.Tensor]) -> Any:
        return self.proto(x)


def _kpt_shape(value: Any) -> tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and 1 <= value[0] <= MAX_KEYPOINTS and value[1] in (2, 3)):
        raise ValueError(f"kpt_shape must be [keypoints (1 to {MAX_KEYPOINTS}), dims (2 or 3)], got {value!r}")
    return int(value[0]), int(value[1])


@register_module("Pose", family=FAMILY, io=head_rule([("nc", 80), ("kpt_shape", [17, 3])]), channels=(),
                 example=(EXAMPLE_LEVELS, ["nc", [17, 3]]))
class Pose(Detect):
    """Detect plus kpt_shape = [keypoints, 2 or 3] values per anchor (`cv4`): x, y (and visibility).

    Eval appends the keypoints in pixels (visibility as a probability) to the detections. `dfl` is frozen.
    """

    def __init__(self, nc: int = 80, kpt_shape: Sequence[int] = (17, 3), reg_max: int = 16, end2end: bool = False,
                 ch: Sequence[int] = (), *, legacy: bool = False, strides: Sequence[float] | None = None) -> None:
        super().__init__(nc, reg_max, False, ch, legacy=legacy, strides=strides)
        self.kpt_shape = _kpt_shape(kpt_shape)
        self.nk = self.kpt_shape[0] * self.kpt_shape[1]
        self.make_keypoint_branches(ch)
        self.one2one = bool(end2end)
        self.copy_branches(self.keypoint_branches)

    keypoint_branches: tuple[str, ...] = ("cv2", "cv3", "cv4")

    def make_keypoint_branches(self, ch: Sequence[int]) -> None:
        self.cv4 = _per_level(ch, max(ch[0] // 4, self.nk), self.nk)

    def head_outputs(self, x: Sequence[torch.Tensor], prefix: str) -> dict[str, Any]:
        out = super().head_outputs(x, prefix)
        out["kpts"] = self.levels(getattr(self, prefix + "cv4"), x, self.nk)
        return out

    def place(self, xy: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Keypoint offsets -> grid cells: twice the offset from the cell's corner (YOLOv8's pose)."""
        return xy * 2.0 + (anchors - 0.5)

    def decode(self, raw: dict[str, Any]) -> torch.Tensor:
        det = super().decode(raw)
        anchors, strides = self._anchors(raw["feats"])
        k, nd = self.kpt_shape
        kpts = raw["kpts"].unflatten(1, (k, nd))  # (B, K, dims, A)
        xy = self.place(kpts[:, :, :2], anchors.unsqueeze(0)) * strides
        parts = (xy, kpts[:, :, 2:].sigmoid()) if nd == 3 else (xy,)
        return torch.cat((det, torch.cat(parts, 2).flatten(1, 2)), 1)


class RealNVP(nn.Module):
    """Normalising flow of six coupling layers on (x, y) pairs: Pose26's keypoint-error prior in the loss.

    The model's forward never calls it (only the loss does), so none of `s`, `t` gets a gradient there.
    """

    def __init__(self) -> None:
        super().__init__()
        # loc and cov are kept for Ultralytics checkpoints (their state dicts hold them)
        self.register_buffer("loc", torch.zeros(2))
        self.register_buffer("cov", torch.eye(2))
        self.register_buffer("mask", torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 3))
        self.s = nn.ModuleList(self._mlp(nn.Tanh()) for _ in range(len(self.mask)))
        self.t = nn.ModuleList(self._mlp(None) for _ in range(len(self.mask)))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, gain=0.01)

    @staticmethod
    def _mlp(last: nn.Module | None) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2)]
        return nn.Sequential(*layers, *([last] if last is not None else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Samples (N, 2) -> latent (N, 2) (the inverse pass the loss's log-probability uses)."""
        z = x
        for i in reversed(range(len(self.t))):
            keep = self.mask[i] * z
            s = self.s[i](keep) * (1 - self.mask[i])
            z = (1 - self.mask[i]) * (z - self.t[i](keep) * (1 - self.mask[i])) * torch.exp(-s) + keep
        return z


@register_module("Pose26", family=FAMILY, io=head_rule([("nc", 80), ("kpt_shape", [17, 3])]), channels=(),
                 example=(EXAMPLE_LEVELS, ["nc", [17, 3]]))
class Pose26(Pose):
    """YOLO26 pose: per level two 3x3 Convs (`cv4`) then keypoints (`cv4_kpts`) and, in training, their
    spreads (`cv4_sigma`); keypoints are offsets from the cell centre.

    `flow_model` (RealNVP) serves the loss only, and `dfl` is frozen: neither gets a gradient here.
    """

    keypoint_branches = ("cv2", "cv3", "cv4", "cv4_kpts", "cv4_sigma")

    def make_keypoint_branches(self, ch: Sequence[int]) -> None:
        k, nd = self.kpt_shape
        c4 = max(ch[0] // 4, k * (nd + 2))
        self.flow_model = RealNVP()
        self.cv4 = _per_level(ch, c4, None)
        self.cv4_kpts = nn.ModuleList(nn.Conv2d(c4, self.nk, 1) for _ in ch)
        self.nk_sigma = 2 * k
        self.cv4_sigma = nn.ModuleList(nn.Conv2d(c4, self.nk_sigma, 1) for _ in ch)

    def head_outputs(self, x: Sequence[torch.Tensor], prefix: str) -> dict[str, Any]:
        out = Detect.head_outputs(self, x, prefix)
        feats = [getattr(self, prefix + "cv4")[i](x[i]) for i in range(self.nl)]
        out["kpts"] = self.levels(getattr(self, prefix + "cv4_kpts"), feats, self.nk)
        if self.training:
            out["kpts_sigma"] = self.levels(getattr(self, prefix + "cv4_sigma"), feats, self.nk_sigma)
        return out

    def place(self, xy: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        return xy + anchors


@register_module("OBB", family=FAMILY, io=head_rule([("nc", 80), ("ne", 1)]), channels=(),
                 example=(EXAMPLE_LEVELS, ["nc", 1]))
class OBB(Detect):
    """Detect plus ne rotation values per anchor (`cv4`): angles in [-pi/4, 3pi/4), boxes rotated about
    the anchor; eval returns (xywh, class probabilities, angle). `dfl` is frozen, as in Detect."""

    def __init__(self, nc: int = 80, ne: int = 1, reg_max: int = 16, end2end: bool = False, ch: Sequence[int] = (),
                 *, legacy: bool = False, strides: Sequence[float] | None = None) -> None:
        super().__init__(nc, reg_max, False, ch, legacy=legacy, strides=strides)
        _check_positive("ne", ne)
        self.ne = ne
        self.cv4 = _per_level(ch, max(ch[0] // 4, ne), ne)
        self.one2one = bool(end2end)
        self.copy_branches(("cv2", "cv3", "cv4"))

    def angle(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits.sigmoid() - 0.25) * math.pi

    def head_outputs(self, x: Sequence[torch.Tensor], prefix: str) -> dict[str, Any]:
        out = super().head_outputs(x, prefix)
        out["angle"] = self.angle(self.levels(getattr(self, prefix + "cv4"), x, self.ne))
        return out

    def decode_boxes(self, raw: dict[str, Any], anchors: torch.Tensor) -> torch.Tensor:
        """Side distances and the angle -> rotated xywh: the centre offset turned by the angle."""
        lt, rb = self.dfl(raw["boxes"]).chunk(2, 1)
        cos, sin = raw["angle"].cos(), raw["angle"].sin()
        dx, dy = ((rb - lt) / 2).chunk(2, 1)
        centre = torch.cat((dx * cos - dy * sin, dx * sin + dy * cos), 1) + anchors.unsqueeze(0)
        return torch.cat((centre, lt + rb), 1)

    def decode(self, raw: dict[str, Any]) -> torch.Tensor:
        return torch.cat((super().decode(raw), raw["angle"]), 1)


@register_module("OBB26", family=FAMILY, io=head_rule([("nc", 80), ("ne", 1)]), channels=(),
                 example=(EXAMPLE_LEVELS, ["nc", 1]))
class OBB26(OBB):
    """YOLO26 OBB: the angle is the branch's raw output (no sigmoid range). `dfl` is frozen, as in Detect."""

    def angle(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


def _classify_rule(ctx: RowContext) -> Resolved:
    """[classes(, k, s, p, g)] -> Classify(c1, classes, ...): the class count is never width-scaled."""
    if not 1 <= len(ctx.args) <= 5:
        raise RuleError(f"Classify takes [classes(, k, s, p, g)], got {len(ctx.args)} arguments")
    return Resolved((ctx.c1, *ctx.args), None)


@register_module("Classify", family=FAMILY, io=_classify_rule, channels=(), example=(-1, ["nc"]))
class Classify(nn.Module):
    """Image classifier: a Conv to 1280 channels, global average pool, linear to the classes.

    Training returns logits (B, classes); eval (probabilities, logits).
    """

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1) -> None:
        super().__init__()
        _check_positive("classes", c2)
        hidden = 1280  # EfficientNet-B0's head width, as Ultralytics
        self.conv = Conv(c1, hidden, k, s, p, g)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(p=0.0, inplace=True)
        self.linear = nn.Linear(hidden, c2)

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> Any:
        if isinstance(x, list):
            x = torch.cat(x, 1)
        logits = self.linear(self.drop(self.pool(self.conv(x)).flatten(1)))
        return logits if self.training else (logits.softmax(1), logits)


def _multi_inputs(ctx: RowContext) -> list[int]:
    if any(s.channels is None for s in ctx.inputs):
        raise RuleError("a dense head cannot read another head")
    return [s.channels for s in ctx.inputs]  # type: ignore[misc]


def _depth_rule(ctx: RowContext) -> Resolved:
    """[c_mid] + the input widths (c_mid not width-scaled, as parse_model); a 1-channel map at stride / 2."""
    if len(ctx.args) < 1:
        raise RuleError("Depth takes [c_mid]")
    return Resolved((ctx.args[0], _multi_inputs(ctx)), 1)


@register_module("Depth", family=FAMILY, io=_depth_rule, channels=(), example=(EXAMPLE_LEVELS, [32]))
class Depth(nn.Module):
    """Monocular depth: levels projected to c_mid, fused top-down (bilinear x2, add, two 3x3 Convs), then
    up-sampled x2 to a log-depth map at the first level's stride / 2; returns exp of the clamped map."""

    def __init__(self, c_mid: int = 256, ch: Sequence[int] = ()) -> None:
        super().__init__()
        check_count("c_mid", c_mid, 1 << 16)
        if c_mid < 4:
            raise ValueError(f"c_mid must be at least 4 (the head narrows it by 4), got {c_mid}")
        self.nl = len(ch)
        self.proj = nn.ModuleList(Conv(c, c_mid, k=1) for c in ch)
        self.refine = nn.ModuleList(nn.Sequential(Conv(c_mid, c_mid, k=3), Conv(c_mid, c_mid, k=3)) for _ in ch[:-1])
        self.head = nn.Sequential(Conv(c_mid, c_mid // 2, k=3),
                                  nn.ConvTranspose2d(c_mid // 2, c_mid // 2, kernel_size=2, stride=2, bias=True),
                                  Conv(c_mid // 2, c_mid // 4, k=3), nn.Conv2d(c_mid // 4, 1, kernel_size=1))
        with torch.no_grad():
            self.head[-1].bias.fill_(0.182)
        self.register_buffer("cal_a", torch.ones(1))  # log-affine calibration, identity until calibrated
        self.register_buffer("cal_b", torch.zeros(1))

    def forward(self, x: list[torch.Tensor]) -> Any:
        feats = [self.proj[i](x[i]) for i in range(self.nl)]
        out = feats[-1]
        for i in range(self.nl - 2, -1, -1):
            out = self.refine[i](F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=True) + feats[i])
        log_depth = self.head(out).clamp(-4.0, 5.0)
        if self.training:
            return {"depth": torch.exp(log_depth)}
        return torch.exp(self.cal_a * log_depth + self.cal_b)


def _semantic_rule(ctx: RowContext) -> Resolved:
    """[classes] + the input widths: per-pixel class logits at the first input's stride."""
    if len(ctx.args) != 1:
        raise RuleError(f"SemanticSegment takes [classes], got {len(ctx.args)} arguments")
    return Resolved((ctx.args[0], _multi_inputs(ctx)), ctx.args[0])


@register_module("SemanticSegment", family=FAMILY, io=_semantic_rule, channels=(), example=([2, 3], ["nc"]))
class SemanticSegment(nn.Module):
    """Per-pixel class logits from the first level (3x3 Conv, 1x1 conv); in training also from the second
    (`aux_head`, deep supervision), returned as (logits, aux)."""

    def __init__(self, nc: int = 19, ch: Sequence[int] = ()) -> None:
        super().__init__()
        _check_positive("nc", nc)
        self.nc, self.nl = nc, len(ch)
        self.classifier = nn.Sequential(Conv(ch[0], ch[0], 3), nn.Conv2d(ch[0], nc, 1))
        self.aux_head = nn.Sequential(Conv(ch[1], ch[0], 3), nn.Conv2d(ch[0], nc, 1)) if len(ch) > 1 else None

    def forward(self, x: list[torch.Tensor]) -> Any:
        logits = self.classifier(x[0])
        if self.training and self.aux_head is not None:
            return logits, self.aux_head(x[1])
        return logits
