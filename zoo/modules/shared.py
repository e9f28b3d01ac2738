"""torch layers usable by name in every family; their channels pass through."""
from __future__ import annotations

from torch import nn

from ..registry import register_layer

register_layer(nn.Upsample, "nn.Upsample")
register_layer(nn.MaxPool2d, "nn.MaxPool2d")
register_layer(nn.ZeroPad2d, "nn.ZeroPad2d")
register_layer(nn.Identity, "nn.Identity")
register_layer(nn.BatchNorm2d, "nn.BatchNorm2d", io="in_arg")
