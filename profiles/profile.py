"""`profile_model`: everything SPEC §4 reports about one model, per YAML row and in total.

Counting happens in float32 on the chosen device at the real input size; memory and latency in the
chosen dtype. The model is profiled in eval mode; `deploy=True` profiles `zoo.deploy` of a copy.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from zoo.builder import check_plan_allocation
from zoo.config import Config
from zoo.errors import ConfigError, OptionError
from zoo.graph import ZooModel
from zoo.limits import MAX_BATCH, MAX_IMGSZ, MAX_RUNS, MAX_THREADS, check_option
from zoo.lint import LintWarning, lint_model
from zoo.plan import ModelPlan, plan_config

from .crosscheck import CrossCheck, cross_check
from .flops import CountsMacs, count_flops
from .latency import LatencyStats, loadavg, measure_latency, measure_row_latency
from .memory import MemoryEstimate, estimate_memory

Stage = Callable[[str], None]


@dataclass(frozen=True)
class LayerProfile(CountsMacs):
    """One YAML row as built: what it is, what it costs."""

    index: int
    from_: int | tuple[int, ...]
    repeats: int
    module: str
    args: tuple[Any, ...]
    params: int
    macs: int
    out_shape: tuple[int, ...] | None
    stride: float | None
    latency: LatencyStats | None
    share: float | None  # of the summed per-row latency medians; None without latency
    macs_share: float
    uncounted: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The row in SPEC §4's JSON (`layers`)."""
        lat = self.latency
        return {
            "index": self.index, "from": jsonable(self.from_), "repeats": self.repeats, "module": self.module,
            "args": jsonable(self.args), "params": self.params, "macs": self.macs,
            "gmacs": self.gmacs, "gflops": self.gflops,
            "out_shape": list(self.out_shape) if self.out_shape is not None else None,
            "stride": self.stride,
            "latency_ms": None if lat is None else {"median": round(lat.median_ms, 4), "p90": round(lat.p90_ms, 4)},
            "share": None if self.share is None else round(self.share, 4),
            "macs_share": round(self.macs_share, 4), "uncounted_ops": dict(self.uncounted),
            "uncounted": uncounted_text(self.uncounted),
        }


@dataclass(frozen=True)
class ModelProfile(CountsMacs):
    name: str
    scale: str | None
    source: str
    imgsz: int
    batch: int
    device: str
    dtype: str
    deploy: bool
    params: int
    macs: int
    n_modules: int  # what YOLOv5's summary calls "layers": len(list(model.modules()))
    latency: LatencyStats | None
    threads: int
    loadavg: tuple[float, float, float] | None
    memory: MemoryEstimate
    uncounted_ops: dict[str, int]
    by_operator: dict[str, int]
    cross_check: CrossCheck | None
    layers: tuple[LayerProfile, ...]
    lint: tuple[LintWarning, ...] = ()  # shape lint of the config as built (as `zoo validate` reports it)

    @property
    def label(self) -> str:
        return self.name + (" (deploy)" if self.deploy else "")

    @property
    def summary(self) -> str:
        """YOLOv5's summary line ("layers" is its count of modules)."""
        return (f"{self.name} summary{' (deploy)' if self.deploy else ''}: {self.n_modules} layers, "
                f"{self.params} parameters, {self.gflops:.2f} GFLOPs")

    def as_dict(self) -> dict[str, Any]:
        """SPEC §4's JSON object for one model (its keys at least, and a few more)."""
        return {
            "name": self.name, "scale": self.scale, "source": self.source, "summary": self.summary,
            "imgsz": self.imgsz, "batch": self.batch, "device": self.device, "dtype": self.dtype,
            "deploy": self.deploy, "params": self.params, "macs": self.macs, "gmacs": self.gmacs,
            "gflops": self.gflops, "latency_ms": None if self.latency is None else self.latency.as_dict(),
            "latency_runs": None if self.latency is None else self.latency.runs,
            "threads": self.threads, "loadavg": list(self.loadavg) if self.loadavg is not None else None,
            "memory": {**self.memory.as_dict(), "method": self.memory.method},
            "uncounted_ops": dict(self.uncounted_ops), "macs_by_operator": dict(self.by_operator),
            "cross_check": None if self.cross_check is None else self.cross_check.as_dict(),
            "lint": [w.as_dict() for w in self.lint],
            "layers": [lay.as_dict() for lay in self.layers],
        }


