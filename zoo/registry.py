"""The registry: blocks and families, each declared where it is defined. Generic: it imports no family.

A block's registration says how a row becomes its constructor call (the channel rule), how repeats
apply and which YAML argument positions are channel counts. A family's registration says how a config
is recognised, which head sizes are never width-scaled and its scaling rules. Built-in families
register exactly as a plugin does (see zoo.plugins).

Names resolve per family (SPEC §2): the config's own family first, else the only family that has the
name, else the shared set; a name that several other families have asks for `family:`.
"""
from __future__ import annotations

import difflib
import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from .norms import NormSettings
from .rules import RULES, ChannelScaler, Rule, rule_name, scale_channels, scale_repeats
from .schema import Config

SHARED = "shared"
# Channel positions a rule named by string implies: out_arg scales YAML arg 0, the others none.
_RULE_CHANNELS = {"out_arg": (0,), "same": (), "concat": (), "in_arg": ()}
# What each named rule does, as `zoo modules` says it (a callable rule is described by its docstring).
_RULE_TEXT = {"out_arg": "output width = arg 0, width-scaled; input width inserted first",
              "same": "output width = input width", "in_arg": "the only argument is the input width",
              "concat": "output width = sum of the input widths"}


@dataclass(frozen=True)
class SearchArg:
    """YAML argument positions a search may rewrite (kind "kernel", "expansion", ...) and the values the
    block accepts there (None: any value the dimension itself accepts)."""

    kind: str
    positions: tuple[int, ...]
    values: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class ModuleSpec:
    """What the builder and the search need to know of a block: how to build it from a row.

    `channels`: YAML argument positions that are channel counts: the rule width-scales them and the
    search rewrites them when it writes a candidate with explicit channels.
    `width_step`: every width-scaled channel argument must come out a multiple of this (1: the family's
    rule alone). A block whose inner widths have a granularity (A2C2f's attention heads of 32 on a hidden
    width c2 / 2) declares it, so the search offers only widths it can build; its rule still refuses a
    row written otherwise, as the reference does.
    """

    name: str
    family: str
    cls: type[nn.Module]
    rule: Rule
    io: str
    repeat: str  # "inside": the module takes n; "chain": n copies in sequence
    example: tuple[Any, ...] | None = None  # (from, args) of a row the contract tests build
    channels: tuple[int, ...] = ()
    width_step: int = 1
    searchable: tuple[SearchArg, ...] = ()  # kernel sizes, expansion ratios: what a search may rewrite

    def search_arg(self, kind: str) -> SearchArg | None:
        """The positions (and accepted values) of one searchable argument kind, if the block declares it."""
        return next((a for a in self.searchable if a.kind == kind), None)

    @property
    def signature(self) -> inspect.Signature:
        return class_signature(self.cls)

    @property
    def impl(self) -> str:
        """The implementing class, as a stable name (part of a row signature)."""
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    def describe(self) -> str:
        doc = (inspect.getdoc(self.cls) or "").strip().splitlines()
        return doc[0] if doc else ""

    @property
    def rule_text(self) -> str:
        """What the channel rule does, in words: a named rule's description, else the first line of the
        rule's docstring, else which YAML arguments it width-scales (never a function's internal name)."""
        if self.io in _RULE_TEXT:
            return _RULE_TEXT[self.io]
        doc = (inspect.getdoc(self.rule) or "").strip().splitlines()
        if doc:
            return "own rule: " + doc[0]
        scaled = ", ".join(map(str, self.channels))
        return f"own rule: width-scales args {scaled}" if scaled else "own rule: no argument is width-scaled"

    def as_dict(self) -> dict[str, Any]:
        """The registration as `zoo modules --format json` lists it."""
        try:
            signature = str(self.signature)
        except (TypeError, ValueError):  # a builtin or C-implemented constructor
            signature = "(...)"
        return {"name": self.name, "family": self.family, "rule": self.io if self.io in _RULE_TEXT else "custom",
                "io": self.rule_text, "channels": list(self.channels), "repeat": self.repeat,
                "signature": signature, "doc": self.describe(), "width_step": self.width_step}


@functools.lru_cache(maxsize=None)
def class_signature(cls: type) -> inspect.Signature:
    """A block's constructor signature (read once per class: planning a candidate binds every row)."""
    return inspect.signature(cls)


