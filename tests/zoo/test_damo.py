"""DAMO-YOLO T/S/M: train-form params by the closed forms of MODULES.md, the published (RepConv-folded,
BN kept) sizes, backbone outputs, deploy equality, and the new blocks (SPPBottleneck, CSPWrapper, ZeroHead)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from zoo import build_model, deploy, load_config
from zoo.modules.damo import CSPWrapper, SPPBottleneck, ZeroHead
from zoo.modules.gfpn import RepConv as GfpnRepConv
from zoo.modules.tinynas import _RepConv as TinyRepConv


def cbn(c1: int, c2: int, k: int = 1) -> int:
    """Conv2d without bias + BN."""
    return c1 * c2 * k * k + 2 * c2


def rep(c1: int, c2: int, k: int = 3) -> int:
    return cbn(c1, c2, k) + cbn(c1, c2, 1)


def res_block(cin: int, out: int, btn: int, s: int, kxkx: bool, k: int = 3) -> int:
    proj = cbn(cin, out) if s == 1 and cin != out else 0
    return cbn(cin, btn, k if kxkx else 1) + rep(btn, out, k) + proj


def spp(c: int) -> int:
    return cbn(c, c // 2) + cbn(2 * c, c)


def csp_stage(cin: int, cout: int, n: int, ratio: float) -> int:
    first, mid = cout // 2, cout - cout // 2
    hidden = int(mid * ratio)
    return cbn(cin, first) + cbn(cin, mid) + n * (rep(mid, hidden) + cbn(hidden, mid, 3)) + cbn(mid * n + first, cout)


def neck(c: list[int], o: list[int], n: int, ratio: float) -> int:
    return (cbn(c[1], c[1], 3) + csp_stage(c[1] + c[2], c[2], n, ratio)
            + cbn(c[0], c[0], 3) + csp_stage(c[0] + c[1] + c[2], c[1], n, ratio)
            + csp_stage(c[1] + c[0], o[0], n, ratio)
            + cbn(o[0], o[0], 3) + csp_stage(o[0] + c[1], o[1], n, ratio)
            + cbn(c[1], c[1], 3) + cbn(o[1], o[1], 3) + csp_stage(c[1] + o[1] + c[2], o[2], n, ratio))


def zero_head(ch: list[int], nc: int = 80, reg_max: int = 16) -> int:
    return sum(9 * c * nc + nc + 9 * c * 4 * (reg_max + 1) + 4 * (reg_max + 1) + 1 for c in ch)


def tinynas(stem: int, stages: list[tuple[int, int, int, int]]) -> int:
    total, cin = cbn(12, stem, 3), stem
    for out, depth, btn, s in stages:
        total += sum(res_block(cin if i == 0 else out, out, btn, s if i == 0 else 1, False) for i in range(depth))
        cin = out
    return total + spp(stages[-1][0])


def wrapper(cin: int, out: int, btn: int, n: int, with_spp: bool) -> int:
    half = out // 2
    return (cbn(cin, out, 3) + (spp(out) if with_spp else 0) + 2 * cbn(out, half)
            + n * res_block(half, half, btn, 1, True) + cbn(out, out))


# train-form params, from the structures of MODULES.md
T = tinynas(24, [(64, 2, 24, 2), (96, 2, 64, 2), (192, 2, 96, 2), (192, 2, 152, 1), (384, 1, 192, 2)]) \
    + neck([96, 192, 384], [64, 128, 256], 3, 1.0) + zero_head([64, 128, 256])
S = tinynas(32, [(128, 1, 24, 2), (128, 5, 88, 2), (256, 3, 128, 2), (256, 2, 120, 1), (512, 1, 144, 2)]) \
    + neck([128, 256, 512], [128, 256, 512], 3, 0.75) + zero_head([128, 256, 512])
M = cbn(12, 32, 3) + wrapper(32, 128, 64, 1, False) + wrapper(128, 128, 64, 3, False) \
    + wrapper(128, 256, 256, 7, False) + wrapper(256, 512, 256, 2, True) \
    + neck([128, 256, 512], [128, 256, 512], 4, 1.0) + zero_head([128, 256, 512])

MODELS = {  # name: (train params by formula, published M params with RepConv folded and BN kept,
            #        backbone rows read by the neck, their widths)
    "damo-yolo-t": (T, 8.5, (2, 4, 6), (96, 192, 384)),
    "damo-yolo-s": (S, 16.3, (2, 4, 6), (128, 256, 512)),
    "damo-yolo-m": (M, 28.2, (2, 3, 4), (128, 256, 512)),
}


def fold_repconvs_only(model: nn.Module) -> nn.Module:
    """DAMO-YOLO's own deploy count: RepConvs become one biased conv, every other BN stays."""
    for mod in list(model.modules()):
        if isinstance(mod, (TinyRepConv, GfpnRepConv)):
            mod.reparameterize()
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_params_train_and_published(helpers, name: str) -> None:
    train, published, rows, widths = MODELS[name]
    m = build_model(name, device="meta")
    assert helpers.params(m) == train
    assert round(helpers.params(fold_repconvs_only(m)) / 1e6, 1) == published
    assert tuple(m.layers[i].out_channels for i in rows) == widths
    assert tuple(m.layers[i].stride for i in rows) == (8.0, 16.0, 32.0)
    assert m.layers[-1].sources == ((14, 17, 21) if name == "damo-yolo-m" else (16, 19, 23))


