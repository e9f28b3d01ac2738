"""The MAE (maximum-entropy) score of MODULES.md §MAE for a built model, with its stages.

The formula lives in search.objectives.mae; this module gives it a model. The analytic form reads the
rows' deploy-form conv calls from the row plan (the numbers the search uses); the forward form measures
the log output std of each conv on unit-variance input with N(0, 1) weights, whose expectation is the
same number. `trace_convs` reads the built model's conv calls by a forward pass: an independent way to
the analytic terms, which the tests compare with the plan's.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from profiles.rowcosts import ConvRecorder, ConvTerm
from zoo.deploy import deploy
from zoo.graph import ZooModel
from zoo.limits import MAX_IMGSZ, MAX_REPEATS, check_option
from zoo.plan import plan_config

from .objectives.base import SCOPES, ObjectiveContext, RowTerms
from .objectives.mae import MAE_STAGE_WEIGHTS, mae_stages
from .objectives.stages import row_entropy

DEFAULT_STAGE_WEIGHTS: tuple[float, ...] = MAE_STAGE_WEIGHTS  # strides 2, 4, 8, 16, 32
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
    """Each row's MAE term from traced calls (`trace_convs`): the built model's side of the plan-equals-build
    check (the plan's own terms come from profiles.rowcosts)."""
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


def model_rows(model: ZooModel) -> tuple[RowTerms, ...]:
    """A built model's rows with their costs, from its row plan (the rows' costs as the search counts them)."""
    from profiles.rowcosts import CostCache

    from .objectives import rows_from_plan

    cache = CostCache()
    plan = plan_config(model.config, imgsz=model.plan.imgsz if model.plan is not None else 640, prober=cache)
    return rows_from_plan(plan, [cache.get(rp.signature) for rp in plan.rows])


def mae_of_rows(rows: Sequence[RowTerms], *, weights: Sequence[float] | None = None, scope: str = "all",
                unscored: Iterable[int] = (), method: str = "analytic",
                terms: Sequence[float] | None = None) -> MAEScore:
    """MAE of rows (with measured per-row `terms` in place of the analytic ones for the forward form)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if weights is not None and not weights:
        raise ValueError("stage weights must not be empty")
    ctx = ObjectiveContext(stage_weights=tuple(weights) if weights is not None else None, scope=scope,
                           unscored=frozenset(unscored))
    own = (lambda r: terms[r.index]) if terms is not None else row_entropy
    stages = mae_stages(rows, ctx, own)
    skip = ctx.unscored
    kept = tuple((own(r) if (scope == "all" or r.section == "backbone") and r.index not in skip else 0.0)
                 for r in rows)
    total = 0.0
    for st in stages:
        total += st.weight * st.score
    return MAEScore(total, tuple(StageScore(st.stride, st.weight, st.score, st.row) for st in stages), kept,
                    method, scope)


def mae_score(model: ZooModel, *, weights: Sequence[float] | None = None, scope: str = "all",
              unscored: Iterable[int] = (), method: str = "analytic", imgsz: int = 320, repeats: int = 2,
              seed: int = 0, deployed: bool = False) -> MAEScore:
    """The MAE score of a built model (stage weights: MAE's own [0, 0, 1, 1, 6] unless given)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    rows = model_rows(model)
    terms = None
    if method == "forward":
        check_option("imgsz", imgsz, 1, MAX_IMGSZ)
        check_option("repeats", repeats, 1, MAX_REPEATS)
        terms = forward_row_terms(model, imgsz=imgsz, repeats=repeats, seed=seed, deployed=deployed)
    return mae_of_rows(rows, weights=weights, scope=scope, unscored=unscored, method=method, terms=terms)


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


@dataclass(frozen=True)
class ConfigScore:
    """A config's value under one objective at one image size (MAE keeps its stage breakdown)."""

    name: str
    objective: str
    imgsz: int
    value: Any  # search.objectives.ObjectiveValue
    mae: MAEScore | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"config": self.name, "objective": self.objective, "imgsz": self.imgsz,
                               "score": self.value.value, "feasible": self.value.feasible,
                               "terms": dict(self.value.terms)}
        if self.mae is not None:
            out.update({k: v for k, v in self.mae.as_dict().items() if k != "score"})
        return out


def score_config(source: Any, *, imgsz: int = 640, settings: Any = None, method: str = "analytic",
                 repeats: int = 2) -> ConfigScore:
    """Score a config (name, path, mapping or Config) with its settings' objective at `imgsz`."""
    from profiles.rowcosts import CostCache
    from zoo.builder import build_model
    from zoo.config import load_config

    from .objectives import get_objective, rows_from_plan
    from .settings import load_settings

    check_option("imgsz", imgsz, 1, MAX_IMGSZ)
    cfg = load_config(source)
    s = settings or load_settings(cfg)
    objective = get_objective(s.objective)
    cache = CostCache()
    plan = plan_config(cfg, imgsz=imgsz, prober=cache)
    rows = rows_from_plan(plan, [cache.get(rp.signature) for rp in plan.rows])
    ctx = ObjectiveContext(imgsz=imgsz, stage_weights=s.stage_weights, scope=s.scope, unscored=frozenset(s.unscored))
    mae = None
    if objective.name == "mae":
        terms = None
        if method == "forward":
            check_option("repeats", repeats, 1, MAX_REPEATS)
            terms = forward_row_terms(build_model(cfg, imgsz=imgsz), imgsz=imgsz, repeats=repeats)
        elif method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        mae = mae_of_rows(rows, weights=s.stage_weights, scope=s.scope, unscored=s.unscored, method=method,
                          terms=terms)
    value = objective(rows, ctx)
    if mae is not None and method == "forward":
        from .objectives import ObjectiveValue

        value = ObjectiveValue(mae.score, terms={f"stage{st.stride}": st.score for st in mae.stages})
    return ConfigScore(cfg.name, objective.name, imgsz, value, mae)
