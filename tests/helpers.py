"""Small helpers shared by the model tests (loaded by path: tests/ is not a package).

tests/zoo/conftest.py exposes this module as the `helpers` fixture.
"""
from __future__ import annotations

import torch
from torch import nn

from profiles.flops import flatten_tensors as tensors  # the tensors nested in an output, in order


def params(model: nn.Module) -> int:
    """Every parameter element, frozen ones included (the published figures count them too)."""
    return sum(p.numel() for p in model.parameters())


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm2d non-trivial statistics and affine terms, so folding them is really exercised.

    Means and shifts in [-0.5, 0.5), variances in [0.5, 2), scales in [0.5, 1.5). Returns the model.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest magnitude of the reference `a`."""
    return float((a - b).abs().max() / a.abs().max())


def deploy_gap(module: nn.Module, x) -> float:
    """Randomise BN statistics, deploy in place, and return the eval-mode gap of the outputs (outputs_gap)."""
    import zoo

    randomise_bn(module)
    module.eval()
    with torch.no_grad():
        before = module(x)
        zoo.deploy(module)
        after = module(x)
    return outputs_gap(before, after)


def outputs_gap(before, after) -> float:
    """The largest rel_diff over every tensor of two outputs of the same structure (float64)."""
    a, b = tensors(before), tensors(after)
    assert len(a) == len(b) and a, f"outputs differ in structure: {len(a)} tensors vs {len(b)}"
    assert [t.shape for t in a] == [t.shape for t in b], "outputs differ in shape"
    return max(rel_diff(x.double(), y.double()) for x, y in zip(a, b))


def random_inputs(sig, *, batch: int = 1, dtype: torch.dtype = torch.float32, seed: int = 0,
                  requires_grad: bool = False):
    """Gaussian inputs shaped like a row plan's inputs (zoo.plan.example_inputs, refilled)."""
    from zoo.plan import example_inputs

    g = torch.Generator().manual_seed(seed)
    feed = example_inputs(sig, batch=batch, dtype=dtype)
    for t in feed if sig.multi else [feed]:
        t.normal_(generator=g).requires_grad_(requires_grad)
    return feed