@pytest.mark.parametrize("name", list(MODELS))
def test_deploy_keeps_outputs(helpers, name: str) -> None:
    m = helpers.randomise_bn(build_model(name, imgsz=64).eval())
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y, _ = m(x)
        d = deploy(copy.deepcopy(m))
        y2, _ = d(x)
    assert y.shape == (1, 12 * 12 + 6 * 6 + 3 * 3, 84)
    assert not any(isinstance(b, nn.BatchNorm2d) for b in d.modules())
    assert helpers.rel_diff(y, y2) <= 1e-4
    assert helpers.params(d) < helpers.params(fold_repconvs_only(copy.deepcopy(m)))


def test_search_blocks() -> None:
    for name in ("damo-yolo-t", "damo-yolo-s"):
        s = load_config(name).search
        assert s == {"stage_weights": [0, 0, 1, 1, 16], "scope": "backbone", "unscored": [6]}
        assert load_config(name).rows[6].module == "SPPBottleneck"
    m = load_config("damo-yolo-m").search
    assert m["stage_weights"] == [0, 0, 1, 1, 16] and "unscored" not in m


@pytest.mark.parametrize("c1,c2", [(384, 384), (64, 96)])
def test_spp_bottleneck(helpers, c1: int, c2: int) -> None:
    m = SPPBottleneck(c1, c2)
    assert helpers.params(m) == cbn(c1, c1 // 2) + cbn(2 * c1, c2)
    assert isinstance(m.conv1.act, nn.SiLU)
    assert m(torch.zeros(1, c1, 8, 8)).shape == (1, c2, 8, 8)


@pytest.mark.parametrize("cin,out,btn,n,with_spp", [(32, 128, 64, 1, False), (64, 96, 40, 2, True)])
def test_csp_wrapper(helpers, cin: int, out: int, btn: int, n: int, with_spp: bool) -> None:
    m = CSPWrapper(cin, out, btn, 3, n, with_spp)
    assert helpers.params(m) == wrapper(cin, out, btn, n, with_spp)
    assert isinstance(m.downsampler.act, nn.ReLU)
    assert m(torch.zeros(1, cin, 16, 16)).shape == (1, out, 8, 8)


@pytest.mark.parametrize("ch,nc", [([64, 128, 256], 80), ([32, 48], 3)])
def test_zero_head(helpers, ch: list[int], nc: int) -> None:
    m = ZeroHead(nc, ch, strides=[8.0 * 2 ** i for i in range(len(ch))])
    assert helpers.params(m) == zero_head(ch, nc)
    m.eval()
    feats = [torch.randn(1, c, 8 // 2 ** i, 8 // 2 ** i) for i, c in enumerate(ch)]
    with torch.no_grad():
        y, (cls, reg) = m(feats)
    a = sum((8 // 2 ** i) ** 2 for i in range(len(ch)))
    assert y.shape == (1, a, 4 + nc) and reg.shape == (1, a, 68)
    assert (y[..., 2:4] >= y[..., 0:2]).all()  # x2 >= x1, y2 >= y1
