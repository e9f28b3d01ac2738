"""The built model: rows in `model` (keys `model.{i}...` as YOLOv5's), routed by `from` index."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .plan import ModelPlan, RowSignature
from .rules import ShapeSpec
from .schema import Config


@dataclass(frozen=True)
class LayerInfo:
    """What profiles and search read of a built row."""

    index: int
    from_: int | tuple[int, ...]
    sources: tuple[int, ...]
    repeats: int
    module: str
    family: str
    args: tuple[Any, ...]
    in_channels: tuple[int | None, ...]
    out_channels: int | None
    stride: float | None
    out_shape: tuple[int, ...] | None  # batch 1, at the image size the model was planned at
    section: str
    inputs: tuple[ShapeSpec, ...] = ()
    out: ShapeSpec | None = None
    signature: RowSignature | None = None

    @property
    def multi_input(self) -> bool:
        return not isinstance(self.from_, int)


class ZooModel(nn.Module):
    """A detector (or backbone) built from a config. Forward keeps only outputs later rows read."""

    def __init__(self, config: Config, modules: list[nn.Module], layers: tuple[LayerInfo, ...],
                 plan: ModelPlan | None = None) -> None:
        super().__init__()
        self.model = nn.Sequential(*modules)
        self.config = config
        self.layers = layers
        self.plan = plan  # the row plan it was built from (shapes at plan.imgsz)
        # the previous row's output is always at hand; keep only the older ones that are read later
        self.save = frozenset(s for info in layers for s in info.sources if 0 <= s < info.index - 1)
        self.stride = torch.tensor(output_strides(layers))

    def forward(self, x: torch.Tensor) -> Any:
        return self.run(x)

    def run(self, x: torch.Tensor, hook: Any = None) -> Any:
        """Route through the rows; `hook(i, module, inputs)` may wrap each call (profiling)."""
        image = x
        outputs: list[Any] = []
        prev: Any = x
        # YOLO-World: a row with `gives_text` (ImagePoolingAttn) refines the text embeddings that later rows
        # with `takes_text` read instead of their own constant; rows run alone use their constant.
        text: torch.Tensor | None = None
        for info, module in zip(self.layers, self.model):
            if info.multi_input:
                inp: Any = [image if s < 0 else (prev if s == info.index - 1 else outputs[s])
                            for s in info.sources]
            else:
                s = info.sources[0]
                inp = image if s < 0 else (prev if s == info.index - 1 else outputs[s])
            if hook is not None:
                prev = hook(info.index, module, inp)
            elif text is not None and getattr(module, "takes_text", False):
                prev = module(inp, text)
            else:
                prev = module(inp)
            if getattr(module, "gives_text", False):
                text = prev
            outputs.append(prev if info.index in self.save else None)
        return prev

    @property
    def nc(self) -> int:
        return self.config.nc


def output_strides(layers: tuple[LayerInfo, ...]) -> list[float]:
    """Strides of the model's outputs: a head's input levels, else the last row's own."""
    last = layers[-1]
    if last.out_channels is not None:
        return [last.stride or 1.0]
    return [layers[s].stride or 0.0 for s in last.sources if s >= 0]
