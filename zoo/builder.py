"""One loop from config rows to a ZooModel. No per-module branches: each registration's rule decides.

Each row is built, then run once on a small probe input so the next rules see real shapes
(channels, stride, size); `device="meta"` does the same without allocating weights (`zoo validate`).
"""
from __future__ import annotations

import contextlib
import inspect
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .activation import activation_scope
from .config import MAX_REPEATS, Config, Row, load_config
from .errors import ConfigError
from .graph import LayerInfo, ZooModel
from .registry import REGISTRY, ModuleSpec, ensure_builtin_modules
from .rules import BuiltRow, RowContext, RuleError, ShapeSpec, scale_repeats

PROBE_SIZE = 256  # as YOLOv5 computes strides: every level of a P7 model is still >= 2 px


def build_model(source: str | Path | Mapping[str, Any] | Config, *, scale: str | None = None,
                nc: int | None = None, device: str | torch.device | None = None,
                probe_size: int = PROBE_SIZE) -> ZooModel:
    """Build a detector from a built-in name, a YAML path, a mapping or a Config."""
    ensure_builtin_modules()
    cfg = load_config(source, scale=scale, nc=nc)
    dev = torch.device(device) if device is not None else None
    with activation_scope(cfg.activation), (dev if dev is not None else contextlib.nullcontext()), \
            torch.no_grad():
        image = torch.zeros(1, cfg.ch, probe_size, probe_size)
        image_shape = ShapeSpec(cfg.ch, 1.0, probe_size, probe_size)
        modules: list[nn.Module] = []
        layers: list[LayerInfo] = []
        built: list[BuiltRow] = []
        outputs: list[Any] = []
        for row in cfg.rows:
            module, info, out = _build_row(cfg, row, image, image_shape, outputs, layers, built)
            modules.append(module)
            layers.append(info)
            outputs.append(out)
            built.append(BuiltRow(row.index, row.module, info.args, _shape_of(out, probe_size, row, cfg)))
    model = ZooModel(cfg, modules, tuple(layers))
    return model


def _build_row(cfg: Config, row: Row, image: torch.Tensor, image_shape: ShapeSpec, outputs: list[Any],
               layers: list[LayerInfo], built: list[BuiltRow]) -> tuple[nn.Module, LayerInfo, Any]:
    def err(text: str) -> ConfigError:
        return ConfigError(cfg.path, text, row=row.index, module=row.module, line=row.line)

    try:
        spec = REGISTRY.lookup(row.module, cfg.family)
    except KeyError as e:
        raise err(e.args[0]) from None
    inputs = tuple(image_shape if s < 0 else built[s].out for s in row.sources)
    n = scale_repeats(row.repeats, cfg.scale.depth)
    if n > MAX_REPEATS:
        raise err(f"{row.repeats} repeats x depth {cfg.scale.depth} = {n} exceeds {MAX_REPEATS}")
    ctx = RowContext(row=row, inputs=inputs, scale=cfg.scale, nc=cfg.nc, family=cfg.family,
                     anchors=cfg.anchors, n=n, built=tuple(built))
    try:
        resolved = spec.rule(ctx)
    except RuleError as e:
        raise err(str(e)) from None
    _check_arity(spec, resolved.args, resolved.kwargs, err)
    copies = n if spec.repeat == "chain" else 1
    try:
        blocks = [spec.cls(*resolved.args, **resolved.kwargs) for _ in range(copies)]
    except Exception as e:  # a user's or our module rejected its arguments: report, never hide
        raise err(f"cannot build {spec.name}{_short_args(resolved.args)}: {_first_line(e)}") from None
    module = blocks[0] if copies == 1 else nn.Sequential(*blocks)
    module.eval()
    feed = [image if s < 0 else outputs[s] for s in row.sources]
    try:
        out = module(feed if not isinstance(row.from_, int) else feed[0])
    except Exception as e:  # shapes that do not fit: report the row and torch's reason
        raise err(f"forward pass failed with inputs {_shapes(feed)}: {_first_line(e)}") from None
    shape = _shape_of(out, image.shape[-1], row, cfg)
    if resolved.out_channels is not None and shape.channels != resolved.out_channels:
        raise err(f"declares {resolved.out_channels} output channels but produces {shape.channels} "
                  f"(its registration's rule is wrong)")
    info = LayerInfo(index=row.index, from_=row.from_, sources=row.sources, repeats=n, module=row.module,
                     family=spec.family, args=tuple(resolved.args), in_channels=tuple(s.channels for s in inputs),
                     out_channels=shape.channels, stride=shape.stride if shape.channels is not None else None,
                     out_shape=tuple(out.shape) if isinstance(out, torch.Tensor) else None,
                     section=row.section)
    return module, info, out


def _check_arity(spec: ModuleSpec, args: tuple[Any, ...], kwargs: Mapping[str, Any], err: Any) -> None:
    try:
        spec.signature.bind(*args, **kwargs)
    except TypeError:
        params = [p.name for p in spec.signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p.name for p in spec.signature.parameters.values()
                    if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise err(f"wrong number of arguments: {spec.name}({', '.join(params)}) takes "
                  f"{len(required)}..{len(params)}, the row gives {len(args)} after channel resolution "
                  f"{_short_args(args)}") from None


def _shape_of(out: Any, probe: int, row: Row, cfg: Config) -> ShapeSpec:
    if isinstance(out, torch.Tensor) and out.dim() == 4:
        h, w = out.shape[-2:]
        if h == 0 or w == 0:
            raise ConfigError(cfg.path, "output has zero size: too many downsamplings",
                              row=row.index, module=row.module, line=row.line)
        return ShapeSpec(int(out.shape[1]), probe / h, int(h), int(w))
    return ShapeSpec(None, 0.0)


def _shapes(feed: list[Any]) -> str:
    return ", ".join(str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__ for t in feed)


def _short_args(args: tuple[Any, ...]) -> str:
    text = repr(list(args))
    return text if len(text) <= 80 else text[:77] + "...]"


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def signature_text(spec: ModuleSpec) -> str:
    return str(inspect.signature(spec.cls))
