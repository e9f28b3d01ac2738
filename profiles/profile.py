"""`profile_model`: everything SPEC §4 reports about one model, per YAML row and in total.

Counting happens in float32 on the chosen device at the real input size; memory and latency in the
chosen dtype. The model is profiled in eval mode; `deploy=True` profiles `zoo.deploy` of a copy.

Latency, three ways (RowLatency says which, and how the rows relate to the total):
  - eager torch (the default): the whole model timed, each row timed around its call inside the same
    forward passes (rows sum to within a few percent of the total);
  - another backend (`backend="onnxruntime"`): the whole model's graph timed, each row timed alone
    at its real input shapes in a graph of its own; standalone rows miss the whole by session overhead
    and the layout changes at every boundary, so the profile states the ratio total / row sum;
  - a latency table (`lut=`): every row's entry, the total predicted by the table's calibration
    total = a * row sum + b (rows the table lacks are measured and appended when the table was opened
    on its device, otherwise an error names them).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from zoo.builder import DEFAULT_IMGSZ, build_model, check_plan_allocation
from zoo.config import Config, load_config
from zoo.errors import ConfigError, OptionError
from zoo.graph import ZooModel
from zoo.lint import LintWarning, lint_model
from zoo.plan import ModelPlan, RowProbe, RowProbeError, plan_config, run_probe

from .crosscheck import CrossCheck, cross_check
from .childtiming import measure_child_latency
from .flops import CountsMacs, count_flops, count_flops_by_child
from .latency import (MAX_CV, LatencyStats, LatencyWarning, TimingProtocol, latency_warnings, loadavg,
                      measure_latency, measure_row_latency, time_module, usable_cores)
from .memory import MemoryEstimate, buffer_bytes, estimate_memory, param_bytes
from .options import check_run_options

Stage = Callable[[str], None]


@dataclass(frozen=True)
class LayerProfile(CountsMacs):
    """One YAML row as built: what it is, what it costs."""

    index: int
    from_: int | tuple[int, ...] | None  # None: a plain module's part (no YAML routing)
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

    def __repr__(self) -> str:
        lat = f", {self.latency.median_ms:.2f} ms" if self.latency is not None else ""
        return f"LayerProfile({self.index} {self.module}: {self.params:,} params, {self.gflops:.3f} GFLOPs{lat})"

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """The row in SPEC §4's JSON (`layers`)."""
        lat = self.latency
        return {
            "index": self.index, "from": jsonable(self.from_), "repeats": self.repeats, "module": self.module,
            "args": jsonable(self.args), "params": self.params, "macs": self.macs,
            "gmacs": self.gmacs, "gflops": self.gflops,
            "out_shape": list(self.out_shape) if self.out_shape is not None else None,
            "stride": self.stride,
            "latency_ms": None if lat is None else lat.as_dict(),  # median, p90 and the CV of its timed runs
            "latency_runs": None if lat is None else lat.runs,
            "share": None if self.share is None else round(self.share, 4),
            "macs_share": round(self.macs_share, 4), "uncounted_ops": dict(self.uncounted),
            "uncounted": uncounted_text(self.uncounted),
        }


