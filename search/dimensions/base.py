"""A search dimension: one class that says which parameters it adds to a space, how a chosen value
rewrites a candidate, and which settings key it reads (checked, normalised and stored as plain data).

A candidate is one value (Candidate): its input size and per-row overrides (zoo.plan.RowOverride),
passed whole to the row plan. Dimensions are registered like objectives (`@register_dimension`); a space
is the list of their parameters (Knob) over a base config, applied in the dimensions' `order`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Mapping, Sequence

from zoo.config import Config
from zoo.plan import NO_OVERRIDE, ModelPlan, RowOverride
from zoo.registry import REGISTRY, ModuleSpec


@dataclass(frozen=True)
class Candidate:
    """One point of a space: its input size (None: the study's fixed size) and what it changes per row."""

    imgsz: int | None = None
    rows: Mapping[int, RowOverride] = field(default_factory=dict)

    def row(self, index: int) -> RowOverride:
        return self.rows.get(index, NO_OVERRIDE)

    def with_row(self, index: int, **changes: Any) -> Candidate:
        """This candidate with one row's override changed (RowOverride.changed: args merge by position)."""
        return replace(self, rows={**self.rows, index: self.row(index).changed(**changes)})


@dataclass(frozen=True)
class Uniform:
    """One uniform scaling: every stage at `width` (of the base), repeats by the `depth` multiple (None: the
    base's), at `imgsz` (None: the base size); `params` are its choice indices in the space."""

    depth: float | None
    width: float
    imgsz: int | None
    params: Mapping[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        size = f" {self.imgsz}px" if self.imgsz is not None else ""
        return f"uniform d{self.depth:g} w{self.width:g}{size}" if self.depth is not None else f"uniform w{self.width:g}{size}"


@dataclass(frozen=True)
class Knob:
    """One parameter of a space: a dimension's choices for some rows (a stage, one row) or for the image.
    Optuna's parameter is an index into `choices`; `base` is the base config's value."""

    dimension: str
    param: str  # Optuna's name, e.g. "w:backbone/8", "d:6", "imgsz", "k:3", "b:6"
    name: str  # what the face shows
    rows: tuple[int, ...]
    choices: tuple[Any, ...]
    base: Any

    @property
    def row(self) -> int:
        return self.rows[0]

    @property
    def choice_count(self) -> int:
        return len(self.choices)


@dataclass(frozen=True)
class SpaceBase:
    """What a dimension reads to make its knobs: the base config, its plan and the search settings."""

    config: Config
    plan: ModelPlan
    settings: Any  # search.settings.SearchSettings (not imported: settings import the dimensions)

    def setting(self, key: str) -> Any:
        return self.settings.value(key)

    def spec(self, row: int, module: str | None = None) -> ModuleSpec:
        return REGISTRY.lookup(module or self.config.rows[row].module, self.config.family)


class Dimension:
    """Subclass, set `name` (and `key` if a settings key configures it), and register it."""

    name: ClassVar[str]
    key: ClassVar[str | None] = None  # its key in a `search:` block / --space file
    order: ClassVar[int] = 50  # application order: a block choice before that block's kernel size
    describe_key: ClassVar[str] = ""  # one line for error messages: what the key takes

    def parse(self, value: Any) -> Any:
        """The settings value checked and normalised to plain JSON-safe data (ValueError: what is wrong).
        A study stores this value and export reads it back through the same method."""
        return value

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        raise NotImplementedError

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        raise NotImplementedError

    def base_index(self, knob: Knob) -> int:
        return nearest(knob.choices, knob.base)

    def uniform_index(self, knob: Knob, u: Uniform, config: Config) -> int:
        """The choice a uniform scaling takes (default: the base's)."""
        return self.base_index(knob)


DIMENSIONS: dict[str, Dimension] = {}


def register_dimension(cls: type[Dimension]) -> type[Dimension]:
    """Class decorator: one instance of the dimension joins every space built afterwards."""
    if cls.name in DIMENSIONS:
        raise ValueError(f"dimension {cls.name!r} is already registered")
    if cls.key is not None and any(d.key == cls.key for d in DIMENSIONS.values()):
        raise ValueError(f"settings key {cls.key!r} is already a dimension's")
    DIMENSIONS[cls.name] = cls()
    return cls


def unregister_dimension(name: str) -> None:
    """Remove a dimension (a test's toy one)."""
    DIMENSIONS.pop(name, None)


def ordered() -> list[Dimension]:
    return sorted(DIMENSIONS.values(), key=lambda d: (d.order, d.name))


def setting_keys() -> tuple[str, ...]:
    return tuple(d.key for d in ordered() if d.key is not None)


def nearest(choices: Sequence[Any], value: Any) -> int:
    """The index of `value` among the choices, else of the nearest number (the smaller on a tie), else 0."""
    if value in choices:
        return list(choices).index(value)
    if isinstance(value, (int, float)) and all(isinstance(c, (int, float)) for c in choices):
        return min(range(len(choices)), key=lambda i: (abs(choices[i] - value), choices[i]))
    return 0


def row_key(key: Any) -> int | str:
    """A per-row settings key: a row index (an int, or its digits after a JSON round trip) or a block name."""
    if isinstance(key, bool):
        raise ValueError(f"{key!r} is neither a row index nor a block name")
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    if isinstance(key, str) and key:
        return key
    raise ValueError(f"{key!r} is neither a row index nor a block name")


def matching_rows(config: Config, key: int | str) -> list[int]:
    """The rows a per-row key names: the row itself, or every row of that block."""
    if isinstance(key, int):
        if not 0 <= key < len(config.rows):
            raise ValueError(f"row {key} is not in the config (rows 0..{len(config.rows) - 1})")
        return [key]
    rows = [r.index for r in config.rows if r.module == key]
    if not rows:
        raise ValueError(f"no row of the config uses {key}")
    return rows


def per_row(value: Any, item: Any, what: str) -> dict[int | str, list[Any]]:
    """Parse {row or block name: [values]} with `item` checking each value (ValueError names the key)."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"must be a mapping {{row or block name: [{what}]}}, got {value!r}")
    out: dict[int | str, list[Any]] = {}
    for k, v in value.items():
        key = row_key(k)
        if not isinstance(v, list) or not v:
            raise ValueError(f"{k}: must be a non-empty list of {what}, got {v!r}")
        out[key] = [item(x, k) for x in v]
    return out


def jsonable(value: Any) -> Any:
    """Row keys as JSON writes them: a stored record compares equal to a run's."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
