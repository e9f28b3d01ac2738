"""Stages of a candidate as the entropy scores see them (MODULES.md §MAE), from its rows in order.

Every conv or linear call of the scored rows adds half the log of its fan-in to a running sum (the
log output std a Gaussian-weight conv adds to unit-variance input). A stage is an output-stride level;
it ends at the last scored row of that stride that has output channels (a head ends none). MAE and
DeepMAD read the same stage ends and differ only in how they weigh them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .base import ObjectiveContext, RowTerms


@dataclass(frozen=True)
class StageEnd:
    """The state of the running sums at the last scored row of one stride."""

    stride: int
    row: int
    entropy: float  # running sum of 0.5*log(fan-in) over every scored call up to and with this row
    channels: int
    out_hw: tuple[int, int] | None
    layers: int  # deploy-form conv layers up to here
    log_width: float  # sum of log(fan-in) over those conv layers (DeepMAD's widths)


def row_entropy(row: RowTerms) -> float:
    """0.5*log(fan-in) summed over the row's calls; a depthwise conv adds 0.5*log(k*k)."""
    return sum(0.5 * math.log(c.fan_in) for c in row.cost.convs)


def stage_ends(rows: Sequence[RowTerms], ctx: ObjectiveContext,
               entropy: Callable[[RowTerms], float] = row_entropy) -> tuple[StageEnd, ...]:
    """The stage ends; `entropy` gives a row's own term (the analytic one unless a measurement is given)."""
    running, layers, log_width = 0.0, 0, 0.0
    last: dict[int, StageEnd] = {}
    for r in ctx.scored(rows):
        running += entropy(r)
        for c in r.cost.convs:
            if c.kind == "conv":
                layers += 1
                log_width += math.log(c.fan_in)
        if r.out_channels is not None and r.stride:
            s = int(round(r.stride))
            last[s] = StageEnd(s, r.index, running, r.out_channels, r.out_hw, layers, log_width)
    return tuple(last[s] for s in sorted(last))


def stage_weight(stride: int, weights: Sequence[float]) -> float:
    """weights[i] for stride 2**(i+1); deeper levels take the last weight; stride 1 has none."""
    if stride < 2:
        return 0.0
    i = int(round(math.log2(stride))) - 1
    return float(weights[min(i, len(weights) - 1)])
