"""The MAE (maximum-entropy) score of MODULES.md §MAE, for any built config.

Both forms read the deploy form (RepConv folded, BN folded), rows in order, convs inside a row in
execution order: the analytic form adds 0.5*log(fan-in) per conv call, the forward form measures the
log output std of each conv on unit-variance input with N(0, 1) weights, whose expectation is the same
number. A stage's score is the running sum at its last scored row plus log(that row's channels).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, Sequence

import torch
from torch import nn

from profiles.rowcosts import ConvRecorder, ConvTerm
from zoo.deploy import deploy
from zoo.graph import ZooModel
from zoo.limits import MAX_IMGSZ, MAX_REPEATS, check_option

DEFAULT_STAGE_WEIGHTS: tuple[float, ...] = (0.0, 0.0, 1.0, 1.0, 6.0)  # strides 2, 4, 8, 16, 32
SCOPES = ("all", "backbone")
METHODS = ("analytic", "forward")
# Activations the forward form replaces by identity (functional ones inside a forward are not seen).
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.LeakyReLU, nn.Hardswish, nn.Hardsigmoid, nn.GELU, nn.Mish,
                nn.ELU, nn.Tanh, nn.Sigmoid, nn.PReLU, nn.Softplus, nn.Hardtanh, nn.SELU, nn.CELU)


@dataclass(frozen=True)
class ConvCall:
    """One conv (or linear) call of the deploy form: the row it ran in and its fan-in."""

    row: int
    fan_in: float
    kind: str  # "conv" or "linear"


@dataclass(frozen=True)
class StageScore:
    stride: int
    weight: float
    score: float
    row: int  # the last scored row of this stride


@dataclass(frozen=True)
class MAEScore:
    score: float
    stages: tuple[StageScore, ...]
    row_terms: tuple[float, ...]  # each row's own sum of conv terms (0 for unscored rows)
    method: str
    scope: str

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "method": self.method, "scope": self.scope,
                "stages": [{"stride": s.stride, "weight": s.weight, "score": s.score} for s in self.stages]}


class ScoredRow(Protocol):
    """What the score reads of a row: a LayerInfo of a built model or a RowPlan of a planned one."""

    index: int
    section: str
    out_channels: int | None
    stride: float | None


def row_term(convs: Iterable[ConvTerm | ConvCall]) -> float:
    """One row's own MAE term: half the log of each conv's fan-in, summed in execution order."""
    total = 0.0
    for c in convs:
        total += 0.5 * math.log(c.fan_in)
    return total


def deployed_copy(model: ZooModel) -> ZooModel:
    """The inference graph of a copy; the caller's model is left as it is."""
    return deploy(copy.deepcopy(model))  # type: ignore[return-value]


def trace_convs(model: ZooModel, *, deployed: bool = False, imgsz: int | None = None) -> tuple[ConvCall, ...]:
    """Conv/linear calls of the deploy form in execution order, by row (one forward at `imgsz`, default
    the size the model was planned at)."""
    net = model if deployed else deployed_copy(model)
    calls: list[ConvCall] = []
    size = imgsz or (net.plan.imgsz if net.plan is not None else 640)
    with ConvRecorder(net) as rec:
        def row_hook(index: int, module: nn.Module, inp: Any) -> Any:
            start = len(rec.calls)
            out = module(inp)
            calls.extend(ConvCall(index, c.fan_in, c.kind) for c in rec.calls[start:])
            return out

        with torch.no_grad():
            net.eval().run(_image(net, size), row_hook)
    return tuple(calls)


def analytic_row_terms(calls: Iterable[ConvCall], n_rows: int) -> list[float]:
    by_row: list[list[ConvCall]] = [[] for _ in range(n_rows)]
    for c in calls:
        by_row[c.row].append(c)
    return [row_term(row) for row in by_row]


