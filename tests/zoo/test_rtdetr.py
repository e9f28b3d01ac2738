"""RT-DETR-l blocks: params against MODULES-ultralytics.md §5-6, the published totals, the inference
output, the deploy form (input-projection BN folded) and fvcore's view of the attention ops."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from zoo import build_model, deploy
from zoo.modules.rtdetr import (AIFI, HGBlock, HGStem, MSDeformAttn, RepC3, RTDETRDecoder,
                                DeformableTransformerDecoderLayer, sincos_2d)


def K(c1: int, c2: int, k: int = 1, g: int = 1) -> int:
    return (c1 // g) * c2 * k * k + 2 * c2


def L(a: int, b: int) -> int:
    return a * b + b


@pytest.mark.parametrize("c1,cm,c2", [(3, 32, 48), (3, 24, 64)])
def test_hgstem(helpers, c1: int, cm: int, c2: int) -> None:
    expected = K(c1, cm, 3) + K(cm, cm // 2, 2) + K(cm // 2, cm, 2) + K(2 * cm, cm, 3) + K(cm, c2, 1)
    m = HGStem(c1, cm, c2)
    assert helpers.params(m) == expected
    assert m(torch.zeros(1, c1, 64, 64)).shape == (1, c2, 16, 16)
    assert helpers.params(HGStem(3, 32, 48)) == 25_248


@pytest.mark.parametrize("c1,cm,c2,k,n,light", [(48, 48, 128, 3, 6, False), (512, 192, 1024, 5, 6, True),
                                                (64, 32, 64, 5, 2, True)])
def test_hgblock(helpers, c1: int, cm: int, c2: int, k: int, n: int, light: bool) -> None:
    def block(i: int) -> int:
        cin = c1 if i == 0 else cm
        return cin * cm + 4 * cm + k * k * cm if light else K(cin, cm, k)

    expected = sum(block(i) for i in range(n)) + K(c1 + n * cm, c2 // 2) + K(c2 // 2, c2)
    m = HGBlock(c1, cm, c2, k, n, light, shortcut=True)
    assert helpers.params(m) == expected
    assert m.add is (c1 == c2)


@pytest.mark.parametrize("c1,c2,n,e", [(512, 256, 3, 1.0), (64, 32, 2, 0.5)])
def test_repc3(helpers, c1: int, c2: int, n: int, e: float) -> None:
    c_ = int(c2 * e)
    expected = 2 * (c1 * c_ + 2 * c_) + n * (10 * c_ * c_ + 4 * c_) + (K(c_, c2) if c_ != c2 else 0)
    assert helpers.params(RepC3(c1, c2, n, e)) == expected
    assert helpers.params(RepC3(512, 256, 3)) == 2_232_320


@pytest.mark.parametrize("c1,cm", [(256, 1024), (128, 512)])
def test_aifi(helpers, c1: int, cm: int) -> None:
    m = AIFI(c1, cm, 8).eval()
    assert helpers.params(m) == 4 * c1 * c1 + 2 * c1 * cm + cm + 9 * c1
    x = torch.randn(2, c1, 4, 6)
    assert m(x).shape == x.shape


def test_aifi_matches_torch_attention() -> None:
    """Our counted matmul form of the attention equals nn.MultiheadAttention's own forward."""
    m = AIFI(64, 128, 4).eval()
    x = torch.randn(2, 64, 3, 5)
    src = x.flatten(2).permute(0, 2, 1)
    pos = sincos_2d(3, 5, 64)
    with torch.no_grad():
        att = m.ma(src + pos, src + pos, src, need_weights=False)[0]
        src = m.norm1(src + att)
        ref = m.norm2(src + m.fc2(m.act(m.fc1(src))))
        assert torch.allclose(m(x), ref.permute(0, 2, 1).reshape(2, 64, 3, 5), atol=1e-5)


def test_sincos_embedding_layout() -> None:
    pe = sincos_2d(2, 3, 8)  # pos_dim 2: omega = [1, 1/100]
    assert pe.shape == (1, 6, 8)
    token = 1 * 3 + 2  # row h=1, column w=2 (row-major)
    expected = torch.tensor([torch.sin(torch.tensor(1.0)), torch.sin(torch.tensor(0.01)),
                             torch.cos(torch.tensor(1.0)), torch.cos(torch.tensor(0.01)),
                             torch.sin(torch.tensor(2.0)), torch.sin(torch.tensor(0.02)),
                             torch.cos(torch.tensor(2.0)), torch.cos(torch.tensor(0.02))])
    assert torch.allclose(pe[0, token], expected)


def msda(d: int, lv: int, h: int = 8, p: int = 4) -> int:
    return 3 * h * lv * p * (d + 1) + 2 * d * d + 2 * d


def dec_layer(d: int, lv: int, ffn: int = 1024) -> int:
    return 4 * d * d + 4 * d + msda(d, lv) + 2 * d * ffn + ffn + d + 6 * d


@pytest.mark.parametrize("d,lv", [(256, 3), (128, 2)])
def test_msdeformattn_and_layer(helpers, d: int, lv: int) -> None:
    assert helpers.params(MSDeformAttn(d, lv, 8, 4)) == msda(d, lv)
    assert helpers.params(DeformableTransformerDecoderLayer(d, 8, 1024, n_levels=lv)) == dec_layer(d, lv)
    assert msda(256, 3) == 205_600 and dec_layer(256, 3) == 995_872