def _nc_only(nc: int, anchors: Any) -> frozenset[int]:
    return frozenset({nc})


@dataclass(frozen=True)
class FamilySpec:
    """A config family: how it is recognised, which head sizes stay as written, how it scales.

    recognise: True for a config mapping (without `family:`) of this family; None: only by `family:`.
    priority: recognisers are asked highest first.
    unscaled: (nc, anchors) -> the channel counts never width-scaled (a head's output size).
    scale_by_name: its blocks read the scale's name (Ultralytics builds C3k2 differently at m/l/x), so a
      config written at one scale or with explicit channels keeps the name (see explicit_scale).
    norm: config -> the BatchNorm settings its rows are built with (None: zoo.norms.DEFAULT).
    """

    name: str
    recognise: Callable[[Mapping[str, Any]], bool] | None = None
    priority: int = 0
    unscaled: Callable[[int, Any], frozenset[int]] = _nc_only
    channels: ChannelScaler = scale_channels
    repeats: Callable[[int, float], int] = scale_repeats
    scale_by_name: bool = False
    doc: str = ""
    norm: Callable[[Config], NormSettings | None] = lambda cfg: None

    def explicit_scale(self, cfg: Config, max_channel: int) -> dict[str, Any]:
        """The scale keys of `cfg` written with explicit channels and repeats: multiples 1.0, or, for a
        family whose blocks read the scale's name, that name with [1.0, 1.0, cap] (a full triple, as
        Ultralytics reads it; the cap at least the largest channel)."""
        if not self.scale_by_name or cfg.scale.name is None:
            return {"depth_multiple": 1.0, "width_multiple": 1.0}
        cap = max(cfg.scale.max_channels or 0, max_channel)
        return {"scales": {cfg.scale.name: [1.0, 1.0, cap]}}


@dataclass
class Registry:
    """Blocks by name and family, and the families."""

    _specs: dict[str, dict[str, ModuleSpec]] = field(default_factory=dict)
    _families: dict[str, FamilySpec] = field(default_factory=dict)
    loaded: set[str] = field(default_factory=set)  # plugin files and packages already imported (zoo.plugins)

    def add(self, spec: ModuleSpec) -> None:
        by_family = self._specs.setdefault(spec.name, {})
        if spec.family in by_family:
            old = by_family[spec.family].cls
            raise ValueError(f"module {spec.name!r} is already registered for family {spec.family!r} "
                             f"(by {old.__module__}.{old.__qualname__})")
        by_family[spec.family] = spec

    def remove(self, name: str, family: str) -> None:
        """Unregister one block (tests that register a throw-away module clean up with this)."""
        fams = self._specs.get(name, {})
        fams.pop(family, None)
        if not fams:
            self._specs.pop(name, None)

    def specs(self) -> list[ModuleSpec]:
        return [s for fams in self._specs.values() for s in fams.values()]

    def names(self) -> list[str]:
        return sorted(self._specs)

    def lookup(self, name: str, family: str) -> ModuleSpec:
        """The block a config of `family` means by `name`; raises KeyError with a hint."""
        fams = self._specs.get(name)
        if not fams:
            lowered = {n.lower(): n for n in self.names()}
            near = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(lowered[n] for n in near)}?" if near else ""
            raise KeyError(f"unknown module {name!r}{hint} (`zoo modules` lists them; "
                           f"--plugin FILE adds your own)")
        if family in fams:
            return fams[family]
        others = [f for f in fams if f != SHARED]
        if len(others) == 1:
            return fams[others[0]]
        if not others and SHARED in fams:
            return fams[SHARED]
        raise KeyError(f"module {name!r} exists in families {', '.join(sorted(others))}, not in "
                       f"{family!r}: add `family:` to the config to choose")

    # -- families ------------------------------------------------------------------------------------

    def add_family(self, spec: FamilySpec) -> None:
        if spec.name in self._families:
            raise ValueError(f"family {spec.name!r} is already registered")
        if spec.name == SHARED:
            raise ValueError(f"{SHARED!r} is the set of blocks every family shares, not a family")
        self._families[spec.name] = spec

    def remove_family(self, name: str) -> None:
        self._families.pop(name, None)

    def families(self) -> list[FamilySpec]:
        return list(self._families.values())

    def family(self, name: str) -> FamilySpec:
        try:
            return self._families[name]
        except KeyError:
            raise KeyError(f"unknown family {name!r} (registered: {', '.join(sorted(self._families))})") from None

    def recognise(self, data: Mapping[str, Any]) -> str:
        """The family of a config mapping without a `family:` key: the first recogniser that says yes."""
        for fam in sorted(self._families.values(), key=lambda f: -f.priority):
            if fam.recognise is not None and fam.recognise(data):
                return fam.name
        raise KeyError(f"no registered family recognises this config; add `family:` "
                       f"({', '.join(sorted(self._families))})")


