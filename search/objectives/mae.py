"""`mae`: the MAE-NAS (TinyNAS "madnas") score of MODULES.md §MAE, unchanged.

Stage score S_s = running entropy at the stage's last scored row + log(that row's channels); the value is
sum_s alpha_s * S_s with alpha = [0, 0, 1, 1, 6] over strides 2..32 unless the context sets its own
(DAMO-YOLO: [0, 0, 1, 1, 16]). No spatial term: the value ignores the image size and grows without bound
in depth, which is why TinyNAS recipes always set a layer budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .base import ObjectiveContext, ObjectiveValue, RowTerms
from .registry import get_objective, register_objective
from .stages import row_entropy, stage_ends, stage_weight

MAE_STAGE_WEIGHTS = (0.0, 0.0, 1.0, 1.0, 6.0)  # MAE-DET, strides 2, 4, 8, 16, 32


@dataclass(frozen=True)
class MAEStage:
    stride: int
    weight: float
    score: float  # running entropy at the stage's end + log(its channels)
    row: int  # the last scored row of this stride


def mae_stages(rows: Sequence[RowTerms], ctx: ObjectiveContext,
               entropy: Callable[[RowTerms], float] = row_entropy) -> tuple[MAEStage, ...]:
    """MAE's stages (the one place its formula lives; `zoo score`'s table and the objective read it)."""
    weights = get_objective("mae").weights(ctx)
    return tuple(MAEStage(st.stride, stage_weight(st.stride, weights), st.entropy + math.log(st.channels), st.row)
                 for st in stage_ends(rows, ctx, entropy))


@register_objective("mae", stage_weights=MAE_STAGE_WEIGHTS, grows_with_depth=True,
                    description="MAE-NAS entropy: sum_s alpha_s (sum 0.5 log fan-in + log c_s); TinyNAS's score")
def mae(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> ObjectiveValue:
    stages = mae_stages(rows, ctx)
    total = 0.0
    for st in stages:
        total += st.weight * st.score
    return ObjectiveValue(total, terms={f"stage{st.stride}": st.score for st in stages})
