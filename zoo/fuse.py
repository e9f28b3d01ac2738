"""BatchNorm folding and branch merging: the maths every re-parameterisable block shares.

In eval mode a BatchNorm2d is a per-channel affine map, so a conv followed by it is one conv with a
bias, and parallel conv branches over the same input (smaller kernels centred, an identity as a
one-hot kernel) sum into one conv. Blocks describe their branches; the arithmetic lives here only.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

Branch = tuple[torch.Tensor, torch.Tensor]  # (kernel, bias) of one conv branch, BN already folded


def bn_scale_shift(bn: nn.BatchNorm2d) -> Branch:
    """Per-channel (scale, shift) with bn(x) == x * scale + shift for the BN's running statistics."""
    std = torch.sqrt(bn.running_var + bn.eps)
    scale = bn.weight / std if bn.affine else 1.0 / std
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    return scale, beta - bn.running_mean * scale


def fold_bn(weight: torch.Tensor, bn: nn.BatchNorm2d, bias: torch.Tensor | None = None) -> Branch:
    """(kernel, bias) of bn(conv(x)) for a conv with `weight` (and `bias`, zero when None)."""
    scale, shift = bn_scale_shift(bn)
    kernel = weight * scale.reshape(-1, *(1,) * (weight.dim() - 1))
    return kernel, shift if bias is None else bias * scale + shift


def identity_kernel(channels: int, in_per_group: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """The k x k kernel of a (grouped) conv that copies its input: a one at each channel's own centre tap."""
    kernel = torch.zeros(channels, in_per_group, k, k, dtype=like.dtype, device=like.device)
    rows = torch.arange(channels, device=like.device)
    kernel[rows, rows % in_per_group, k // 2, k // 2] = 1.0
    return kernel


def conv_branch(conv: nn.Conv2d, bn: nn.Module | None = None) -> Branch:
    """(kernel, bias) of `conv` followed by `bn` (a BatchNorm2d, or nothing to fold)."""
    if isinstance(bn, nn.BatchNorm2d):
        return fold_bn(conv.weight, bn, conv.bias)
    bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)
    return conv.weight, bias


def identity_branch(bn: nn.BatchNorm2d, in_per_group: int, k: int, like: torch.Tensor) -> Branch:
    """(kernel, bias) of a BN-only skip branch, written as a k x k conv."""
    return fold_bn(identity_kernel(bn.num_features, in_per_group, k, like), bn)


def fold_branches(branches: Iterable[Branch], k: int) -> Branch:
    """Sum parallel branches into one k x k (kernel, bias); smaller odd kernels are centred by zero padding."""
    total_w: torch.Tensor | None = None
    total_b: torch.Tensor | None = None
    for weight, bias in branches:
        margin = (k - weight.shape[-1]) // 2
        if margin:
            weight = F.pad(weight, [margin] * 4)
        total_w = weight if total_w is None else total_w + weight
        total_b = bias if total_b is None else total_b + bias
    if total_w is None or total_b is None:
        raise ValueError("fold_branches needs at least one branch")
    return total_w, total_b


@torch.no_grad()
def conv_like(ref: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """A biased Conv2d with `ref`'s geometry (stride, padding, dilation, groups) holding `weight`, `bias`."""
    conv = nn.Conv2d(ref.in_channels, ref.out_channels, ref.kernel_size, ref.stride, ref.padding, ref.dilation,
                     ref.groups, bias=True, padding_mode=ref.padding_mode, device=weight.device, dtype=weight.dtype)
    conv.weight.copy_(weight)
    conv.bias.copy_(bias)
    return conv


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d with bias equal to bn(conv(x)) for the BN's running statistics."""
    return conv_like(conv, *fold_bn(conv.weight, bn, conv.bias))


def fold_conv_bn_attrs(module: nn.Module, conv: str = "conv", bn: str = "bn") -> bool:
    """Deploy form of a conv + BN block: `module.<conv>` absorbs `module.<bn>`, which becomes an Identity.

    Returns False (and changes nothing) when the BN is already gone, so calling it twice is harmless.
    """
    norm = getattr(module, bn)
    if not isinstance(norm, nn.BatchNorm2d):
        return False
    setattr(module, conv, fuse_conv_bn(getattr(module, conv), norm))
    setattr(module, bn, nn.Identity())
    return True


def fold_sequential_conv_bn(seq: nn.Sequential) -> bool:
    """Fold every (Conv2d, BatchNorm2d) neighbour pair of a Sequential in place; True if any."""
    changed = False
    keys = list(seq._modules)
    for a, b in zip(keys, keys[1:]):
        conv, bn = seq._modules[a], seq._modules[b]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and conv.out_channels == bn.num_features:
            seq._modules[a] = fuse_conv_bn(conv, bn)
            seq._modules[b] = nn.Identity()
            changed = True
    return changed