REGISTRY = Registry()


def register_module(name: str | None = None, *, family: str = SHARED, io: str | Rule = "out_arg",
                    repeat: str = "chain", example: tuple[Any, ...] | None = None,
                    channels: tuple[int, ...] | None = None, width_step: int = 1, kernels: tuple[int, ...] = (),
                    kernel_sizes: tuple[int, ...] | None = None, expansion: tuple[int, ...] = (),
                    ) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: `@register_module("C3", family="yolov5", io="out_arg", repeat="inside")`.

    `io` is a rule name of `zoo.rules` (out_arg, same, concat, in_arg) or a callable taking a
    RowContext and returning a Resolved; the registration is the only place a block's channel rule lives.
    `channels` are the YAML argument positions the rule width-scales (`ctx.channels`): implied by a
    named rule (out_arg: (0,)), required with a callable rule (`()` when it scales none).
    `example` is a `(from, args)` row the contract tests build on a small test backbone (rows 2, 3, 4 at
    strides 8, 16, 32); blocks used by a built-in config are tested there and may omit it.
    `width_step` is the granularity of its width-scaled channels (see ModuleSpec).
    `kernels` (with the `kernel_sizes` the block accepts) and `expansion` are YAML positions a search may
    rewrite (`zoo search`'s kernel and expansion dimensions), as `channels` are the ones it width-scales.
    """
    if isinstance(width_step, bool) or not isinstance(width_step, int) or width_step < 1:
        raise ValueError(f"width_step must be a positive int, got {width_step!r}")
    if repeat not in ("inside", "chain"):
        raise ValueError(f"repeat must be 'inside' or 'chain', got {repeat!r}")
    if isinstance(io, str):
        if io not in RULES:
            raise ValueError(f"unknown io rule {io!r}; one of {', '.join(RULES)} or a callable")
        rule, io_name = RULES[io], io
        implied = _RULE_CHANNELS[io]
        if channels is not None and tuple(channels) != implied:
            raise ValueError(f"io rule {io!r} scales YAML positions {implied}, not {tuple(channels)}")
    else:
        rule, io_name = io, rule_name(io)
        if channels is None:
            raise ValueError("a callable io rule must declare channels=(...): the YAML positions it "
                             "width-scales, () for none")
        implied = tuple(channels)
    if any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in implied):
        raise ValueError(f"channels must be YAML argument positions (ints >= 0), got {implied!r}")

    searchable = []
    for kind, positions, values in (("kernel", kernels, kernel_sizes), ("expansion", expansion, None)):
        if any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in positions):
            raise ValueError(f"{kind} positions must be YAML argument positions (ints >= 0), got {positions!r}")
        if positions:
            searchable.append(SearchArg(kind, tuple(positions), tuple(values) if values is not None else None))

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        REGISTRY.add(ModuleSpec(name or cls.__name__, family, cls, rule, io_name, repeat, example, implied,
                                width_step, tuple(searchable)))
        return cls

    return wrap


def register_layer(cls: type[nn.Module], name: str, io: str | Rule = "same",
                   example: tuple[Any, ...] | None = None) -> None:
    """Register an existing class (e.g. torch's nn.Upsample) under a config name."""
    register_module(name, family=SHARED, io=io, example=example)(cls)


def register_family(name: str, **kwargs: Any) -> FamilySpec:
    """Register a config family (see FamilySpec for the keywords); returns the spec."""
    spec = FamilySpec(name, **kwargs)
    REGISTRY.add_family(spec)
    return spec


__all__ = ["FamilySpec", "ModuleSpec", "REGISTRY", "Registry", "SHARED", "SearchArg", "register_family", "register_layer",
           "register_module"]
