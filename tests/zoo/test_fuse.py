"""The shared folding maths (zoo.fuse) and cell grids (zoo.grids), against plain module forwards."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.fuse import (bn_scale_shift, conv_branch, conv_like, fold_branches, fold_bn, fold_conv_bn_attrs,
                      identity_branch, identity_kernel)
from zoo.grids import cell_grid, level_points


@pytest.mark.parametrize("affine", [True, False])
def test_bn_scale_shift_is_the_eval_bn(helpers, affine: bool) -> None:
    bn = helpers.randomise_bn(nn.BatchNorm2d(6, affine=affine)).eval()
    x = torch.randn(2, 6, 3, 3)
    scale, shift = bn_scale_shift(bn)
    with torch.no_grad():
        assert torch.allclose(bn(x), x * scale.view(-1, 1, 1) + shift.view(-1, 1, 1), atol=1e-6)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_identity_kernel_copies_its_input(groups: int) -> None:
    x = torch.randn(1, 6, 5, 5)
    kernel = identity_kernel(6, 6 // groups, 3, x)
    assert torch.equal(F.conv2d(x, kernel, padding=1, groups=groups), x)


def test_folded_branches_equal_the_summed_branches(helpers) -> None:
    """3x3 ConvBN + 1x1 ConvBN + BN skip (grouped) as one 3x3 conv, as RepVGG-style blocks deploy."""
    c, g = 8, 2
    dense = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, groups=g, bias=False), nn.BatchNorm2d(c))
    point = nn.Sequential(nn.Conv2d(c, c, 1, 1, 0, groups=g, bias=True), nn.BatchNorm2d(c))
    skip = nn.BatchNorm2d(c)
    for m in (dense, point, skip):
        helpers.randomise_bn(m, seed=len(list(m.modules()))).eval()
    x = torch.randn(2, c, 7, 7)
    with torch.no_grad():
        y = dense(x) + point(x) + skip(x)
        fused = conv_like(dense[0], *fold_branches([conv_branch(*dense), conv_branch(*point),
                                                    identity_branch(skip, c // g, 3, x)], 3))
        assert helpers.rel_diff(y, fused(x)) <= 1e-5
    kernel, bias = conv_branch(dense[0], nn.Identity())  # nothing to fold: the conv as it is
    assert kernel is dense[0].weight and torch.equal(bias, torch.zeros(c))
    with pytest.raises(ValueError, match="at least one branch"):
        fold_branches([], 3)


def test_fold_bn_keeps_a_conv_bias(helpers) -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    bn = helpers.randomise_bn(nn.BatchNorm2d(4)).eval()
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        w, b = fold_bn(conv.weight, bn, conv.bias)
        assert torch.allclose(F.conv2d(x, w, b, padding=1), bn(conv(x)), atol=1e-5)


def test_fold_conv_bn_attrs_is_idempotent(helpers) -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 2, 1, bias=False)
            self.bn: nn.Module = nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.conv(x))

    m = helpers.randomise_bn(Block()).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        y = m(x)
        assert fold_conv_bn_attrs(m) and isinstance(m.bn, nn.Identity) and m.conv.stride == (2, 2)
        assert not fold_conv_bn_attrs(m)
        assert helpers.rel_diff(y, m(x)) <= 1e-5


def test_cell_grid_and_level_points() -> None:
    like = torch.zeros(1, dtype=torch.float64)
    grid = cell_grid(2, 3, like, offset=0.5)
    assert grid.shape == (2, 3, 2) and grid.dtype == torch.float64
    assert grid[1, 2].tolist() == [2.5, 1.5]  # (x, y) of row 1, column 2
    points, strides = level_points([(2, 3), (1, 2)], [8.0, 16.0], like, in_pixels=True)
    assert points.tolist() == [[0, 0], [8, 0], [16, 0], [0, 8], [8, 8], [16, 8], [0, 0], [16, 0]]
    assert strides.view(-1).tolist() == [8.0] * 6 + [16.0] * 2