@dataclass(frozen=True)
class RowLatency:
    """Where a profile's latency comes from and how its rows sum to its total: total = a * row_sum + b."""

    backend: str  # torch, onnxruntime
    method: str  # "measured" or "predicted"
    rows: str  # how the rows were timed: "in the model's forward", "alone", "latency table"
    row_sum_ms: float
    a: float
    b: float
    fit: str  # "ratio" (a = total / row sum, stated) or the table's fit method
    table: str | None = None  # the latency table's path
    anchored: str | None = None  # when the table's anchor was measured (a and b include its factor)

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "method": self.method, "rows": self.rows,
                "row_sum_ms": round(self.row_sum_ms, 4), "calibration": {"fit": self.fit, "a": self.a, "b": self.b},
                "table": self.table, "anchored": self.anchored}


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
    cores: int | None = None  # the cores the process could use while timing (the load is compared with them)
    latency_warnings: tuple[LatencyWarning, ...] = ()  # load above the cores, CV above MAX_CV, half on CPU
    input_shape: tuple[int, ...] | None = None  # what a plain nn.Module was profiled at (None: batch x ch x imgsz²)
    row_latency: RowLatency | None = None  # how the latency was found (None without latency)

    @property
    def label(self) -> str:
        return self.name + (" (deploy)" if self.deploy else "")

    @property
    def input_text(self) -> str:
        """The input profiled at: `1x640x640` (batch x size x size) or a plain module's whole shape."""
        dims = self.input_shape or (self.batch, self.imgsz, self.imgsz)
        return "x".join(map(str, dims))

    def __repr__(self) -> str:
        lat = f", {self.latency.median_ms:.2f} ms median" if self.latency is not None else ""
        return (f"ModelProfile({self.label}: {self.params:,} params, {self.gflops:.2f} GFLOPs at {self.input_text}"
                f"{lat}, {len(self.layers)} rows, {self.device} {self.dtype})")

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
            "deploy": self.deploy, "params": self.params, "modules": self.n_modules, "macs": self.macs,
            "gmacs": self.gmacs,
            "gflops": self.gflops, "latency_ms": None if self.latency is None else self.latency.as_dict(),
            "latency_runs": None if self.latency is None else self.latency.runs,
            "threads": self.threads, "loadavg": list(self.loadavg) if self.loadavg is not None else None,
            "cores": self.cores, "latency_cv_max": MAX_CV,
            "latency_warnings": [w.as_dict() for w in self.latency_warnings],
            "memory": {**self.memory.as_dict(), "method": self.memory.method},
            "uncounted_ops": dict(self.uncounted_ops), "macs_by_operator": dict(self.by_operator),
            "cross_check": None if self.cross_check is None else self.cross_check.as_dict(),
            "lint": [w.as_dict() for w in self.lint],
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "latency": None if self.row_latency is None else self.row_latency.as_dict(),
            "layers": [lay.as_dict() for lay in self.layers],
        }

    def to_dict(self) -> dict[str, Any]:
        """as_dict() under the name pandas and most libraries use."""
        return self.as_dict()


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


def profile_model(model_or_cfg: nn.Module | Config | str | Path | Mapping[str, Any], *, imgsz: int = 640,
                  batch: int = 1, device: str = "cpu", dtype: torch.dtype = torch.float32,
                  deploy: bool = False, latency: bool = True, threads: int = 1, scale: str | None = None,
                  nc: int | None = None, runs: int = 30, warmup_s: float = 1.0, crosscheck: bool = False,
                  input_shape: Sequence[int] | None = None, backend: Any = "torch", lut: Any = None,
                  on_stage: Stage | None = None) -> ModelProfile:
    """Profile a config (name, path, mapping, Config), a built ZooModel, or any nn.Module.

    One counting pass (fvcore) by default; `crosscheck=True` adds thop and torch's counter. Shapes and
    the activation-memory estimate come from the row plan at `imgsz`, not from extra forward passes.
    A plain nn.Module has no YAML rows: give `input_shape=(1, 3, 640, 640)` and it is profiled per
    top-level child (fvcore counts, params, latency; no plan, so no lint and memory from one pass).
    For a zoo model `input_shape` is another way to say (batch, ch, imgsz, imgsz).
    Latency (module docstring): eager torch in the model's forward by default, `backend="onnxruntime"`
    for ORT, `lut=` a profiles.lut.LatencyTable for the table's prediction (batch 1).
    """
    stage = on_stage or (lambda _s: None)
    source_name = _source_name(model_or_cfg)
    shape = _check_input_shape(source_name, input_shape) if input_shape is not None else None
    if isinstance(model_or_cfg, nn.Module) and not isinstance(model_or_cfg, ZooModel):
        if shape is None:
            raise OptionError(source_name, "input_shape", None, "is needed to profile a plain nn.Module "
                                                                "(e.g. input_shape=(1, 3, 640, 640))")
        if scale is not None or nc is not None or crosscheck:
            raise ConfigError(source_name, "scale, nc and crosscheck apply to zoo models, not to a plain nn.Module")
        check_run_options(source_name, threads=threads, runs=runs, device=device, dtype=dtype)
        return _profile_module(model_or_cfg, shape, device=device, dtype=dtype, deploy=deploy, latency=latency,
                               threads=threads, runs=runs, warmup_s=warmup_s, stage=stage)
    if shape is not None:
        if len(shape) != 4 or shape[2] != shape[3]:
            raise OptionError(source_name, "input_shape", input_shape, "must be (batch, channels, size, size) "
                                                                       "for a zoo model (square images)")
        batch, imgsz = shape[0], shape[2]
    check_run_options(source_name, imgsz=imgsz, batch=batch, threads=threads, runs=runs,
                      device=device, dtype=dtype)
    if lut is not None and latency and batch != 1:
        raise OptionError(source_name, "batch", batch, "cannot be priced by a latency table "
                                                       "(its rows were timed at batch 1)")
    model = _model_of(model_or_cfg, scale, nc, imgsz)
    if shape is not None and shape[1] != model.config.ch:
        raise OptionError(source_name, "input_shape", input_shape, f"has {shape[1]} channels, the config "
                                                                   f"{model.config.ch}")
    source = model.config.path
    check_stride_multiple(model, source, imgsz)
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
    how: RowLatency | None = None
    if latency and lut is not None:
        stage(f"pricing each row from {lut.path}")
        total_lat, row_lat, how = _lut_latency(lut, plan, deploy=deploy, threads=threads, device=device)
    elif latency and (backend if isinstance(backend, str) else backend.name) != "torch":
        total_lat, row_lat, how = _backend_latency(net, source, backend, imgsz=imgsz, batch=batch, device=device,
                                                   dtype=dtype, threads=threads, runs=runs, warmup_s=warmup_s,
                                                   stage=stage)
    elif latency:
        stage(f"timing end to end ({runs} runs, {threads} thread{'s' if threads > 1 else ''})")
        total_lat = measure_latency(net, imgsz=imgsz, batch=batch, device=device, dtype=dtype,
                                    threads=threads, runs=runs, warmup_s=warmup_s)
        stage(f"timing each row ({runs} runs)")
        row_lat = measure_row_latency(net, imgsz=imgsz, batch=batch, device=device, dtype=dtype,
                                      threads=threads, runs=runs, warmup_s=warmup_s)
        how = _ratio("torch", "measured", "in the model's forward", total_lat, row_lat)
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
        lint=lint, cores=usable_cores(), row_latency=how,
        latency_warnings=latency_warnings(total_lat, dtype=dtype) if total_lat is not None else ())


