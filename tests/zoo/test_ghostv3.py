"""GhostNetV3 module: params by MODULES.md formulas in both modes, exact deploy to two convs, its rule."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import zoo
from zoo.modules.ghostv3 import GhostModuleV3
from zoo.registry import REGISTRY


def ghostv3_params(inp: int, oup: int, k: int = 1, ratio: int = 2, dw: int = 3, stride: int = 1,
                   gated: bool = False) -> int:
    """MODULES.md: 3 ConvBN branches + 1x1 scale (k > 1) + BN skip, for primary and cheap parts."""
    init = math.ceil(oup / ratio)
    new = init * (ratio - 1)
    primary = 3 * (inp * init * k * k + 2 * init) + (inp * init + 2 * init if k > 1 else 0) + \
        (2 * inp if inp == init and stride == 1 else 0)
    cheap = 3 * (new * dw * dw + 2 * new) + (new + 2 * new if dw > 1 else 0) + (2 * init if init == new else 0)
    gate = (oup * inp * k * k + 2 * oup) + 2 * (oup * 5 + 2 * oup) if gated else 0
    return primary + cheap + gate


def deployed_params(inp: int, oup: int, k: int = 1, ratio: int = 2, dw: int = 3) -> int:
    init = math.ceil(oup / ratio)
    new = init * (ratio - 1)
    return inp * init * k * k + init + new * dw * dw + new


CASES = [
    dict(inp=512, oup=512, k=3),                    # the RT-DETR row: no primary skip, cheap skip
    dict(inp=16, oup=32, k=1),                      # inp == init: primary skip; k = 1: no scale branch
    dict(inp=24, oup=30, k=3, ratio=3, dw=5),       # init != new: no cheap skip
    dict(inp=16, oup=32, k=3, stride=2),            # strided: no primary skip
]


@pytest.mark.parametrize("case", CASES)
def test_params_ori(helpers, case: dict) -> None:
    m = GhostModuleV3(case["inp"], case["oup"], case["k"], case.get("ratio", 2), case.get("dw", 3),
                      case.get("stride", 1))
    assert helpers.params(m) == ghostv3_params(**case)


@pytest.mark.parametrize("case", [dict(inp=16, oup=32, k=3), dict(inp=32, oup=48, k=1, ratio=3)])
def test_params_gated(helpers, case: dict) -> None:
    m = GhostModuleV3(case["inp"], case["oup"], case["k"], case.get("ratio", 2), mode="ori_shortcut_mul_conv15")
    assert helpers.params(m) == ghostv3_params(**case, gated=True)


@pytest.mark.parametrize("case", CASES[1:])
@pytest.mark.parametrize("mode", ["ori", "ori_shortcut_mul_conv15"])
def test_deploy_exact_and_two_convs(helpers, case: dict, mode: str) -> None:
    ratio, dw, stride = case.get("ratio", 2), case.get("dw", 3), case.get("stride", 1)
    m = GhostModuleV3(case["inp"], case["oup"], case["k"], ratio, dw, stride, mode=mode)
    helpers.randomise_bn(m)
    m.eval()
    x = torch.randn(2, case["inp"], 16, 16)
    with torch.no_grad():
        y = m(x)
        zoo.deploy(m)
        y2 = m(x)
    assert helpers.rel_diff(y, y2) <= 1e-4
    assert not any(isinstance(b, nn.BatchNorm2d) for b in m.modules())
    if mode == "ori":
        convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
        assert len(convs) == 2 and all(c.bias is not None for c in convs)
        assert helpers.params(m) == deployed_params(case["inp"], case["oup"], case["k"], ratio, dw)


def test_deploy_without_relu(helpers) -> None:
    m = GhostModuleV3(8, 8, 3, relu=False)
    helpers.randomise_bn(m, 3)
    m.eval()
    x = torch.randn(1, 8, 10, 10)
    with torch.no_grad():
        y = m(x)
        zoo.deploy(m)
        assert helpers.rel_diff(y, m(x)) <= 1e-4


def test_output_channels_by_mode() -> None:
    x = torch.randn(1, 8, 8, 8)
    assert GhostModuleV3(8, 15, 1, 2).eval()(x).shape[1] == 16  # 'ori' keeps ceil(15/2)*2
    assert GhostModuleV3(8, 15, 1, 2, mode="ori_shortcut_mul_conv15").eval()(x).shape[1] == 15


def test_rule_does_not_scale_c2_and_chains(helpers) -> None:
    spec = REGISTRY.lookup("GhostModuleV3", "ultralytics")
    assert spec.family == "shared" and spec.repeat == "chain"
    cfg = {"nc": 3, "depth_multiple": 1.0, "width_multiple": 0.5,
           "backbone": [[-1, 1, "Conv", [80, 3, 2]], [-1, 2, "GhostModuleV3", [40, 3]],
                        [-1, 1, "GhostModuleV3", [15, 1, 2, 3, 1, True, "ori_shortcut_mul_conv15"]]]}
    model = zoo.build_model(cfg)
    assert model.layers[1].out_channels == 40  # not 24 (= make_divisible(40 * 0.5))
    assert model.layers[1].args == (40, 40, 3)  # Conv's 80 is scaled to 40; the chain reads 40
    assert model.layers[2].out_channels == 15
    assert helpers.params(model.model[1]) == 2 * ghostv3_params(40, 40, 3)


def test_published_rtdetr_row(helpers, shared_dir) -> None:
    if "HGStem" not in REGISTRY.names():
        pytest.skip("the Ultralytics family is not registered in this checkout")
    model = zoo.build_model(shared_dir / "configs" / "rtdetr-l-GhostModuleV3.yaml", device="meta")
    assert model.layers[5].module == "GhostModuleV3" and model.layers[5].out_channels == 512
    assert helpers.params(model.model[5]) == 2 * ghostv3_params(512, 512, 3)
