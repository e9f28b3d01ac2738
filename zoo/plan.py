"""The row plan: every row of a config resolved at the real image size, without building the model.

One RowPlan per row: the constructor call its registration's rule resolves, the input and output
ShapeSpecs at the real image size, and a hashable RowSignature that names everything the row's module
and its output depend on. A row's spatial effect is learnt once per signature by a meta-device probe of
that row alone (no weights, no arithmetic) and cached for the process. The builder instantiates a plan,
the profiler reads shapes and memory from it, the search plans candidates with per-row width multiples
and repeats; so channels and shapes have this one source.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from .activation import Activation, activation_scope
from .config import MAX_REPEATS, config_to_mapping, load_config
from .limits import MAX_TOTAL_REPEATS
from .norms import NormSettings, norm_scope
from .errors import ConfigError
from .registry import REGISTRY, ModuleSpec, class_signature
from .rules import BuiltRow, Resolved, RowContext, RuleError, ShapeSpec
from .schema import Config, Row

DTYPE = "float32"  # plans describe float32 models; shapes do not depend on the dtype


class FrozenList(tuple):
    """A list argument inside a signature: hashable, and given back to constructors as a list."""

    __slots__ = ()


def freeze(value: Any) -> Any:
    """Arguments -> a hashable equivalent (lists become FrozenList, dicts sorted item tuples)."""
    if isinstance(value, list):
        return FrozenList(freeze(v) for v in value)
    if isinstance(value, tuple) and not isinstance(value, FrozenList):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    return value


def thaw(value: Any) -> Any:
    if isinstance(value, FrozenList):
        return [thaw(v) for v in value]
    if isinstance(value, tuple):
        return tuple(thaw(v) for v in value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # an Activation ("nn.ReLU()") or another literal-like object


InputShape = tuple[int | None, int, int]  # (channels, height, width) of one input, batch 1


@dataclass(frozen=True)
class RowSignature:
    """Everything a row's module and its output depend on: equal signatures, equal rows.

    `copies` is the number of chained copies (repeat "chain"); `multi` says the row reads a list;
    `activation` is the config's default activation (Conv's SiLU unless `activation:`); `norm` the
    BatchNorm settings its family builds the config with (None: the default, zoo.norms).
    """

    family: str
    module: str
    impl: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    copies: int
    inputs: tuple[InputShape, ...]
    multi: bool
    activation: Activation | None = None
    dtype: str = DTYPE
    norm: NormSettings | None = None

    def key(self) -> str:
        """A stable text form (the same in every process): cache and table files key on it."""
        parts = [self.family, self.module, self.impl, _jsonable(self.args), _jsonable(self.kwargs), self.copies,
                 _jsonable(self.inputs), self.multi, None if self.activation is None else str(self.activation),
                 self.dtype]
        if self.norm is not None:  # appended only when set: keys of existing tables stay as they were
            parts.append([self.norm.eps, self.norm.momentum])
        return json.dumps(parts, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha1(self.key().encode()).hexdigest()[:20]

    @property
    def call_args(self) -> tuple[Any, ...]:
        return thaw(self.args)

    @property
    def call_kwargs(self) -> dict[str, Any]:
        return {k: thaw(v) for k, v in self.kwargs}


@dataclass(frozen=True)
class RowProbe:
    """What one meta-device forward of a row alone shows: its output and its largest single op."""

    out_shape: tuple[int, ...] | None  # a tensor output's shape (batch 1); None for a head's tuple
    out_numel: int  # elements of every output tensor (nested outputs summed)
    peak_numel: int  # largest leaf module's input + output elements (the memory estimate's inner peak)
    params: int | None = None  # parameters of the row's module (None: a prober that did not count them)


@dataclass(frozen=True)
class RowPlan:
    row: Row
    spec: ModuleSpec
    n: int  # repeats after the depth multiple (or the search's choice)
    args: tuple[Any, ...]  # resolved constructor args
    kwargs: Mapping[str, Any]
    inputs: tuple[ShapeSpec, ...]
    out: ShapeSpec
    signature: RowSignature
    probe: RowProbe
    width_mult: float = 1.0
    channel_values: tuple[tuple[int, int], ...] = ()  # (YAML position, resolved channels) of declared channels

    @property
    def index(self) -> int:
        return self.row.index

    @property
    def section(self) -> str:
        return self.row.section

    @property
    def out_channels(self) -> int | None:
        return self.out.channels

    @property
    def stride(self) -> float | None:
        return self.out.stride if self.out.channels is not None else None

    @property
    def out_shape(self) -> tuple[int, ...] | None:
        return self.probe.out_shape

    @property
    def copies(self) -> int:
        return self.signature.copies


@dataclass(frozen=True)
class ModelPlan:
    """A config's rows at one image size (batch 1); `save` are the rows read again later."""

    config: Config
    imgsz: int
    rows: tuple[RowPlan, ...]
    save: frozenset[int] = field(default=frozenset())

    @property
    def image_numel(self) -> int:
        return self.config.ch * self.imgsz * self.imgsz


