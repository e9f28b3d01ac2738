"""argparse types shared by the commands; a bad value is a usage error (exit 2) naming the flag."""
from __future__ import annotations

import argparse
import re
from typing import Any

BACKENDS = ("torch", "onnxruntime")


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def weights(text: str) -> list[float]:
    """`0,0,1,1,6` -> [0.0, 0.0, 1.0, 1.0, 6.0] (one weight per stride 2, 4, 8, ...)."""
    try:
        ws = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers expected, got {text!r}") from None
    if not ws:
        raise argparse.ArgumentTypeError("at least one weight")
    return ws


def make_backend(name: str, *, source: str, **settings: Any) -> Any:
    """profiles.backends.get_backend with the CLI's flags: a bad setting is a ConfigError naming its flag
    (`--threads`, `--device`, `--backend`), a missing extra the one-line hint."""
    from profiles.backends import get_backend
    from zoo.errors import ConfigError

    try:
        return get_backend(name, **settings)
    except ValueError as e:
        text = re.sub(r"^(\w+)=", lambda m: f"--{m.group(1)} ", str(e))
        raise ConfigError(source, text) from None
