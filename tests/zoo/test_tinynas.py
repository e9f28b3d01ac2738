"""TinyNAS super-blocks: hand-computed params, deploy equality, channel rule and errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.errors import ConfigError
from zoo.modules.tinynas import ResK1KX, ResKXKX


def _bn(c: int) -> int:
    return 2 * c


def _repconv(c1: int, c2: int, k: int) -> int:
    return c1 * c2 * k * k + _bn(c2) + c1 * c2 + _bn(c2)


def test_k1kx_params_hand_computed(helpers) -> None:
    m = ResK1KX(16, 32, 8, 3, 2, 2)
    first = 16 * 8 + _bn(8) + _repconv(8, 32, 3)  # stride 2: no residual, no projection
    second = 32 * 8 + _bn(8) + _repconv(8, 32, 3)
    assert helpers.params(m) == first + second


def test_kxkx_params_and_projection(helpers) -> None:
    m = ResKXKX(16, 32, 8, 5, 1, 1)  # stride 1 and 16 != 32: a 1x1 ConvBN projection
    expected = 16 * 8 * 25 + _bn(8) + _repconv(8, 32, 5) + 16 * 32 + _bn(32)
    assert helpers.params(m) == expected


@pytest.mark.parametrize("cls,k,s", [(ResK1KX, 3, 2), (ResK1KX, 3, 1), (ResKXKX, 5, 1), (ResKXKX, 3, 2)])
def test_deploy_keeps_outputs_and_fuses_every_branch(helpers, cls: type, k: int, s: int) -> None:
    m = cls(8, 16, 8, k, s, 2).eval()
    helpers.randomise_bn(m)
    x = torch.randn(1, 8, 32, 32)
    with torch.no_grad():
        y0 = m(x)
        zoo.deploy(m)
        y1 = m(x)
    assert not any(isinstance(mod, nn.BatchNorm2d) for mod in m.modules())
    assert helpers.rel_diff(y0, y1) <= 1e-4


def test_config_rows_scale_out_and_btn() -> None:
    cfg = {"family": "damo", "depth_multiple": 0.5, "width_multiple": 0.5, "backbone": [
        [-1, 1, "Focus", [32, 3]],
        [-1, 4, "ResK1KX", [64, 32, 3, 2]],
        [-1, 2, "ResKXKX", [128, 64, 3, 2, "silu"]],
    ]}
    m = zoo.build_model(cfg)
    assert m.layers[1].args == (16, 32, 16, 3, 2, 2)  # c1, out, btn (both halved), k, stride, L
    assert m.layers[2].args == (32, 64, 32, 3, 2, 1, "silu")
    assert m.layers[2].stride == 8.0
    assert isinstance(m.model[2].m[0].act1, nn.SiLU)


@pytest.mark.parametrize("args,text", [([64, 32, 3], r"takes \[out, btn, k, stride"),
                                       ([64, 32, 3, 0], "stride must be a positive"),
                                       ([64, 32, 3, 3], "stride must be 1 or 2"),
                                       ([64, 32, 4, 2], "odd kernel")])
def test_bad_rows_are_config_errors(args: list, text: str) -> None:
    cfg = {"family": "damo", "backbone": [[-1, 1, "Focus", [16, 3]], [-1, 1, "ResK1KX", args]]}
    with pytest.raises(ConfigError, match=text):
        zoo.build_model(cfg)
