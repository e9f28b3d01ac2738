"""thop and torch.utils.flop_counter against fvcore, broken down per op family so differences are explained.

Conv and matmul MACs agree across counters; BN costs 2 MACs per element in fvcore, 4 in thop and 0 in
the torch counter; upsample is counted by fvcore and thop (1 per output element, nearest), not by torch;
thop counts modules only, so functional convs and matmuls are invisible to it.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .flops import FlatOutputs, count_flops, example_input, group_by_family

COUNTERS = ("fvcore", "thop", "torch")

# Why the counters may differ on a family (shown beside the numbers).
WHY = {
    "conv": "same formula everywhere (k*k*cin/groups*cout*H*W, bias not counted); thop misses functional convs",
    "matmul": "same formula; thop counts nn.Linear only, not functional matmul/bmm",
    "batch_norm": "fvcore 2/element (eval, affine), thop 4/element, torch counter 0",
    "upsample": "nearest: 1/output element in fvcore and thop; torch counter does not count it",
    "attention": "torch counter counts SDPA; fvcore and thop see only its matmuls if any",
    "adaptive_avg_pool2d": "fvcore 1/input element; thop counts its kernel adds; torch counter 0",
    "layer_norm": "fvcore 5/element with affine, thop 4/element, torch counter 0",
    "group_norm": "fvcore 5/element with affine, thop counts nn.GroupNorm only if registered, torch counter 0",
    "grid_sampler": "fvcore 4/output element (bilinear); thop and torch counter do not count it",
}


@dataclass(frozen=True)
class FamilyCheck:
    family: str
    fvcore: int
    thop: int
    torch: int
    why: str

    @property
    def agree(self) -> bool:
        return self.fvcore == self.thop == self.torch


@dataclass(frozen=True)
class CrossCheck:
    """Totals (MACs) of the three counters on the same model and input, and the per-family breakdown."""

    fvcore_macs: int
    thop_macs: int
    torch_macs: int
    families: tuple[FamilyCheck, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"fvcore_macs": self.fvcore_macs, "thop_macs": self.thop_macs, "torch_macs": self.torch_macs,
                "by_family": [{"family": f.family, "fvcore": f.fvcore, "thop": f.thop, "torch": f.torch,
                               "why": f.why} for f in self.families]}

    def ratio(self, counter: str) -> float:
        """A counter's total over fvcore's."""
        other = {"fvcore": self.fvcore_macs, "thop": self.thop_macs, "torch": self.torch_macs}[counter]
        return other / self.fvcore_macs if self.fvcore_macs else float("nan")


def thop_by_family(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """thop's total MACs and its per-family breakdown (on a deepcopy: thop adds buffers to the model)."""
    net = copy.deepcopy(model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # thop uses distutils' LooseVersion
        import thop

        total, _params, tree = thop.profile(net, inputs=(x,), verbose=False, ret_layer_info=True)
    pairs: list[tuple[str, int]] = []

    def walk(module: nn.Module, subtree: dict) -> None:
        for name, (ops, _p, sub) in subtree.items():
            child = module.get_submodule(name)
            if sub and list(child.children()):
                walk(child, sub)
            elif ops:
                pairs.append((type(child).__name__, int(ops)))

    walk(net, tree)
    return int(total), group_by_family(pairs)


def torch_by_family(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """torch.utils.flop_counter's total and breakdown, converted to MACs (it reports FLOPs = 2 x MACs)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    glob = counter.get_flop_counts().get("Global", {})
    pairs = [(str(op), int(n) // 2) for op, n in glob.items()]
    return int(counter.get_total_flops()) // 2, group_by_family(pairs)


def cross_check(model: nn.Module, imgsz: int = 640, batch: int = 1, *, fvcore_by_operator: dict[str, int] | None = None,
                fvcore_macs: int | None = None) -> CrossCheck:
    """All three counters on `model` at the real input size; pass fvcore's result to avoid recounting."""
    if fvcore_by_operator is None or fvcore_macs is None:
        fc = count_flops(model, imgsz=imgsz, batch=batch)
        fvcore_by_operator, fvcore_macs = fc.by_operator, fc.macs
    x = example_input(model, imgsz, batch)
    thop_total, thop_fam = thop_by_family(FlatOutputs(model), x)
    torch_total, torch_fam = torch_by_family(model, x)
    fv_fam = group_by_family(fvcore_by_operator)
    names = sorted(set(fv_fam) | set(thop_fam) | set(torch_fam), key=lambda f: -max(
        fv_fam.get(f, 0), thop_fam.get(f, 0), torch_fam.get(f, 0)))
    families = tuple(FamilyCheck(f, fv_fam.get(f, 0), thop_fam.get(f, 0), torch_fam.get(f, 0),
                                 WHY.get(f, "")) for f in names)
    return CrossCheck(fvcore_macs=int(fvcore_macs), thop_macs=thop_total, torch_macs=torch_total,
                      families=families)
