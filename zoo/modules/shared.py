"""torch layers usable by name in every family; their channels pass through."""
from __future__ import annotations

from torch import nn

from ..registry import register_layer

register_layer(nn.Upsample, "nn.Upsample", example=(-1, [None, 2, "nearest"]))
register_layer(nn.MaxPool2d, "nn.MaxPool2d", example=(-1, [2, 2, 0]))
register_layer(nn.ZeroPad2d, "nn.ZeroPad2d", example=(-1, [[0, 1, 0, 1]]))
register_layer(nn.Identity, "nn.Identity", example=(-1, []))
register_layer(nn.BatchNorm2d, "nn.BatchNorm2d", io="in_arg", example=(-1, []))
