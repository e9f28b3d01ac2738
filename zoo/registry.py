"""Module registry: each block declares its family, channel rule and repeat mode where it is defined.

Names resolve per family (SPEC §2): the config's own family first, else the only family that has the
name, else the shared set; a name that several other families have asks for `family:`.
"""
from __future__ import annotations

import difflib
import importlib.util
import inspect
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from torch import nn

from .errors import ConfigError
from .rules import RULES, Rule, RowContext, rule_name

SHARED = "shared"


@dataclass(frozen=True)
class ModuleSpec:
    """What the builder needs to know of a block: how to build it from a row."""

    name: str
    family: str
    cls: type[nn.Module]
    rule: Rule
    io: str
    repeat: str  # "inside": the module takes n; "chain": n copies in sequence
    example: tuple[Any, ...] | None = None  # (from, args) of a row the contract tests build


    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.cls)

    def describe(self) -> str:
        doc = (inspect.getdoc(self.cls) or "").strip().splitlines()
        return doc[0] if doc else ""


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, dict[str, ModuleSpec]] = {}
        self.loaded_plugins: set[Path] = set()  # plugin files already imported into this registry
        self.entry_points_loaded = False

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
            near = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
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


REGISTRY = Registry()


def register_module(name: str | None = None, *, family: str = SHARED, io: str | Rule = "out_arg",
                    repeat: str = "chain", example: tuple[Any, ...] | None = None
                    ) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: `@register_module("C3", family="yolov5", io="out_arg", repeat="inside")`.

    `io` is a rule name of `zoo.rules` (out_arg, same, concat, in_arg) or a callable taking a
    RowContext and returning a Resolved; the registration is the only place a block's channel rule lives.
    `example` is a `(from, args)` row the contract tests build on a small test backbone (rows 2, 3, 4 at
    strides 8, 16, 32); blocks used by a built-in config are tested there and may omit it.
    """
    if repeat not in ("inside", "chain"):
        raise ValueError(f"repeat must be 'inside' or 'chain', got {repeat!r}")
    if isinstance(io, str):
        if io not in RULES:
            raise ValueError(f"unknown io rule {io!r}; one of {', '.join(RULES)} or a callable")
        rule, io_name = RULES[io], io
    else:
        rule, io_name = io, rule_name(io)

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        REGISTRY.add(ModuleSpec(name or cls.__name__, family, cls, rule, io_name, repeat, example))
        return cls

    return wrap


def register_layer(cls: type[nn.Module], name: str, io: str | Rule = "same",
                   example: tuple[Any, ...] | None = None) -> None:
    """Register an existing class (e.g. torch's nn.Upsample) under a config name."""
    register_module(name, family=SHARED, io=io, example=example)(cls)


def load_plugin(path: str | Path) -> None:
    """Import a user file whose decorated classes register themselves (`--plugin FILE`); once per file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), "plugin file not found")
    if p.resolve() in REGISTRY.loaded_plugins:
        return
    spec = importlib.util.spec_from_file_location(f"zoo_plugin_{p.stem}", p)
    if spec is None or spec.loader is None:
        raise ConfigError(str(p), "cannot import plugin (not a Python file?)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ValueError as e:  # duplicate registrations and bad rule names
        raise ConfigError(str(p), str(e)) from None
    except SyntaxError as e:
        raise ConfigError(str(p), f"syntax error: {e.msg}", line=e.lineno) from None
    except ImportError as e:
        raise ConfigError(str(p), f"plugin import failed: {e}") from None
    REGISTRY.loaded_plugins.add(p.resolve())


def load_entry_points() -> None:
    """Import packages that register modules through the `zoo.modules` entry-point group (once)."""
    if REGISTRY.entry_points_loaded:
        return
    REGISTRY.entry_points_loaded = True
    for ep in entry_points(group="zoo.modules"):
        ep.load()


def ensure_builtin_modules() -> None:
    from . import modules  # noqa: F401  (importing registers every built-in family)
    load_entry_points()


__all__ = ["ModuleSpec", "REGISTRY", "register_module", "register_layer", "load_plugin", "RowContext"]


def describe_rule(spec: ModuleSpec) -> str:
    return f"{spec.io}" + (" +n" if spec.repeat == "inside" else "")