def activation_peak(plan: ModelPlan) -> tuple[int, int | None]:
    """(elements alive at the peak of one inference pass, batch 1; the row where it peaks).

    The rows are walked in order: at each row, what is alive is the input image, the older row outputs
    the routing keeps for later rows, the previous row's output, and inside the row the larger of its
    input plus output and its largest single op's input plus output (learnt by the row's probe).
    Temporaries below module level are not seen, so it is a lower bound of an allocator's peak.
    """
    image = plan.image_numel
    kept = 0
    prev_row, prev_numel = -1, 0
    peak, peak_row = 0, None
    outs: dict[int, int] = {}
    for rp in plan.rows:
        i = rp.index
        inp = sum(image if s < 0 else outs[s] for s in rp.row.sources)
        out = rp.probe.out_numel
        prev_alive = prev_numel if prev_row not in plan.save else 0
        row_peak = image + kept + prev_alive + max(rp.probe.peak_numel, inp + out)
        if row_peak > peak:
            peak, peak_row = row_peak, i
        outs[i] = out
        if i in plan.save:
            kept += out
        prev_row, prev_numel = i, out
    return peak, peak_row


def param_count(plan: ModelPlan) -> int:
    """Parameters of the planned model, from the rows' probes (a row whose prober did not count them is
    built once on the meta device: no weights are allocated)."""
    total = 0
    for rp in plan.rows:
        n = rp.probe.params
        if n is None:
            module, _ = instantiate_row(rp.signature, device="meta")
            n = sum(p.numel() for p in module.parameters())
        total += n
    return total


Prober = Callable[[RowSignature], RowProbe]


class RowProbeError(Exception):
    """A row's module cannot be built or run at its input shapes; the planner adds file and row."""


@dataclass(frozen=True)
class RowOverride:
    """What a candidate changes in one row: its width multiple (on top of the scale), its repeats (after
    the depth multiple), its block (an interchangeable registered name) and YAML arguments by position
    (a kernel size, an expansion ratio). The row is rewritten before it is planned, so an explicit
    config of the plan carries every change."""

    width: float = 1.0
    repeats: int | None = None
    module: str | None = None
    args: tuple[tuple[int, Any], ...] = ()  # (YAML position, value); later entries win

    def changed(self, **changes: Any) -> RowOverride:
        """This override with some fields replaced; `args` pairs are merged by position."""
        if "args" in changes:
            merged = dict(self.args)
            merged.update(changes["args"])
            changes["args"] = tuple(sorted(merged.items()))
        return replace(self, **changes)


NO_OVERRIDE = RowOverride()


@dataclass(frozen=True)
class _Planning:
    """What every row of one plan shares (the config, its family's rules, the image, the prober)."""

    cfg: Config
    image: ShapeSpec
    scale_repeats: Callable[[int, float], int]
    unscaled: frozenset[int]
    scaler: Any
    probe: Prober
    imgsz: int
    norm: NormSettings | None = None  # the family's batch-norm settings for this config (None: its default)


