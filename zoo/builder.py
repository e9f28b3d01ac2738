"""One loop from a row plan to a ZooModel. No per-module branches: each registration's rule decided the
constructor calls when the config was planned (zoo.plan), so building only instantiates them.

`device="meta"` builds without allocating weights (`zoo validate`). Any other build first estimates the
weights and one pass's activations from the plan and refuses, with one line, a model over the allocation
limit (zoo.limits.check_allocation), before anything is allocated.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .activation import activation_scope
from .config import load_config
from .errors import ConfigError
from .graph import LayerInfo, ZooModel
from .limits import check_allocation
from .norms import norm_scope
from .plan import ModelPlan, RowPlan, RowProbeError, activation_peak, construct, param_count, plan_config
from .schema import Config

DEFAULT_IMGSZ = 640  # the size a model is planned at unless told: shapes and strides in LayerInfo


def build_model(source: str | Path | Mapping[str, Any] | Config, *, scale: str | None = None,
                nc: int | None = None, device: str | torch.device | None = None,
                imgsz: int = DEFAULT_IMGSZ) -> ZooModel:
    """Build a detector from a built-in name, a YAML path, a mapping or a Config, planned at `imgsz`."""
    return build_from_plan(plan_config(load_config(source, scale=scale, nc=nc), imgsz=imgsz), device=device)


def build_from_plan(plan: ModelPlan, *, device: str | torch.device | None = None) -> ZooModel:
    """Instantiate every row of a plan (weights on `device`, the default device when None)."""
    dev = torch.device(device) if device is not None else None
    if (dev or torch.get_default_device()).type != "meta":
        check_plan_allocation(plan)
    modules: list[nn.Module] = []
    with activation_scope(plan.config.activation), (dev if dev is not None else contextlib.nullcontext()), \
            torch.no_grad():
        for rp in plan.rows:
            modules.append(_instantiate(plan.config, rp))
    return ZooModel(plan.config, modules, tuple(layer_info(rp) for rp in plan.rows), plan=plan)


def check_plan_allocation(plan: ModelPlan, *, batch: int = 1, bytes_per_element: int = 4) -> None:
    """Refuse (ConfigError, one line) a model whose float32 weights plus the activations of one pass of
    `batch` images exceed the allocation limit: checked from the plan, before allocating anything."""
    peak, _ = activation_peak(plan)
    check_allocation(param_count(plan), peak * batch * bytes_per_element, source=plan.config.path,
                     bytes_per_param=bytes_per_element)


def _instantiate(cfg: Config, rp: RowPlan) -> nn.Module:
    try:
        with norm_scope(rp.signature.norm):
            return construct(rp.spec, rp.args, rp.kwargs, rp.copies)
    except RowProbeError as e:
        raise ConfigError(cfg.path, str(e), row=rp.index, module=rp.row.module, line=rp.row.line) from None


def layer_info(rp: RowPlan) -> LayerInfo:
    row, out = rp.row, rp.out
    return LayerInfo(index=row.index, from_=row.from_, sources=row.sources, repeats=rp.n, module=row.module,
                     family=rp.spec.family, args=rp.args, in_channels=tuple(s.channels for s in rp.inputs),
                     out_channels=out.channels, stride=out.stride if out.channels is not None else None,
                     out_shape=rp.out_shape, section=row.section, inputs=rp.inputs, out=out,
                     signature=rp.signature)
