"""`feature_entropy`: the summed entropy of every feature map the scored rows produce, in mega-nats.

The MAE view, counted per unit: on unit-variance input with Gaussian weights each output unit of a row
has log std E_r, the running sum of 0.5*log(fan-in) up to and with that row (MODULES.md §MAE). A map of
h*w*c such units carries h*w*c*E_r nats (constants dropped, as MAE drops them), and the value is that
summed over every scored row with a feature map: sum_r h_r w_r c_r E_r. DeepMAD counts a CNN's entropy
per unit too (r^2 * c times the depth term) but keeps only the stage ends, with a log on r^2 * c.

Unlike MAE it reads the image size (area) and pays width linearly, not logarithmically; unlike MACs it
pays depth through E_r, which grows with every layer. No stage weights: every map counts. Chosen on
YOLOBench (bench/objective_validity.py) among six parameter-free variants of this idea; nothing was fitted.
"""
from __future__ import annotations

from typing import Sequence

from .base import ObjectiveContext, ObjectiveValue, RowTerms
from .registry import register_objective
from .stages import row_entropy


@register_objective("feature_entropy", uses_imgsz=True, grows_with_depth=True,
                    description="sum over scored rows of h*w*c * running entropy (Mnats): MAE counted per unit")
def feature_entropy(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> ObjectiveValue:
    running, total = 0.0, 0.0
    for r in ctx.scored(rows):
        running += row_entropy(r)
        if r.out_channels is not None and r.out_hw is not None:
            total += r.out_hw[0] * r.out_hw[1] * r.out_channels * running
    return ObjectiveValue(total / 1e6, terms={"entropy_final": running})