def plan_config(source: Any, *, imgsz: int = 640, widths: Mapping[int, float] | None = None,
                repeats: Mapping[int, int] | None = None, overrides: Mapping[int, RowOverride] | None = None,
                prober: Prober | None = None, scale: str | None = None, nc: int | None = None) -> ModelPlan:
    """Plan every row of a config (name, path, mapping or Config) at `imgsz` x `imgsz`.

    `overrides` (row -> RowOverride) is how the search describes a candidate; `widths` (row -> width
    multiple) and `repeats` (row -> repeats) are shorthands merged into it; `prober` learns a row's output.
    """
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 1:
        raise ConfigError(None, f"imgsz must be a positive integer, got {imgsz!r}")
    cfg = load_config(source, scale=scale, nc=nc)
    family = REGISTRY.family(cfg.family)
    merged = dict(overrides or {})
    for r, w in (widths or {}).items():
        merged[r] = merged.get(r, NO_OVERRIDE).changed(width=w)
    for r, n in (repeats or {}).items():
        merged[r] = merged.get(r, NO_OVERRIDE).changed(repeats=n)
    pc = _Planning(cfg, ShapeSpec(cfg.ch, 1.0, imgsz, imgsz), family.repeats, family.unscaled(cfg.nc, cfg.anchors),
                   family.channels, prober if prober is not None else probe_row, imgsz,
                   family.norm(cfg))
    rows: list[RowPlan] = []
    built: list[BuiltRow] = []
    total = 0
    for row in cfg.rows:
        rp = _plan_row(pc, row, merged.get(row.index, NO_OVERRIDE), rows, built, MAX_TOTAL_REPEATS - total)
        total += rp.n
        rows.append(rp)
        built.append(BuiltRow(row.index, rp.row.module, rp.args, rp.out))
    save = frozenset(s for rp in rows for s in rp.row.sources if 0 <= s < rp.row.index - 1)
    return ModelPlan(cfg, imgsz, tuple(rows), save)


