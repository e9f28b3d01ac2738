"""A toy config family as a plugin: this one file is all a new family needs (`zoo ... --plugin FILE`).

- recognition: a config with the top-level key `toy: true` is a toy config (no `family:` needed);
- channel rule: widths round to multiples of 4 (YOLO rounds to 8) and are never capped;
- head policy: the head's `nc + 4` outputs (box and class maps of one conv) are never width-scaled;
- one block, ToyBlock, whose registration gives its channel rule, repeat mode and an example row.
tests/zoo/test_toy_family.py builds, profiles and searches a toy config with it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo import register_family, register_module
from zoo.rules import make_divisible
from zoo.schema import Scale

FAMILY = "toy"
DIVISOR = 4


def toy_channels(c: int, scale: Scale, mult: float = 1.0) -> int:
    """The toy width rule: c * width * the search's multiple, rounded up to a multiple of 4, no cap."""
    return max(DIVISOR, make_divisible(c * scale.width * mult, DIVISOR))


def toy_head_sizes(nc: int, anchors: Any) -> frozenset[int]:
    """A toy head writes 4 box channels and nc class channels in one map: that size stays as written."""
    return frozenset({nc + 4})


register_family(FAMILY, recognise=lambda data: data.get("toy") is True, priority=50,
                unscaled=toy_head_sizes, channels=toy_channels,
                doc="toy: a test plugin family recognised by `toy: true`")


def conv_bn_relu(c1: int, c2: int, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c1, c2, 3, s, 1, bias=False), nn.BatchNorm2d(c2), nn.ReLU())


@register_module("ToyBlock", family=FAMILY, io="out_arg", repeat="inside", example=(-1, [24, 2]))
class ToyBlock(nn.Module):
    """YAML [c2, s]: a 3x3 conv-BN-ReLU to c2 at stride s, then n residual 3x3 conv-BN-ReLUs."""

    def __init__(self, c1: int, c2: int, n: int = 1, s: int = 1) -> None:
        super().__init__()
        self.down = conv_bn_relu(c1, c2, s)
        self.m = nn.ModuleList(conv_bn_relu(c2, c2) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        for block in self.m:
            x = x + block(x)
        return x
