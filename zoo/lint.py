"""Shape lint: warnings (never errors) for configs that silently do something other than they seem to.

Checks are data-driven, not per-module branches:
- shortcut: a row asks for a residual shortcut (its constructor's `shortcut` argument is true, given or
  by default) and a block inside it dropped the add because its input and output widths differ. Blocks
  say whether they add through a boolean `add` attribute (YOLOv5's and Ultralytics' convention, which our
  blocks follow); widths are read from one forward pass of that row alone on its probe-size input.
- anchor strides: an anchor-based head (a module holding an `anchors` table per level) reads levels at
  strides other than the ones the anchors are written for; YOLOv5 writes anchor level i for stride
  8 * 2**i (P3/8 first), which `ANCHOR_BASE_STRIDE` states once.
A row the shortcut check cannot examine (its arguments do not fit its constructor, or its probe forward
fails) gets a "not checked" warning with the reason instead of passing in silence.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .graph import LayerInfo, ZooModel
from .plan import RowProbeError, example_inputs, first_line

ANCHOR_BASE_STRIDE = 8  # the stride YOLOv5's first anchor level is written for (P3/8)
SHORTCUT_ARG = "shortcut"
ADD_FLAG = "add"
# what a probe forward of one row can raise for a row lint cannot read: torch's shape and device errors
# (RuntimeError, NotImplementedError on meta), bad argument values (ValueError), a forward that does not
# take the row's input (TypeError) or a row reading a head (RowProbeError). Anything else is a bug in lint
# and propagates.
PROBE_ERRORS = (RuntimeError, ValueError, TypeError, RowProbeError)


@dataclass(frozen=True)
class LintWarning:
    row: int | None
    text: str
    code: str = ""  # "shortcut-disabled", "anchor-strides", "not-checked"

    def message(self, source: str) -> str:
        """The warning as `zoo validate` words it: where (`source: row N`), then what."""
        where = f"{source}: row {self.row}" if self.row is not None else source
        return f"{where}: {self.text}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "code": self.code, "text": self.text}


def lint_model(model: ZooModel) -> tuple[LintWarning, ...]:
    """All lint warnings of a built model, in row order."""
    warnings: list[LintWarning] = []
    for info, module in zip(model.layers, model.model):
        warnings.extend(_shortcut_warnings(info, module))
        warnings.extend(_anchor_warnings(model, info, module))
    return tuple(warnings)


# -- residual shortcuts ------------------------------------------------------------------------------

def _asks_for_shortcut(module: nn.Module, info: LayerInfo) -> bool:
    """True when the row's constructor call has a true `shortcut` argument (written or by default).

    Raises TypeError when the row's arguments do not bind to the constructor's signature."""
    block = module[0] if isinstance(module, nn.Sequential) and len(module) and info.repeats > 1 else module
    bound = inspect.signature(type(block)).bind(*info.args)
    bound.apply_defaults()
    return bool(bound.arguments.get(SHORTCUT_ARG, False))


def _shortcut_warnings(info: LayerInfo, module: nn.Module) -> list[LintWarning]:
    flagged = [(name, m) for name, m in module.named_modules() if getattr(m, ADD_FLAG, None) is False]
    if not flagged:
        return []
    try:
        if not _asks_for_shortcut(module, info):
            return []
    except TypeError as e:
        return [_not_checked(info, f"its arguments do not fit {type(module).__name__}'s signature", e)]
    try:
        widths = _block_widths(info, module, [m for _, m in flagged])
    except PROBE_ERRORS as e:
        return [_not_checked(info, "its probe forward failed", e)]
    out = []
    for name, m in flagged:
        c_in, c_out = widths.get(id(m), (None, None))
        if c_in is None or c_in == c_out:
            continue
        where = f" in {type(m).__name__} {name}" if name else ""
        out.append(LintWarning(info.index, f"{info.module}: residual shortcut disabled{where}: "
                               f"input has {c_in} channels, output {c_out} (shortcut=True has no effect)",
                               "shortcut-disabled"))
    return out


def _not_checked(info: LayerInfo, why: str, error: BaseException) -> LintWarning:
    return LintWarning(info.index, f"row {info.index} not checked: {info.module} has a block without its "
                       f"residual add and {why} ({first_line(error)})", "not-checked")


def _block_widths(info: LayerInfo, module: nn.Module, blocks: list[nn.Module]) -> dict[int, tuple[int, int]]:
    """Input/output channels of each block, from one forward pass of this row alone (raises PROBE_ERRORS)."""
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    widths: dict[int, tuple[int, int]] = {}

    def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and x.dim() == out.dim() == 4:
            widths[id(m)] = (int(x.shape[1]), int(out.shape[1]))

    handles = [b.register_forward_hook(hook) for b in blocks]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(example_inputs(info.signature, device=device, dtype=dtype))
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return widths


# -- anchor strides ----------------------------------------------------------------------------------

def _anchor_warnings(model: ZooModel, info: LayerInfo, module: nn.Module) -> list[LintWarning]:
    anchors = getattr(module, "anchors", None)
    if info.out_channels is not None or not isinstance(anchors, torch.Tensor) or anchors.dim() != 3:
        return []
    if not isinstance(model.config.anchors, list):  # an int: anchors are evolved for the data, any stride
        return []
    strides = [model.layers[s].stride for s in info.sources if s >= 0]
    if len(strides) != len(model.config.anchors) or any(s is None for s in strides):
        return []
    written = [ANCHOR_BASE_STRIDE * 2 ** i for i in range(len(strides))]
    if [float(s) for s in strides] == [float(w) for w in written]:
        return []
    return [LintWarning(info.index, f"{info.module} reads levels at strides {_strides(strides)} but its "
                        f"anchors are written for strides {_strides(written)} (P3/8 first): objects are "
                        f"assigned to coarser levels than the anchors assume", "anchor-strides")]


def _strides(values: list[Any]) -> str:
    return "/".join(str(int(v)) if float(v).is_integer() else f"{float(v):g}" for v in values)
