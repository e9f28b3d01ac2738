"""Kernel size: per row (an index, or every row of a block), at the positions the block declares in its
registration (`kernels=`), among the sizes it accepts (`kernel_sizes=`)."""
from __future__ import annotations

from typing import Any

from zoo.limits import MAX_ARG

from .argument import ArgumentDimension
from .base import register_dimension
from .numbers import integer


@register_dimension
class KernelSize(ArgumentDimension):
    name = "kernel"
    key = "kernels"
    order = 20
    kind = "kernel"
    prefix = "k"
    what = "kernel sizes"

    def item(self, x: Any, key: Any) -> int:
        return integer(x, key, low=0, high=MAX_ARG, what="a kernel size")
