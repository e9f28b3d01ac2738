"""`zoo.deploy(model)`: the inference graph, in place.

A block that knows its own deploy form defines `reparameterize()` and owns its subtree (RepConv folds
its branches, Conv folds its BN); everything else is visited for nested blocks and for plain
Sequential(Conv2d, BatchNorm2d) pairs.
"""
from __future__ import annotations

from torch import nn

from .fuse import fold_sequential_conv_bn


def deploy(model: nn.Module) -> nn.Module:
    """Fold multi-branch blocks and conv+BN pairs; eval outputs stay equal. Returns the model."""
    model.eval()
    reparam = getattr(model, "reparameterize", None)
    if callable(reparam):
        reparam()
    else:
        _visit(model)
    return model


def _visit(module: nn.Module) -> None:
    for child in module.children():
        reparam = getattr(child, "reparameterize", None)
        if callable(reparam):
            reparam()
        else:
            _visit(child)
    if isinstance(module, nn.Sequential):
        fold_sequential_conv_bn(module)
