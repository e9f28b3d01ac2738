"""EfficientNetV2 blocks: params by MODULES.md formulas, DropPath in training only, deploy, the config."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.modules.effnetv2 import DropPath, FusedMBConv, MBConv, SqueezeExcite, stem


# MODULES.md formulas
def stem_p(c1: int, c2: int, k: int, g: int = 1) -> int:
    return c2 * (c1 // g) * k * k + 2 * c2


def se_p(c1: int, c2: int, ratio: float) -> int:
    r = int(c1 * ratio)
    return c1 * r + r + r * c2 + c2


def fused_p(c1: int, c2: int, k: int, expansion: int) -> int:
    if expansion == 1:
        return stem_p(c1, c2, k)
    e = c1 * expansion
    return stem_p(c1, e, k) + stem_p(e, c2, 1)


def mb_p(c1: int, c2: int, k: int, expansion: int, se: float) -> int:
    e = c1 * expansion
    return stem_p(c1, e, 1) + stem_p(e, e, k, g=e) + (se_p(e, e, se) if se > 0 else 0) + stem_p(e, c2, 1)


@pytest.mark.parametrize("c1,c2,k,g", [(3, 16, 3, 1), (32, 32, 5, 32)])
def test_stem_params(helpers, c1: int, c2: int, k: int, g: int) -> None:
    m = stem(c1, c2, k, 1, g)
    assert helpers.params(m) == stem_p(c1, c2, k, g)
    assert (m.bn.eps, m.bn.momentum) == (1e-3, 0.1)


@pytest.mark.parametrize("c,ratio", [(64, 0.25), (96, 0.1)])
def test_squeeze_excite_params(helpers, c: int, ratio: float) -> None:
    assert helpers.params(SqueezeExcite(c, c, ratio)) == se_p(c, c, ratio)


@pytest.mark.parametrize("c1,c2,k,s,expansion", [(16, 16, 3, 1, 1), (16, 24, 3, 2, 4)])
def test_fused_mbconv_params(helpers, c1: int, c2: int, k: int, s: int, expansion: int) -> None:
    m = FusedMBConv(c1, c2, k, s, expansion, 0)
    assert helpers.params(m) == fused_p(c1, c2, k, expansion)
    assert m.has_shortcut == (s == 1 and c1 == c2)


@pytest.mark.parametrize("c1,c2,k,s,expansion,se", [(32, 64, 3, 2, 4, 0.25), (80, 80, 3, 1, 6, 0.25),
                                                    (24, 24, 5, 1, 2, 0)])
def test_mbconv_params(helpers, c1: int, c2: int, k: int, s: int, expansion: int, se: float) -> None:
    assert helpers.params(MBConv(c1, c2, k, s, expansion, se)) == mb_p(c1, c2, k, expansion, se)


def test_drop_path_only_in_training() -> None:
    torch.manual_seed(0)
    m = MBConv(8, 8, 3, 1, 2, 0.25, drop_connect_rate=0.5)
    x = torch.randn(64, 8, 6, 6)
    m.eval()
    with torch.no_grad():
        ref = m(x)
        assert torch.equal(m(x), ref)  # eval: deterministic, no drop
        branch = ref - x
        m.train()
        y = m(x)
    dropped = [torch.equal(y[i], x[i]) for i in range(64)]
    assert 0 < sum(dropped) < 64  # some samples keep only the shortcut
    kept = [i for i, d in enumerate(dropped) if not d]
    assert not torch.allclose(y[kept[0]], ref[kept[0]])  # kept branches are rescaled by 1/(1-p) (BN aside)
    assert branch.abs().sum() > 0
    assert DropPath(0.3).eval()(x) is x


def test_published_config_and_builtin(helpers, shared_dir) -> None:
    published = zoo.build_model(shared_dir / "configs" / "yolov5s_EfficientNetv2.yaml", imgsz=128).eval()
    builtin = zoo.build_model("yolov5s-effnetv2", device="meta")
    assert helpers.params(published) == helpers.params(builtin)
    # six stride-2 stages: the head reads 16/32/64
    assert [published.layers[i].stride for i in (20, 23, 26)] == [16.0, 32.0, 64.0]
    assert published.stride.tolist() == [16.0, 32.0, 64.0]
    # row 9: 8 chained MBConv(80, 80, 3, 1, 6, 0.25) at width 0.5 (160 -> 80), depth 0.33 (8 -> 3)
    assert helpers.params(published.model[9]) == 3 * mb_p(80, 80, 3, 6, 0.25)
    assert helpers.params(published.model[1]) == fused_p(16, 16, 3, 1)  # 2 * 0.33 -> 1 copy of 24 -> 16
    with torch.no_grad():
        out, levels = published(torch.rand(1, 3, 128, 128))
    assert [lv.shape[2:4] for lv in levels] == [(8, 8), (4, 4), (2, 2)]


def test_builtin_deploys_exactly(helpers) -> None:
    model = zoo.build_model("yolov5s-effnetv2", imgsz=128)
    helpers.randomise_bn(model)
    model.eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        _, before = model(x)
        zoo.deploy(model)
        _, after = model(x)
    for a, b in zip(before, after):
        assert helpers.rel_diff(a, b) <= 1e-4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_bad_stride_is_an_error() -> None:
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        MBConv(8, 8, 3, 3)