def uncounted_text(ops: Mapping[str, int]) -> str:
    """{'aten::silu': 2, 'aten::max_pool2d': 3} -> 'silu×2, max_pool2d×3' (the ops a row leaves uncounted)."""
    return ", ".join(f"{op.split('::')[-1]}×{n}" for op, n in ops.items())


def jsonable(value: Any) -> Any:
    """A YAML argument as JSON can hold it: tuples as lists, NaN/inf and unknown objects as text."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)


def profile_model(model_or_cfg: ZooModel | Config | str | Path | Mapping[str, Any], *, imgsz: int = 640,
                  batch: int = 1, device: str = "cpu", dtype: torch.dtype = torch.float32,
                  deploy: bool = False, latency: bool = True, threads: int = 1, scale: str | None = None,
                  nc: int | None = None, runs: int = 30, warmup_s: float = 1.0, crosscheck: bool = False,
                  on_stage: Stage | None = None) -> ModelProfile:
    """Profile a built model or build one from a config (name, path, mapping, Config) first.

    One counting pass (fvcore) by default; `crosscheck=True` adds thop and torch's counter. Shapes and
    the activation-memory estimate come from the row plan at `imgsz`, not from extra forward passes.
    """
    stage = on_stage or (lambda _s: None)
    _check_options(_source_name(model_or_cfg), imgsz=imgsz, batch=batch, device=device, threads=threads, runs=runs)
    model = _model_of(model_or_cfg, scale, nc, imgsz)
    source = model.config.path
    _check_stride(model, source, imgsz)
    plan = _plan_at(model, imgsz)
    check_plan_allocation(plan, batch=batch)  # before the batch of inputs and its activations exist
    stage("shape lint")
    lint = lint_model(model)  # on the config as built: deploy folds blocks but keeps what the config meant
    net = copy.deepcopy(model) if (deploy or isinstance(model_or_cfg, nn.Module)) else model
    if deploy:
        from zoo.deploy import deploy as to_deploy
        to_deploy(net)
    net = net.to(device=torch.device(device), dtype=torch.float32).eval()

    stage("counting MACs (fvcore)")
    fc = count_flops(net, imgsz=imgsz, batch=batch)
    cc = None
    if crosscheck:
        stage("cross-checking (thop, torch.utils.flop_counter)")
        cc = cross_check(net, imgsz, batch, fvcore_by_operator=fc.by_operator, fvcore_macs=fc.macs)

    net = net.to(dtype=dtype)
    memory = estimate_memory(net, plan, batch=batch, dtype=dtype, device=device)

    total_lat = None
    row_lat: dict[int, LatencyStats] = {}
    if latency:
        stage(f"timing end to end ({runs} runs, {threads} thread{'s' if threads > 1 else ''})")
        total_lat = measure_latency(net, imgsz=imgsz, batch=batch, device=device, dtype=dtype,
                                    threads=threads, runs=runs, warmup_s=warmup_s)
        stage(f"timing each row ({runs} runs)")
        row_lat = measure_row_latency(net, imgsz=imgsz, batch=batch, device=device, dtype=dtype,
                                      threads=threads, runs=runs, warmup_s=warmup_s)
    row_sum = sum(s.median_ms for s in row_lat.values())

    layers = []
    for info, module in zip(net.layers, net.model):
        macs = fc.by_row.get(info.index, 0)
        planned = plan.rows[info.index].out_shape
        shape = (batch, *planned[1:]) if planned is not None else None
        lat = row_lat.get(info.index)
        layers.append(LayerProfile(
            index=info.index, from_=info.from_, repeats=info.repeats, module=info.module, args=info.args,
            params=sum(p.numel() for p in module.parameters()), macs=macs, out_shape=shape,
            stride=imgsz / shape[2] if shape is not None and len(shape) == 4 and shape[2] else None,
            latency=lat, share=(lat.median_ms / row_sum if lat is not None and row_sum > 0 else None),
            macs_share=macs / fc.macs if fc.macs else 0.0, uncounted=fc.uncounted_by_row.get(info.index, {})))
    cfg = net.config
    return ModelProfile(
        name=cfg.name, scale=cfg.scale.name, source=source, imgsz=imgsz, batch=batch, device=str(device),
        dtype=str(dtype).replace("torch.", ""), deploy=deploy, params=sum(p.numel() for p in net.parameters()),
        macs=fc.macs, n_modules=len(list(net.modules())), latency=total_lat, threads=threads,
        loadavg=total_lat.loadavg if total_lat is not None else loadavg(), memory=memory,
        uncounted_ops=fc.uncounted, by_operator=fc.by_operator, cross_check=cc, layers=tuple(layers),
        lint=lint)


def _model_of(source: Any, scale: str | None, nc: int | None, imgsz: int) -> ZooModel:
    if isinstance(source, ZooModel):
        if scale is not None or nc is not None:
            raise ConfigError(source.config.path, "scale/nc apply to configs, not to an already built model")
        return source
    if isinstance(source, nn.Module):
        raise ConfigError(None, f"can only profile a ZooModel or a config, got {type(source).__name__}")
    from zoo.builder import DEFAULT_IMGSZ, build_model
    from zoo.config import load_config
    cfg = load_config(source, scale=scale, nc=nc)
    if imgsz == DEFAULT_IMGSZ:
        return build_model(cfg)
    try:
        return build_model(cfg, imgsz=imgsz)
    except ConfigError:  # a size the graph cannot take: name the sizes it can, if that is the reason
        _check_stride(build_model(cfg, device="meta"), cfg.path, imgsz)
        raise


def _plan_at(model: ZooModel, imgsz: int) -> ModelPlan:
    """The model's row plan at `imgsz` (its own when it was built at that size)."""
    if model.plan is not None and model.plan.imgsz == imgsz:
        return model.plan
    return plan_config(model.config, imgsz=imgsz)


