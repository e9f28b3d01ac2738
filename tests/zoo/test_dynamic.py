"""Dynamic-convolution blocks: CondConv maths, params by formula, published figures, deploy, FLOPs."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.modules.dynamic import (C3_DynamicConv, C3_GhostDynamicConv, CondConv2d, DynamicConv,
                                 GhostModule)

E = 4  # experts


# MODULES.md formulas
def conv(c1: int, c2: int, k: int) -> int:
    return c1 * c2 * k * k + 2 * c2


def dynamic_conv(c1: int, c2: int, k: int, g: int = 1) -> int:
    return (c1 * E + E) + E * c2 * (c1 // g) * k * k + 2 * c2


def ghost_module(inp: int, oup: int, k: int = 1, ratio: int = 2, dw: int = 3) -> int:
    init = math.ceil(oup / ratio)
    new = init * (ratio - 1)
    return dynamic_conv(inp, init, k) + dynamic_conv(init, new, dw, g=init)


def c3_ghost_dynamic(c1: int, c2: int, n: int) -> int:
    c_ = c2 // 2
    return 2 * conv(c1, c_, 1) + conv(2 * c_, c2, 1) + n * ghost_module(c_, c_)


def c3_dynamic(c1: int, c2: int, n: int) -> int:
    c_ = c2 // 2
    return 2 * conv(c1, c_, 1) + conv(2 * c_, c2, 1) + n * (conv(c_, c_, 1) + dynamic_conv(c_, c_, 3))


@pytest.mark.parametrize("c1,c2,k,g", [(16, 32, 1, 1), (24, 48, 3, 8)])
def test_dynamic_conv_params(helpers, c1: int, c2: int, k: int, g: int) -> None:
    assert helpers.params(DynamicConv(c1, c2, k, g=g)) == dynamic_conv(c1, c2, k, g)


@pytest.mark.parametrize("inp,oup,k,ratio", [(32, 32, 1, 2), (24, 45, 3, 3)])
def test_ghost_module_params(helpers, inp: int, oup: int, k: int, ratio: int) -> None:
    m = GhostModule(inp, oup, k, ratio)
    assert helpers.params(m) == ghost_module(inp, oup, k, ratio)
    assert m.eval()(torch.randn(1, inp, 8, 8)).shape[1] == oup


@pytest.mark.parametrize("c1,c2,n", [(64, 64, 1), (96, 128, 3)])
def test_c3_variants_params(helpers, c1: int, c2: int, n: int) -> None:
    assert helpers.params(C3_GhostDynamicConv(c1, c2, n)) == c3_ghost_dynamic(c1, c2, n)
    assert helpers.params(C3_DynamicConv(c1, c2, n)) == c3_dynamic(c1, c2, n)


def test_published_figures(helpers, shared_dir) -> None:
    """The authors' published totals: 38,750,125 params, backbone row 8 3,714,072."""
    model = zoo.build_model(shared_dir / "configs" / "yolov5_C3_GhostDynamicConv.yaml", device="meta")
    assert helpers.params(model) == 38_750_125
    assert helpers.params(model.model[8]) == 3_714_072 == c3_ghost_dynamic(1024, 1024, 3)
    assert helpers.params(model.model[13]) == c3_ghost_dynamic(1024, 512, 3)
    assert helpers.params(zoo.build_model("yolov5l-ghostdynamic", device="meta")) == 38_750_125


@pytest.mark.parametrize("name", ["yolov5_C3_GhostDynamicConv.yaml", "yolov5_C3_GhostDynamicConv-seg.yaml"])
def test_published_configs_run(shared_dir, name: str) -> None:
    model = zoo.build_model(shared_dir / "configs" / name, imgsz=128).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out[0].shape[:2] == (2, 3 * (8 * 8 + 4 * 4 + 2 * 2))


def test_condconv_is_a_per_sample_mixture_of_experts() -> None:
    torch.manual_seed(0)
    m = CondConv2d(8, 12, 3, 2, 1, 1, 2, bias=True, num_experts=3)
    x = torch.randn(3, 8, 9, 9)
    r = torch.rand(3, 3)
    y = m(x, r)
    for i in range(3):
        kernel = sum(r[i, e] * m.weight[e] for e in range(3)).view(12, 4, 3, 3)
        bias = sum(r[i, e] * m.bias[e] for e in range(3))
        ref = F.conv2d(x[i:i + 1], kernel, bias, 2, 1, 1, 2)
        assert torch.allclose(y[i:i + 1], ref, atol=1e-5)


@pytest.mark.parametrize("module,shape", [
    (DynamicConv(8, 16, 3, 2), (3, 8, 12, 12)),
    (DynamicConv(16, 16, 3, g=16), (2, 16, 10, 10)),
    (GhostModule(16, 24), (2, 16, 8, 8)),
    (C3_GhostDynamicConv(16, 32, 2), (2, 16, 8, 8)),
    (C3_DynamicConv(16, 32, 2), (2, 16, 8, 8)),
])
def test_deploy_folds_bn_into_every_expert(helpers, module: nn.Module, shape: tuple[int, ...]) -> None:
    assert helpers.deploy_gap(module, torch.randn(*shape)) <= 1e-4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in module.modules())


def test_deployed_dynamic_conv_params(helpers) -> None:
    m = DynamicConv(16, 32, 3)
    zoo.deploy(m)
    assert helpers.params(m) == dynamic_conv(16, 32, 3) - 2 * 32 + 32  # BN gone, one shift per channel


@pytest.mark.parametrize("name", ["yolov5l-ghostdynamic", "yolov5l-ghostdynamic-seg"])
def test_builtin_configs_deploy_exactly(helpers, name: str) -> None:
    model = zoo.build_model(name, imgsz=128)
    helpers.randomise_bn(model)
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        zoo.deploy(model)
        after = model(x)
    assert helpers.rel_diff(before[0], after[0]) <= 1e-4
    for a, b in zip(before[-1], after[-1]):  # raw level outputs
        assert helpers.rel_diff(a, b) <= 1e-4


def test_fvcore_counts_mixing_and_grouped_conv() -> None:
    from fvcore.nn import FlopCountAnalysis

    b, c1, c2, k, g, h = 2, 16, 32, 3, 2, 8
    m = DynamicConv(c1, c2, k, 1, g=g).eval()
    analysis = FlopCountAnalysis(m, torch.randn(b, c1, h, h))
    analysis.unsupported_ops_warnings(False)
    ops = analysis.by_operator()
    assert ops["matmul"] == b * E * c2 * (c1 // g) * k * k   # routing weights x experts
    assert ops["conv"] == b * c2 * (c1 // g) * k * k * h * h  # the grouped conv over batch x groups
    assert ops["linear"] == b * c1 * E                       # the router
    assert set(analysis.unsupported_ops()) <= {"aten::sigmoid", "aten::silu"}  # no size arithmetic
