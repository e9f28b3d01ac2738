"""The `activation:` key: an allow-list parsed by pattern, never evaluated.

The default activation of a build is carried by a context variable set only while a model is being
built, so nothing is mutated at class level (YOLOv5 patches `Conv.default_act`; we do not).
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from dataclasses import dataclass
from typing import Iterator

from torch import nn

_NO_ARG = {
    "SiLU": nn.SiLU, "ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "Hardswish": nn.Hardswish,
    "Hardsigmoid": nn.Hardsigmoid, "GELU": nn.GELU, "Mish": nn.Mish, "Tanh": nn.Tanh,
    "Sigmoid": nn.Sigmoid, "Identity": nn.Identity,
}
_ONE_ARG = {"LeakyReLU": nn.LeakyReLU, "ELU": nn.ELU}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# `torch.nn.ReLU()` (YOLOv6) names the same class as `nn.ReLU()`: the prefix is matched, never imported
_PATTERN = re.compile(rf"^\s*(?:torch\.)?nn\.([A-Za-z0-9]+)\(\s*({_NUMBER})?\s*\)\s*$")
ALLOWED = tuple(f"nn.{n}()" for n in _NO_ARG) + tuple(f"nn.{n}(x)" for n in _ONE_ARG)


@dataclass(frozen=True)
class Activation:
    """A parsed activation: class name and its one numeric argument, if any."""

    name: str = "SiLU"
    arg: float | None = None

    def make(self) -> nn.Module:
        if self.name in _ONE_ARG:
            return _ONE_ARG[self.name](self.arg)
        return _NO_ARG[self.name]()

    def __str__(self) -> str:
        return f"nn.{self.name}({'' if self.arg is None else self.arg})"


def parse_activation(text: object) -> Activation:
    """Parse `nn.Name()` / `nn.Name(x)` (optionally `torch.nn.`) from the allow-list; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"activation must be a string such as 'nn.SiLU()', got {text!r}")
    m = _PATTERN.match(text)
    if not m:
        raise ValueError(f"activation {text!r} is not allowed; use one of: {', '.join(ALLOWED)}")
    name, arg = m.group(1), m.group(2)
    if name in _NO_ARG and arg is None:
        return Activation(name)
    if name in _ONE_ARG and arg is not None:
        return Activation(name, float(arg))
    raise ValueError(f"activation {text!r} is not allowed; use one of: {', '.join(ALLOWED)}")


DEFAULT = Activation()
_current: contextvars.ContextVar[nn.Module | None] = contextvars.ContextVar("zoo_activation", default=None)


def default_activation() -> nn.Module:
    """The activation in force for the model being built.

    Inside a build it is one stateless instance shared by every Conv, as in YOLOv5 (so its summary's
    layer count, which counts distinct modules, is the same); outside a build a fresh SiLU.
    """
    shared = _current.get()
    return shared if shared is not None else DEFAULT.make()


@contextlib.contextmanager
def activation_scope(act: Activation | None) -> Iterator[None]:
    token = _current.set((act or DEFAULT).make())
    try:
        yield
    finally:
        _current.reset(token)