def max_stride(model: ZooModel) -> int:
    strides = [float(s) for s in model.stride.flatten().tolist() if s]
    strides += [float(i.stride) for i in model.layers if i.stride]
    return int(round(max(strides))) if strides else 1


def _source_name(source: Any) -> str:
    """How errors name what is profiled, before it is built."""
    if isinstance(source, ZooModel):
        return source.config.path
    if isinstance(source, Config):
        return source.path
    return str(source) if isinstance(source, (str, Path)) else "<dict>"


def _check_options(source: str, *, imgsz: int, batch: int, device: str, threads: int, runs: int) -> None:
    """Range checks of the options (zoo.limits), before anything is built or allocated."""
    check_option("imgsz", imgsz, 1, MAX_IMGSZ, source=source)
    check_option("batch", batch, 1, MAX_BATCH, source=source)
    check_option("threads", threads, 1, MAX_THREADS, source=source)
    check_option("runs", runs, 1, MAX_RUNS, source=source)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise OptionError(source, "device", device, f"is not a device: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(source, "device", device, "needs CUDA, which is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise OptionError(source, "device", device, "is not supported (cpu, cuda)")


def _check_stride(model: ZooModel, source: str, imgsz: int) -> None:
    s = max_stride(model)
    if imgsz % s:
        up = max(s, -(-imgsz // s) * s)
        raise OptionError(source, "imgsz", imgsz, f"is not a positive multiple of the model's max stride {s} "
                                                  f"(try {up})")
