"""Feature-map cell coordinates for detection heads: one place for the meshgrid every decoder needs.

Heads differ only in where inside a cell they put its point (centre +0.5, corner 0, YOLOv5's -0.5)
and in the unit (grid cells or pixels). Trivial offsets and steps add no op, so a traced FLOP count
sees only the arithmetic a head really does.
"""
from __future__ import annotations

from typing import Sequence

import torch


def cell_grid(h: int, w: int, like: torch.Tensor, offset: float = 0.0, step: float = 1.0) -> torch.Tensor:
    """(h, w, 2) tensor of ((column + offset) * step, (row + offset) * step) on `like`'s device and dtype."""
    axes = []
    for n in (h, w):
        axis = torch.arange(n, device=like.device, dtype=like.dtype)
        if offset:
            axis = axis + offset
        if step != 1.0:
            axis = axis * step
        axes.append(axis)
    grid_y, grid_x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack((grid_x, grid_y), -1)


def level_points(shapes: Sequence[tuple[int, int]], strides: Sequence[float], like: torch.Tensor,
                 offset: float = 0.0, in_pixels: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Every level's cell points (A, 2), row-major per level, and each point's stride (A, 1).

    Points are in grid cells of their own level, or in input pixels when `in_pixels`.
    """
    points, point_strides = [], []
    for (h, w), stride in zip(shapes, strides):
        points.append(cell_grid(h, w, like, offset, stride if in_pixels else 1.0).view(-1, 2))
        point_strides.append(torch.full((h * w, 1), stride, device=like.device, dtype=like.dtype))
    return torch.cat(points), torch.cat(point_strides)