@pytest.mark.parametrize("nc,ch", [(80, (256, 256, 256)), (20, (128, 512))])
def test_rtdetr_decoder(helpers, nc: int, ch: tuple[int, ...]) -> None:
    hd, ndl = 256, 6
    mlp3 = 2 * L(hd, hd) + L(hd, 4)
    expected = (sum(x * hd + 2 * hd for x in ch) + ndl * dec_layer(hd, len(ch)) + nc * hd
                + L(4, 2 * hd) + L(2 * hd, hd) + L(hd, hd) + 2 * hd + L(hd, nc) + mlp3
                + ndl * L(hd, nc) + ndl * mlp3)
    m = RTDETRDecoder(nc, ch)
    assert helpers.params(m) == expected
    assert helpers.params(RTDETRDecoder(80, (256, 256, 256), learnt_init_query=True)) == 7_466_252 + 300 * 256
    m.eval()
    feats = [torch.randn(1, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate(ch)]
    with torch.no_grad():
        y, (boxes, logits, *_) = m(feats)
    assert y.shape == (1, 300, 6) and boxes.shape == (1, 1, 300, 4) and logits.shape == (1, 1, 300, nc)
    assert (y[0, :-1, 4] >= y[0, 1:, 4]).all() and (y[..., 5] < nc).all()
    m.train()
    boxes, logits, *_ = m(feats)
    assert boxes.shape == (ndl, 1, 300, 4)  # training runs every layer's heads


def test_rtdetr_published_totals(helpers) -> None:
    m = build_model("rtdetr-l", device="meta")
    assert helpers.params(m) == 32_970_476
    assert helpers.params(m.model[28]) == 7_466_252
    assert m.layers[11].out_channels == 256 and m.layers[9].out_channels == 2048  # unscaled HGNetV2
    assert helpers.params(deploy(m)) == 32_147_372  # every BN folded, the input projection's included


def test_reference_file_builds_unchanged(helpers, shared_dir) -> None:
    m = build_model(shared_dir / "reference" / "ultralytics" / "rtdetr-l.yaml", device="meta")
    assert helpers.params(m) == 32_970_476 and m.config.scale.name == "l"


def test_eval_output_at_640() -> None:
    """Shapes only, on the meta device (8400 tokens, 300 queries); real forwards run in the deploy test."""
    m = build_model("rtdetr-l", device="meta").eval()
    with torch.no_grad():
        y, (boxes, logits, refer, enc_scores) = m(torch.empty(1, 3, 640, 640, device="meta"))
    assert y.shape == (1, 300, 6)
    assert boxes.shape == (1, 1, 300, 4) and logits.shape == (1, 1, 300, 80) and enc_scores.shape == (1, 300, 80)


def _deploy_gap(m: nn.Module, helpers) -> float:
    """Float64, so that the top-k query selection sees the same ranking in both forms (336 tokens)."""
    m.eval()
    helpers.randomise_bn(m)
    m.double()
    x = torch.rand(1, 3, 128, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y, raw = m(x)
        d = deploy(copy.deepcopy(m))
        y2, raw2 = d(x)
    assert not any(isinstance(b, nn.BatchNorm2d) for b in d.modules())
    return max(helpers.rel_diff(a, b) for a, b in zip((y, *raw), (y2, *raw2)))


def test_deploy_keeps_outputs(helpers) -> None:
    assert _deploy_gap(build_model("rtdetr-l", imgsz=64), helpers) <= 1e-4


def test_ghostv3_variant(helpers) -> None:
    """Rows and widths of the variant; its deploy form on the meta device (GhostModuleV3's deploy maths is
    checked on real values in test_ghostv3.py, the rest of the model's in test_deploy_keeps_outputs)."""
    pytest.importorskip("zoo.modules.ghostv3")
    m = build_model("rtdetr-l-ghostv3", device="meta")
    assert m.layers[5].module == "GhostModuleV3" and m.layers[5].out_channels == 512
    assert not m.model[6].add  # the next HGBlock reads 512 channels and loses its residual
    assert m.layers[28].in_channels == (256, 256, 256)
    d = deploy(m)
    assert not any(isinstance(b, nn.BatchNorm2d) for b in d.modules())
    # two chained modules, each one 3x3 conv 512 -> 256 and one 3x3 depthwise 256 -> 256, both biased
    assert helpers.params(d.model[5]) == 2 * (512 * 256 * 9 + 256 + 256 * 9 + 256)


@pytest.mark.parametrize("imgsz", [128])
def test_fvcore_counts_attention_and_sampling(imgsz: int) -> None:
    """Linear, matmul and grid_sample MACs by formula (levels at strides 8/16/32; at 128 px 336 tokens, so
    the 300 queries are all selected from real tokens); top-k listed as uncounted."""
    from profiles.flops import count_flops

    fc = count_flops(build_model("rtdetr-l", imgsz=64), imgsz=imgsz)
    d, q = 256, 300
    tokens = sum((imgsz // s) ** 2 for s in (8, 16, 32))
    aifi = (imgsz // 32) ** 2  # AIFI attends over the stride-32 map
    assert tokens >= q
    mlp3 = q * (2 * d * d + d * 4)
    per_layer = (q * (4 * 512 + 512 * d) + q * 4 * d * d + tokens * d * d + q * d * (192 + 96)
                 + q * d * d + q * 2 * d * 1024 + mlp3)
    linear = (aifi * (4 * d * d + 2 * d * 1024) + tokens * d * d + tokens * d * 80 + mlp3
              + 6 * per_layer + q * d * 80)
    assert fc.by_operator["linear"] == linear
    assert fc.by_operator["matmul"] == 2 * 8 * aifi * aifi * 32 + 6 * 2 * 8 * q * q * 32
    assert fc.by_operator["grid_sampler"] == 4 * 6 * 8 * 32 * q * 12
    assert "aten::topk" in fc.uncounted
