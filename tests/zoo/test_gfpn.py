"""Efficient RepGFPN blocks: params by MODULES.md formulas, exact re-parameterisation, built-in configs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.errors import ConfigError
from zoo.modules.gfpn import BasicBlock_3x3_Reverse, ConvBNAct, CSPStage, RepConv
from zoo.registry import REGISTRY


# hand formulas (MODULES.md): ConvBN(c1, c2, k) = c1*c2*k*k + 2*c2
def convbn(c1: int, c2: int, k: int) -> int:
    return c1 * c2 * k * k + 2 * c2


def repconv(c1: int, c2: int) -> int:
    return convbn(c1, c2, 3) + convbn(c1, c2, 1)


def basic_block(ci: int, ratio: float, co: int) -> int:
    hidden = int(ci * ratio)
    return repconv(ci, hidden) + convbn(hidden, co, 3)


def csp_stage(ci: int, co: int, n: int, ratio: float = 1.0) -> int:
    first = co // 2
    mid = co - first
    return convbn(ci, first, 1) + convbn(ci, mid, 1) + n * basic_block(mid, ratio, mid) + \
        convbn(mid * n + first, co, 1)


@pytest.mark.parametrize("c1,c2,k", [(16, 24, 1), (64, 128, 3)])
def test_convbnact_params(helpers, c1: int, c2: int, k: int) -> None:
    assert helpers.params(ConvBNAct(c1, c2, k)) == convbn(c1, c2, k)


@pytest.mark.parametrize("c1,c2", [(16, 24), (128, 64)])
def test_repconv_params(helpers, c1: int, c2: int) -> None:
    assert helpers.params(RepConv(c1, c2, 3)) == repconv(c1, c2)


@pytest.mark.parametrize("ci,ratio,co", [(32, 1.0, 32), (48, 0.5, 48)])
def test_basic_block_params(helpers, ci: int, ratio: float, co: int) -> None:
    assert helpers.params(BasicBlock_3x3_Reverse(ci, ratio, co)) == basic_block(ci, ratio, co)


@pytest.mark.parametrize("ci,co,n,ratio", [(64, 131, 1, 1.0), (96, 128, 3, 0.5)])
def test_csp_stage_params(helpers, ci: int, co: int, n: int, ratio: float) -> None:
    assert helpers.params(CSPStage(ci, co, n, ratio)) == csp_stage(ci, co, n, ratio)


def test_csp_stage_keeps_every_block_output() -> None:
    m = CSPStage(16, 32, 3).eval()
    assert m.conv3.conv.in_channels == 16 * 3 + 16
    assert m(torch.randn(1, 16, 8, 8)).shape == (1, 32, 8, 8)


@pytest.mark.parametrize("name,scale,rows", [
    # row 27: CSPStage on cat(13, 24, 25); l: 512 + 256 + 256 in, 1024 out, n = 3
    ("yolov5l-gfpn", (1.0, 1.0), {27: (1024, 1024, 3), 13: (1024, 512, 3), 20: (512 + 256, 256, 3)}),
    # s: widths halved, n = round(3 * 0.33) = 1
    ("yolov5s-gfpn", (0.33, 0.5), {27: (512, 512, 1), 13: (512, 256, 1), 20: (256 + 128, 128, 1)}),
])
def test_gfpn_config_rows_follow_formula(helpers, name: str, scale: tuple[float, float],
                                         rows: dict[int, tuple[int, int, int]]) -> None:
    model = zoo.build_model(name, device="meta")
    for i, (ci, co, n) in rows.items():
        assert model.layers[i].module == "CSPStage"
        assert model.layers[i].family == "damo"
        assert helpers.params(model.model[i]) == csp_stage(ci, co, n), i
    assert [model.layers[i].stride for i in (20, 23, 27)] == [8.0, 16.0, 32.0]


def test_published_gfpn_config_builds_and_runs(helpers, shared_dir) -> None:
    model = zoo.build_model(shared_dir / "configs" / "yolov5_GFPN.yaml", imgsz=128).eval()
    with torch.no_grad():
        out, levels = model(torch.zeros(1, 3, 64, 64))
    assert [lv.shape[2:4] for lv in levels] == [(8, 8), (4, 4), (2, 2)]
    # same architecture as the built-in l scale; only the classes differ (6 vs 80: 74 outputs per anchor)
    builtin = zoo.build_model("yolov5l-gfpn", device="meta")
    assert helpers.params(builtin) - helpers.params(model) == 74 * 3 * (256 + 1 + 512 + 1 + 1024 + 1)


@pytest.mark.parametrize("module,shape", [
    (ConvBNAct(8, 16, 3, 2), (2, 8, 16, 16)),
    (RepConv(8, 16, 3, 1, act="silu"), (2, 8, 16, 16)),
    (RepConv(8, 16, 3, 2, g=2), (2, 8, 15, 15)),
    (BasicBlock_3x3_Reverse(16, 0.5, 16), (2, 16, 12, 12)),
    (CSPStage(24, 40, 2), (2, 24, 12, 12)),
])
def test_deploy_is_exact(helpers, module: nn.Module, shape: tuple[int, ...]) -> None:
    assert helpers.deploy_gap(module, torch.randn(*shape)) <= 1e-4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in module.modules())


def test_repconv_deploys_to_one_3x3_conv(helpers) -> None:
    m = RepConv(16, 32, 3)
    zoo.deploy(m)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].kernel_size == (3, 3) and convs[0].bias is not None
    assert helpers.params(m) == 16 * 32 * 9 + 32


@pytest.mark.parametrize("name", ["yolov5s-gfpn", "yolov5l-gfpn"])
def test_gfpn_configs_deploy_exactly(helpers, name: str) -> None:
    model = zoo.build_model(name, imgsz=128)
    helpers.randomise_bn(model)
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        _, levels = model(x)
        zoo.deploy(model)
        _, levels2 = model(x)
    for a, b in zip(levels, levels2):
        assert helpers.rel_diff(a, b) <= 1e-4


def test_registration_and_resolution() -> None:
    assert REGISTRY.lookup("CSPStage", "yolov5").family == "damo"  # only one other family has it
    assert REGISTRY.lookup("RepConv", "damo").cls is RepConv
    assert REGISTRY.lookup("CSPStage", "damo").repeat == "inside"


def test_unknown_activation_is_an_error() -> None:
    with pytest.raises(ValueError, match="act must be one of"):
        ConvBNAct(8, 8, 1, act="gelu2")
    cfg = {"nc": 80, "family": "damo", "backbone": [[-1, 1, "ConvBNAct", [16, 3, 2, 1, "nope"]]]}
    with pytest.raises(ConfigError, match="row 0"):
        zoo.build_model(cfg)
