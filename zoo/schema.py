"""The data a config becomes: rows, the scale in force, the whole config. Plain frozen dataclasses.

Kept apart from the loader (config.py) so rules and the registry can name these types without
importing the loader, which itself asks the registry for the families.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .activation import Activation


@dataclass(frozen=True)
class Row:
    """One `[from, repeats, module, args]` row; `index` is global (backbone then head)."""

    index: int
    from_: int | tuple[int, ...]
    repeats: int
    module: str
    args: tuple[Any, ...]
    raw_args: tuple[Any, ...]
    section: str
    line: int | None = None

    @property
    def sources(self) -> tuple[int, ...]:
        """Absolute indices this row reads (-1 is the input image)."""
        froms = (self.from_,) if isinstance(self.from_, int) else self.from_
        return tuple(f if f >= 0 else self.index + f for f in froms)


@dataclass(frozen=True)
class Scale:
    """The multiples in force: depth, width and the channel cap (None: no cap).

    The cap is kept as written (an int or a float): Ultralytics compares `min(c2, max_channels)` with
    the YAML value itself, so a fractional cap such as 0.5 still yields 8 channels, never 0."""

    name: str | None
    depth: float
    width: float
    max_channels: int | float | None = None


@dataclass(frozen=True)
class Config:
    path: str
    name: str
    family: str
    nc: int
    scale: Scale
    backbone: tuple[Row, ...]
    head: tuple[Row, ...]
    anchors: Any = None
    activation: Activation | None = None
    scales: Mapping[str, tuple[float, ...]] | None = None
    search: Mapping[str, Any] | None = None
    ch: int = 3
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> tuple[Row, ...]:
        return self.backbone + self.head

    @property
    def backbone_only(self) -> bool:
        return not self.head