def forward_row_terms(model: ZooModel, *, imgsz: int = 320, repeats: int = 2, seed: int = 0,
                      deployed: bool = False) -> list[float]:
    """Per-row sums of log(output std) of each conv on a Gaussian-weight, linear copy of the model."""
    net = model if deployed else deployed_copy(model)
    net = copy.deepcopy(net) if deployed else net
    _linearise(net)
    n_rows = len(net.layers)
    total = [0.0] * n_rows
    gen = torch.Generator().manual_seed(seed)
    for _ in range(repeats):
        _gaussian_weights(net, gen)
        terms = [0.0] * n_rows
        current = [-1]

        def pre(module: nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
            x = inputs[0]
            return ((x - x.mean()) / x.std().clamp_min(1e-12), *inputs[1:])

        def post(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            terms[current[0]] += math.log(float(output.std()))

        def row_hook(index: int, module: nn.Module, inp: Any) -> Any:
            current[0] = index
            return module(inp)

        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        handles = [m.register_forward_pre_hook(pre) for m in convs] + [m.register_forward_hook(post) for m in convs]
        try:
            x = torch.randn(1, _channels(net), imgsz, imgsz, generator=gen)
            with torch.no_grad():
                net.eval().run(x, row_hook)
        finally:
            for h in handles:
                h.remove()
        total = [t + r for t, r in zip(total, terms)]
    return [t / repeats for t in total]


def combine(row_terms: Sequence[float], layers: Sequence[ScoredRow], *,
            weights: Sequence[float] = DEFAULT_STAGE_WEIGHTS, scope: str = "all", unscored: Iterable[int] = (),
            method: str = "analytic") -> MAEScore:
    """Running sum over scored rows; each stride's stage ends at its last scored row."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if not weights:
        raise ValueError("stage weights must not be empty")
    skip = set(unscored)
    scored = [info for info in layers if (scope == "all" or info.section == "backbone") and info.index not in skip]
    running = 0.0
    last: dict[int, tuple[float, int]] = {}
    kept = [0.0] * len(layers)
    for info in scored:
        running += row_terms[info.index]
        kept[info.index] = row_terms[info.index]
        if info.out_channels is not None and info.stride:
            last[int(round(info.stride))] = (running + math.log(info.out_channels), info.index)
    stages = tuple(StageScore(s, stage_weight(s, weights), v, row) for s, (v, row) in sorted(last.items()))
    return MAEScore(sum(st.weight * st.score for st in stages), stages, tuple(kept), method, scope)


def stage_weight(stride: int, weights: Sequence[float]) -> float:
    """Weight of a stride: weights[i] for stride 2**(i+1); deeper levels take the last; stride 1 none."""
    if stride < 2:
        return 0.0
    i = int(round(math.log2(stride))) - 1
    return float(weights[min(i, len(weights) - 1)])


def mae_score(model: ZooModel, *, weights: Sequence[float] = DEFAULT_STAGE_WEIGHTS, scope: str = "all",
              unscored: Iterable[int] = (), method: str = "analytic", imgsz: int = 320, repeats: int = 2,
              seed: int = 0, deployed: bool = False) -> MAEScore:
    """The MAE score of a built model (a copy is deployed; pass deployed=True if it already is)."""
    if method == "analytic":
        terms = analytic_row_terms(trace_convs(model, deployed=deployed), len(model.layers))
    elif method == "forward":
        check_option("imgsz", imgsz, 1, MAX_IMGSZ)
        check_option("repeats", repeats, 1, MAX_REPEATS)
        terms = forward_row_terms(model, imgsz=imgsz, repeats=repeats, seed=seed, deployed=deployed)
    else:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return combine(terms, model.layers, weights=weights, scope=scope, unscored=unscored, method=method)


def _linearise(net: nn.Module) -> None:
    """BN and activation modules -> identity, so each conv sees what the previous ones produced."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm) + _ACTIVATIONS):
                setattr(parent, name, nn.Identity())


@torch.no_grad()
def _gaussian_weights(net: nn.Module, gen: torch.Generator) -> None:
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
            if m.bias is not None:
                m.bias.zero_()


def _channels(net: nn.Module) -> int:
    return int(getattr(getattr(net, "config", None), "ch", 3))


def _image(net: nn.Module, size: int) -> torch.Tensor:
    p = next(net.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    return torch.zeros(1, _channels(net), size, size, device=dev)