def yaml_default(spec: ModuleSpec, pos: int) -> Any:
    """The constructor default a block gives YAML argument `pos` when a row leaves it out: known for the
    out_arg rule (c1 first, n third for repeat-inside blocks); KeyError for any other rule or no default."""
    if spec.io != "out_arg":
        raise KeyError(f"{spec.name}'s rule does not say which constructor argument YAML position {pos} is")
    index = pos + 1 + (1 if spec.repeat == "inside" and pos >= 1 else 0)
    params = [p for p in spec.signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if index >= len(params) or params[index].default is params[index].empty:
        raise KeyError(f"{spec.name} has no default for YAML argument {pos}")
    return params[index].default


def rewritten_row(row: Row, o: RowOverride, spec: ModuleSpec) -> Row:
    """The row as a candidate writes it: another block name, arguments set by position (the positions
    a short row leaves out before them filled with the block's defaults)."""
    if o.module is None and not o.args:
        return row
    args, raw = list(row.args), list(row.raw_args)
    for pos, value in o.args:
        while len(args) < pos:
            default = yaml_default(spec, len(args))
            args.append(default)
            raw.append(default)
        if pos == len(args):
            args.append(value)
            raw.append(value)
        else:
            args[pos], raw[pos] = value, value
    return replace(row, module=o.module or row.module, args=tuple(args), raw_args=tuple(raw))


def _plan_row(pc: _Planning, row: Row, o: RowOverride, rows: list[RowPlan], built: list[BuiltRow],
              left: int) -> RowPlan:
    cfg = pc.cfg

    def err(text: str) -> ConfigError:
        return ConfigError(cfg.path, text, row=row.index, module=row.module, line=row.line)

    try:
        spec = REGISTRY.lookup(o.module or row.module, cfg.family)
        row = rewritten_row(row, o, spec)
    except KeyError as e:
        raise err(e.args[0]) from None
    inputs = tuple(pc.image if s < 0 else rows[s].out for s in row.sources)
    n = o.repeats if o.repeats is not None else pc.scale_repeats(row.repeats, cfg.scale.depth)
    if n > MAX_REPEATS:
        raise err(f"{row.repeats} repeats x depth {cfg.scale.depth} = {n} exceeds {MAX_REPEATS}")
    if n > left:
        raise err(f"its {n} repeats bring the model to {MAX_TOTAL_REPEATS - left + n} blocks (repeats summed over "
                  f"the rows), over the {MAX_TOTAL_REPEATS} a model may have")
    ctx = RowContext(row=row, inputs=inputs, scale=cfg.scale, nc=cfg.nc, family=cfg.family, anchors=cfg.anchors,
                     n=n, built=tuple(built), repeat=spec.repeat, unscaled=pc.unscaled, width_mult=o.width,
                     scaler=pc.scaler, keys=cfg.extra)
    try:
        resolved = spec.rule(ctx)
        channel_values = tuple((p, ctx.channels(row.args[p])) for p in spec.channels
                               if p < len(row.args) and isinstance(row.args[p], int)
                               and not isinstance(row.args[p], bool))
    except RuleError as e:
        raise err(str(e)) from None
    _check_arity(spec, resolved, err)
    if any(s.channels is None for s in inputs) and resolved.out_channels is not None:
        raise err("it reads a detection head's output")
    sig = RowSignature(
        family=spec.family, module=spec.name, impl=spec.impl, args=freeze(tuple(resolved.args)),
        kwargs=tuple(sorted((k, freeze(v)) for k, v in resolved.kwargs.items())),
        copies=n if spec.repeat == "chain" else 1,
        inputs=tuple((s.channels, s.height, s.width) for s in inputs), multi=not isinstance(row.from_, int),
        activation=cfg.activation, norm=pc.norm)
    try:
        pr = pc.probe(sig)
    except RowProbeError as e:
        raise err(str(e)) from None
    except Exception as e:  # noqa: BLE001  a prober's own failure (a count, a fold): this row's, with its reason
        raise err(f"cannot probe {spec.name}{short_args(resolved.args)}: {first_line(e)}") from None
    out = _out_spec(pr, pc.imgsz, err)
    if resolved.out_channels is not None and out.channels != resolved.out_channels:
        raise err(f"declares {resolved.out_channels} output channels but produces {out.channels} "
                  f"(its registration's rule is wrong)")
    return RowPlan(row, spec, n, tuple(resolved.args), dict(resolved.kwargs), inputs, out, sig, pr, o.width,
                   channel_values)


def _out_spec(pr: RowProbe, imgsz: int, err: Callable[[str], ConfigError]) -> ShapeSpec:
    shape = pr.out_shape
    if shape is not None and len(shape) == 4:
        h, w = shape[-2:]
        if h == 0 or w == 0:
            raise err("output has zero size: too many downsamplings for this image size")
        return ShapeSpec(int(shape[1]), imgsz / h, int(h), int(w))
    return ShapeSpec(None, 0.0)


@functools.lru_cache(maxsize=4096)
def _binds(cls: type, n_args: int, kwargs: tuple[str, ...]) -> bool:
    """Whether n positional and these keyword arguments fit the constructor (counts and names only)."""
    try:
        class_signature(cls).bind(*range(n_args), **dict.fromkeys(kwargs))
    except TypeError:
        return False
    return True


def _check_arity(spec: ModuleSpec, resolved: Resolved, err: Callable[[str], ConfigError]) -> None:
    if not _binds(spec.cls, len(resolved.args), tuple(sorted(resolved.kwargs))):
        params = [p.name for p in spec.signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p.name for p in spec.signature.parameters.values()
                    if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise err(f"wrong number of arguments: {spec.name}({', '.join(params)}) takes "
                  f"{len(required)}..{len(params)}, the row gives {len(resolved.args)} after channel "
                  f"resolution {short_args(resolved.args)}")


def explicit_config(plan: ModelPlan) -> dict[str, Any]:
    """The planned model as plain config data with explicit channels and repeats (multiples 1.0, the
    scale keys as its family's reference code reads them): it rebuilds to the same rows."""
    cfg = plan.config
    rows = []
    for rp in plan.rows:
        args = list(rp.row.raw_args)
        for pos, value in rp.channel_values:
            args[pos] = value
        frm = rp.row.from_ if isinstance(rp.row.from_, int) else list(rp.row.from_)
        rows.append([frm, rp.n, rp.row.module, args])
    widest = max((v for rp in plan.rows for _, v in rp.channel_values), default=0)
    data: dict[str, Any] = {"nc": cfg.nc, "family": cfg.family,
                            **REGISTRY.family(cfg.family).explicit_scale(cfg, widest)}
    nb = len(cfg.backbone)
    explicit = {"backbone": rows[:nb], "head": rows[nb:]}
    for key, value in config_to_mapping(cfg).items():  # anchors, activation, ch, search, extra keys
        if key not in data and key not in ("scales", "depth_multiple", "width_multiple"):
            data[key] = explicit.get(key, value)
    return data


# -- instantiating and probing one row ---------------------------------------------------------------

def row_spec(sig: RowSignature) -> ModuleSpec:
    spec = REGISTRY.lookup(sig.module, sig.family)
    if spec.impl != sig.impl:
        raise RowProbeError(f"{sig.module} is now registered by {spec.impl}, not {sig.impl}")
    return spec


def construct(spec: ModuleSpec, args: tuple[Any, ...], kwargs: Mapping[str, Any], copies: int) -> nn.Module:
    """The row's module in eval mode, on the current default device and under the activation scope in
    force (a whole model's build shares one, as YOLOv5 shares one SiLU): one block or `copies` chained."""
    try:
        blocks = [spec.cls(*args, **kwargs) for _ in range(copies)]
    except Exception as e:  # a user's or our module rejected its arguments: report, never hide
        raise RowProbeError(f"cannot build {spec.name}{short_args(args)}: {first_line(e)}") from None
    module = blocks[0] if copies == 1 else nn.Sequential(*blocks)
    return module.eval()


def example_inputs(sig: RowSignature, *, batch: int = 1, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float32) -> Any:
    """Zeros shaped like the row's inputs (a list when the row reads a list)."""
    feed = []
    for c, h, w in sig.inputs:
        if c is None:
            raise RowProbeError("it reads a detection head's output, which has no shape")
        feed.append(torch.zeros(batch, c, h, w, device=device, dtype=dtype))
    return feed if sig.multi else feed[0]


def instantiate_row(sig: RowSignature, *, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> tuple[nn.Module, Any]:
    """The row's module alone (eval mode, weights on `device`) and zero inputs of its real shapes:
    exactly what ZooModel calls for that row."""
    spec = row_spec(sig)
    with torch.device(device), activation_scope(sig.activation), norm_scope(sig.norm):
        module = construct(spec, sig.call_args, sig.call_kwargs, sig.copies)
    return module.to(dtype=dtype), example_inputs(sig, device=device, dtype=dtype)


def numel(value: Any) -> int:
    """Elements of a tensor or of the tensors nested in lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(numel(v) for v in value)
    return 0


def check_conv_arguments(module: nn.Module) -> None:
    """The argument checks torch's CPU and CUDA convolutions make and its meta kernels skip: a probe on the
    meta device would pass a kernel or dilation of 0 that every real run rejects (RowProbeError)."""
    for name, m in module.named_modules():
        if not isinstance(m, nn.modules.conv._ConvNd):
            continue
        where = f"{type(m).__name__}{f' {name}' if name else ''}"
        for attr in ("kernel_size", "stride", "dilation"):
            values = tuple(getattr(m, attr))
            if any(isinstance(v, bool) or not isinstance(v, int) for v in values):  # e.g. a YAML null
                raise RowProbeError(f"{where}: {attr} {_dims(values)} must be an integer")
            if any(v <= 0 for v in values):
                raise RowProbeError(f"{where}: {attr} {_dims(values)} must be positive")
        if not isinstance(m.padding, str):
            if any(isinstance(p, bool) or not isinstance(p, int) for p in m.padding):
                raise RowProbeError(f"{where}: padding {_dims(tuple(m.padding))} must be an integer")
            if any(p < 0 for p in m.padding):
                raise RowProbeError(f"{where}: padding {_dims(tuple(m.padding))} must not be negative")
        if m.transposed and any(op >= max(s, d) for op, s, d in zip(m.output_padding, m.stride, m.dilation)):
            raise RowProbeError(f"{where}: output_padding {_dims(tuple(m.output_padding))} must be smaller than "
                                f"the stride or the dilation")


def _dims(values: tuple[Any, ...]) -> str:
    shown = [str(v) for v in values]  # str, not set(values): a nested list from the YAML is unhashable
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def checked_forward(module: nn.Module, feed: Any, forward: Callable[[], Any] | None = None) -> Any:
    """One meta-device forward of a row's module with the argument checks its meta kernels skip: the one
    probe the plan and the row costs share, so both refuse exactly the same rows (RowProbeError, with the
    reason). `forward` runs the pass (default `module(feed)` under no_grad)."""
    check_conv_arguments(module)
    try:
        if forward is not None:
            return forward()
        with torch.no_grad():
            return module(feed)
    except RowProbeError:
        raise
    except Exception as e:  # shapes that do not fit: report the row and torch's reason
        raise RowProbeError(f"forward pass failed with inputs {shapes_text(feed)}: {first_line(e)}") from None


def run_probe(module: nn.Module, feed: Any) -> RowProbe:
    """One forward of a row's module, recording its output and its largest leaf op's input + output."""
    peak = [0]

    def leaf_hook(_m: nn.Module, inp: Any, out: Any) -> None:
        peak[0] = max(peak[0], numel(inp) + numel(out))

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(leaf_hook) for m in leaves]
    try:
        out = checked_forward(module, feed)
    finally:
        for h in handles:
            h.remove()
    shape = tuple(int(d) for d in out.shape) if isinstance(out, torch.Tensor) else None
    return RowProbe(shape, numel(out), max(peak[0], numel(feed) + numel(out)),
                    sum(p.numel() for p in module.parameters()))


def _same_shape(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def shape_only_norms(module: nn.Module) -> nn.Module:
    """A meta module whose batch norms skip their meta kernels (Python decompositions, milliseconds each):
    their output has their input's shape, so what a probe learns is unchanged, and a row of a thousand
    blocks is probed in a fraction of the time."""
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            m.forward = _same_shape  # type: ignore[method-assign]  # this instance only (a probe's own copy)
    return module


class ProbeCache:
    """Row probes by signature (bounded, least recently used out first): a row is probed once."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self._items: OrderedDict[RowSignature, RowProbe] = OrderedDict()

    def __call__(self, sig: RowSignature) -> RowProbe:
        hit = self._items.get(sig)
        if hit is not None:
            self._items.move_to_end(sig)
            return hit
        module, feed = instantiate_row(sig, device="meta")
        pr = run_probe(shape_only_norms(module), feed)
        self._items[sig] = pr
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return pr

    def put(self, sig: RowSignature, pr: RowProbe) -> None:
        self._items[sig] = pr

    def __len__(self) -> int:
        return len(self._items)


probe_row = ProbeCache()  # the process's default prober (meta device); a cache, like functools.lru_cache


# -- text helpers for errors -------------------------------------------------------------------------

def shapes_text(feed: Any) -> str:
    items = feed if isinstance(feed, list) else [feed]
    return ", ".join(str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__ for t in items)


def short_args(args: Iterable[Any]) -> str:
    text = repr(list(args))
    return text if len(text) <= 80 else text[:77] + "...]"


def first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")


__all__ = ["activation_peak", "explicit_config", "param_count", "ModelPlan", "ProbeCache", "RowOverride", "RowPlan", "RowProbe", "RowProbeError", "RowSignature",
           "checked_forward", "construct", "rewritten_row", "yaml_default",
           "example_inputs", "instantiate_row", "plan_config", "probe_row", "run_probe"]
