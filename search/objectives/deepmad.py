"""`deepmad`: DeepMAD's multi-scale entropy with the resolution term, under its effectiveness budget.

Source: Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural Network",
CVPR 2023 (arXiv 2303.02165); its code is alibaba/lightweight-neural-architecture-search (commit 8ccaf88),
which the paper names as its implementation. The search corpora held the paper's abstract only, so the
exact forms below are the code's (file and function named with each), in our words:

- Layer entropy: a conv with C_in input channels and a k x k kernel adds 0.5*log(C_in * k^2), half the
  log of its fan-in (`get_deepmad_forward` of each block, tinynas/models/blocks_cnn_2d/*.py, with
  alpha1 = alpha2 = 1 as every DeepMAD config sets them). E_s is the running sum up to the end of stage s
  (`stage_block_num` is cumulative in `CnnNet.get_stage_info`, tinynas/models/cnnnet.py).
- Stage entropy with the resolution term: H_s = log(r_s^2 * c_s) * E_s, r_s the feature-map side and c_s
  the channels at the stage's end (`ComputeDeepMadScore.ratio_score`, tinynas/scores/compute_deepmad.py).
  The resolution and width multiply the depth term; MAE adds log(c_s) instead.
- Multi-scale weights: sum_s alpha_s H_s with alpha = [1, 1, 1, 1, 8] over five stages
  (`multi_block_ratio` of configs/classification/deepmad_*.py).
- Effectiveness rho = L / w_bar: L the conv layers up to a stage's end, w_bar the geometric mean of their
  widths (a conv's width is its fan-in C_in * k^2), the largest over the stages (`CnnNet.get_efficient_score`,
  `get_width`). A budget rho <= rho_0 (`efficient_score` of the configs: 0.3 for the ResNet-like designs,
  0.5 for the SoTA ones) keeps the network from being too deep for its width.
- Depth uniformity: the score loses beta * exp(std of the stage depths), beta = 10 (`depth_penalty_ratio`;
  applied in tinynas/strategy/strategy.py over the blocks' repeat counts `L`, the first stage left out).

For a YAML detector the stages are its output-stride levels (2..32, MODULES.md §MAE: each ends at the last
scored row of its stride, a head ends none), r_s^2 is that row's output h*w at the real image size, and a
stage's depth is the number of deploy-form conv layers of the scored backbone rows at that stride (the row
terms carry no block counts), the stride-2 stem left out as the code leaves out the first stage. The budget
is rho_0 = 0.5 (DeepMAD's own designs); `depth_budget` adds one relative to a search's base.
"""
from __future__ import annotations

import math
import statistics
from typing import Sequence

from .base import ObjectiveContext, ObjectiveValue, RowTerms
from .registry import get_objective, register_objective
from .stages import stage_ends, stage_weight

DEEPMAD_STAGE_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 8.0)  # strides 2, 4, 8, 16, 32
RHO_0 = 0.5  # effectiveness budget of DeepMAD's SoTA configs
BETA = 10.0  # depth-uniformity penalty ratio


def effectiveness(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> float:
    """DeepMAD's rho: the largest L / exp(mean log fan-in) over the stage ends (0 without conv layers)."""
    return max((st.layers / math.exp(st.log_width / st.layers) for st in stage_ends(rows, ctx) if st.layers),
               default=0.0)


def stage_depths(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> dict[int, int]:
    """Deploy-form conv layers of the scored backbone rows per stride, the stride-2 stem left out."""
    depths: dict[int, int] = {}
    for r in ctx.scored(rows):
        if r.section == "backbone" and r.stride and r.stride > 2:
            s = int(round(r.stride))
            depths[s] = depths.get(s, 0) + r.cost.layers
    return dict(sorted(depths.items()))


@register_objective("deepmad", stage_weights=DEEPMAD_STAGE_WEIGHTS, uses_imgsz=True, grows_with_depth=True,
                    description="DeepMAD: sum_s alpha_s log(h_s w_s c_s) E_s - 10 exp(std depths), rho <= 0.5")
def deepmad(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> ObjectiveValue:
    weights = get_objective("deepmad").weights(ctx)
    terms: dict[str, float] = {}
    entropy = 0.0
    for st in stage_ends(rows, ctx):
        if st.out_hw is None:
            raise ValueError(f"row {st.row} has no output size: the deepmad objective needs it")
        h = math.log(st.out_hw[0] * st.out_hw[1] * st.channels) * st.entropy
        terms[f"stage{st.stride}"] = h
        entropy += stage_weight(st.stride, weights) * h
    depths = list(stage_depths(rows, ctx).values())
    penalty = BETA * math.exp(statistics.pstdev(depths)) if len(depths) > 1 else 0.0
    rho = effectiveness(rows, ctx)
    terms.update(entropy=entropy, depth_penalty=penalty, effectiveness=rho)
    ok = rho <= RHO_0
    return ObjectiveValue(entropy - penalty, feasible=ok, terms=terms,
                          reason="" if ok else f"effectiveness {rho:.3f} > {RHO_0} (too deep for its width)")