def _check_input_shape(source: str, shape: Any) -> tuple[int, ...]:
    """(batch, channels, ...) of positive ints in zoo.limits' bounds."""
    dims = tuple(shape) if isinstance(shape, (list, tuple, torch.Size)) else None
    if (not dims or len(dims) > 8 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims)):
        raise OptionError(source, "input_shape", shape, "must be a tuple of positive integers such as (1, 3, 640, 640)")
    check_run_options(source, batch=dims[0])
    for d in dims[1:]:
        check_run_options(source, imgsz=d)  # no side (nor channel count) beyond the largest image side
    return dims


def _profile_module(module: nn.Module, shape: tuple[int, ...], *, device: str, dtype: torch.dtype, deploy: bool,
                    latency: bool, threads: int, runs: int, warmup_s: float, stage: Stage) -> ModelProfile:
    """A plain nn.Module profiled per top-level child: no YAML rows, no plan, no lint."""
    name = type(module).__name__
    net = copy.deepcopy(module)
    if deploy:
        from zoo.deploy import deploy as to_deploy
        to_deploy(net)
    dev = torch.device(device)
    net = net.to(device=dev, dtype=torch.float32).eval()
    x = torch.zeros(shape, device=dev)
    children = list(net.named_children())

    stage("one forward pass (shapes, memory)")
    net = net.to(dtype=dtype)
    probe, out_shapes = _forward_shapes(net, x.to(dtype), name)
    element = torch.empty((), dtype=dtype).element_size()
    if dev.type == "cuda":
        from .memory import cuda_peak_activation_bytes
        peak, method = cuda_peak_activation_bytes(net, x.to(dtype)), "cuda allocator peak"
    else:
        peak, method = probe.peak_numel * element, "estimate (largest op, one pass)"
    memory = MemoryEstimate(param_bytes=param_bytes(net), buffer_bytes=buffer_bytes(net),
                            peak_activation_bytes=peak, method=method)

    stage("counting MACs (fvcore)")
    net = net.to(dtype=torch.float32)
    fc = count_flops_by_child(net, x)
    net = net.to(dtype=dtype)

    total_lat = None
    part_lat: dict[int, LatencyStats] = {}
    if latency:
        stage(f"timing end to end ({runs} runs, {threads} thread{'s' if threads > 1 else ''})")
        total_lat = time_module(net, x, device=device, dtype=dtype, threads=threads,
                                protocol=TimingProtocol(runs=runs, warmup_s=warmup_s))
        stage(f"timing each part ({runs} runs)")
        with torch.no_grad():
            part_lat = measure_child_latency(net, x.to(dtype), threads=threads, runs=runs, warmup_s=warmup_s)
    part_sum = sum(s.median_ms for s in part_lat.values())
    layers = []
    for i, (child_name, child) in enumerate(children):
        macs, lat, out = fc.by_row.get(i, 0), part_lat.get(i), out_shapes.get(i)
        layers.append(LayerProfile(
            index=i, from_=None, repeats=1, module=_part_name(child_name, child), args=(),
            params=sum(p.numel() for p in child.parameters()), macs=macs, out_shape=out,
            stride=shape[-1] / out[-1] if out is not None and len(out) == len(shape) == 4 and out[-1] else None,
            latency=lat, share=(lat.median_ms / part_sum if lat is not None and part_sum > 0 else None),
            macs_share=macs / fc.macs if fc.macs else 0.0, uncounted=fc.uncounted_by_row.get(i, {})))
    return ModelProfile(
        name=name, scale=None, source=f"<{name}>", imgsz=shape[-1], batch=shape[0], device=str(device),
        dtype=str(dtype).replace("torch.", ""), deploy=deploy, params=sum(p.numel() for p in net.parameters()),
        macs=fc.macs, n_modules=len(list(net.modules())), latency=total_lat, threads=threads,
        loadavg=total_lat.loadavg if total_lat is not None else loadavg(), memory=memory,
        uncounted_ops=fc.uncounted, by_operator=fc.by_operator, cross_check=None, layers=tuple(layers),
        cores=usable_cores(), input_shape=shape,
        latency_warnings=latency_warnings(total_lat, dtype=dtype) if total_lat is not None else ())


def _forward_shapes(net: nn.Module, x: torch.Tensor, name: str) -> tuple[RowProbe, dict[int, tuple[int, ...]]]:
    """One forward pass: the largest op (zoo.plan.run_probe, the memory estimate) and each child's output shape."""
    shapes: dict[int, tuple[int, ...]] = {}

    def hook(i: int) -> Any:
        def record(_m: nn.Module, _inp: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                shapes[i] = tuple(int(d) for d in out.shape)
        return record

    handles = [child.register_forward_hook(hook(i)) for i, child in enumerate(net.children())]
    try:
        probe = run_probe(net, x)
    except RowProbeError as e:
        raise ConfigError(f"<{name}>", f"input_shape={tuple(x.shape)}: {e}") from None
    finally:
        for h in handles:
            h.remove()
    return probe, shapes


def _part_name(name: str, child: nn.Module) -> str:
    """`Conv2d` for an nn.Sequential's numbered child, `backbone: Sequential` for a named one."""
    kind = type(child).__name__
    return kind if name.isdigit() else f"{name}: {kind}"


def _ratio(backend: str, method: str, rows: str, total: LatencyStats,
           row_lat: Mapping[int, LatencyStats]) -> RowLatency:
    """The stated relation of measured rows to a measured total: total = (total / row sum) * row sum."""
    row_sum = math.fsum(s.median_ms for s in row_lat.values())
    return RowLatency(backend, method, rows, row_sum, total.median_ms / row_sum if row_sum > 0 else 1.0, 0.0,
                      "ratio")


def _backend_latency(net: ZooModel, source: str, backend: Any, *, imgsz: int, batch: int, device: str,
                     dtype: torch.dtype, threads: int, runs: int, warmup_s: float,
                     stage: Stage) -> tuple[LatencyStats, dict[int, LatencyStats], RowLatency]:
    """The whole graph and each row alone (its own graph, its real inputs) on a backend other than eager:
    a name (made with threads, device, dtype) or a backend object (its own settings)."""
    from .backends import get_backend
    from .backends.base import model_timer
    from .rowtiming import time_rows

    if isinstance(backend, str):
        try:
            backend = get_backend(backend, threads=threads, device=device, dtype=dtype)
        except ValueError as e:
            raise ConfigError(source, str(e)) from None
    name = backend.name
    protocol = TimingProtocol(runs=runs, warmup_runs=5, warmup_s=warmup_s)
    stage(f"timing end to end on {name} ({runs} runs, {threads} thread{'s' if threads > 1 else ''})")
    try:
        total = model_timer(backend, net, (batch, net.config.ch, imgsz, imgsz))(protocol)
    except ConfigError as e:
        raise ConfigError(source, f"the whole model on {name}: {e.text}") from None
    stage(f"timing each row alone on {name} ({runs} runs)")
    rows = {t.index: t.latency for t in time_rows(backend, net, imgsz=imgsz, batch=batch, protocol=protocol)}
    return total, rows, _ratio(name, "measured", "alone", total, rows)


def _lut_latency(table: Any, plan: ModelPlan, *, deploy: bool, threads: int,
                 device: str) -> tuple[LatencyStats, dict[int, LatencyStats], RowLatency]:
    """Each row's table entry and the calibrated total (profiles.lut.predict_plan)."""
    from .lut import predict_plan

    table.check_form("deploy" if deploy else "train")
    pred = predict_plan(table, plan, measure=table.writable)
    rows = {}
    for ref, _ms in pred.rows:
        e = table.entries[ref.key]
        rows[ref.row] = LatencyStats(median_ms=e.median_ms, p90_ms=e.p90_ms, mean_ms=e.mean_ms, cv=e.cv, runs=e.runs,
                                     warmup_runs=e.warmup_runs, threads=threads, device=device, loadavg=None)
    cal, k = pred.calibration, pred.anchor
    p90 = table.total_ms(math.fsum(table.entries[ref.key].p90_ms for ref, _ in pred.rows))
    total = LatencyStats(median_ms=pred.total_ms, p90_ms=max(p90, pred.total_ms), mean_ms=pred.total_ms, cv=0.0,
                         runs=0, warmup_runs=0, threads=threads, device=device, loadavg=None)
    how = RowLatency(table.fingerprint.backend, "predicted", "latency table", pred.row_sum_ms, cal.a * k, cal.b * k,
                     cal.method, str(table.path), None if table.anchor is None else table.anchor.at)
    return total, rows, how


def _model_of(source: Any, scale: str | None, nc: int | None, imgsz: int) -> ZooModel:
    if isinstance(source, ZooModel):
        if scale is not None or nc is not None:
            raise ConfigError(source.config.path, "scale/nc apply to configs, not to an already built model")
        return source
    return build_checked(source, imgsz=imgsz, scale=scale, nc=nc)


def build_checked(source: Config | str | Path | Mapping[str, Any], *, imgsz: int = DEFAULT_IMGSZ,
                  scale: str | None = None, nc: int | None = None,
                  device: str | torch.device | None = None) -> ZooModel:
    """A config built at `imgsz` and refused wherever `zoo profile` refuses it: an `imgsz` that is not a
    multiple of the max stride names the sizes that work, a row that cannot take the size names the row.
    `device="meta"` allocates no weights (`zoo validate`: the same checks without the cost), and is
    refused where a real build would be: over the allocation limit (weights and one image's activations)."""
    cfg = load_config(source, scale=scale, nc=nc)
    try:
        model = build_model(cfg, imgsz=imgsz, device=device)
    except ConfigError as e:
        if imgsz != DEFAULT_IMGSZ:  # a size the graph cannot take: name the sizes it can, if that is the reason
            try:
                at_default = build_model(cfg, device="meta")
            except ConfigError:
                raise e from None
            check_stride_multiple(at_default, cfg.path, imgsz)
        raise
    check_stride_multiple(model, cfg.path, imgsz)
    if model.plan is not None and torch.device(device or "cpu").type == "meta":
        check_plan_allocation(model.plan)  # a real build checks it before allocating (zoo.builder)
    return model


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
    if isinstance(source, nn.Module):
        return f"<{type(source).__name__}>"
    return str(source) if isinstance(source, (str, Path)) else "<dict>"


def check_stride_multiple(model: ZooModel, source: str, imgsz: int) -> None:
    """`imgsz` a multiple of the model's largest stride, as profile, validate and search require (OptionError
    naming imgsz= or --imgsz, with the nearest size that works)."""
    s = max_stride(model)
    if imgsz % s:
        up = max(s, -(-imgsz // s) * s)
        raise OptionError(source, "imgsz", imgsz, f"is not a positive multiple of the model's max stride {s} "
                                                  f"(try {up})")
