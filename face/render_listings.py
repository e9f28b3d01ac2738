"""The small listings: `zoo configs`, `zoo modules`, `zoo validate` (tables or JSON on stdout)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from zoo.errors import printable

from . import console


def print_builtins(names: dict[str, tuple[Path, str | None]], fmt: str = "table") -> None:
    if fmt == "json":
        data = [{"name": n, "file": str(path), "scale": scale} for n, (path, scale) in names.items()]
        console.write(json.dumps(data, indent=2) + "\n")
        return
    t = Table(box=box.SIMPLE_HEAD)
    for h in ("name", "scale", "file"):
        t.add_column(h)
    for n, (path, scale) in names.items():
        t.add_row(n, scale or "-", Path(path).name)
    console.out_console().print(t)


def print_modules(specs: Sequence[Any], fmt: str = "table") -> None:
    """Registered modules (ModuleSpec.as_dict): name, family, what the channel rule does, repeats, signature."""
    rows = [s.as_dict() for s in sorted(specs, key=lambda s: (s.family, s.name))]
    if fmt == "json":
        console.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(box=box.SIMPLE_HEAD)
    for h in ("name", "family", "channels (io rule)", "repeat", "signature"):
        t.add_column(h, no_wrap=h in ("name", "family", "repeat"))
    for r in rows:
        t.add_row(*(Text(printable(str(r[k]))) for k in ("name", "family", "io", "repeat", "signature")))
    console.out_console().print(t)


def print_validated(model: Any, imgsz: int, lint_warnings: Sequence[Any] = (), caught: Sequence[str] = ()) -> None:
    """One line per config on stdout; its lint warnings and the warnings raised while building on stderr."""
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    strides = "/".join(f"{float(s):g}" for s in model.stride.flatten().tolist())
    console.write(printable(f"{cfg.path}: ok at {imgsz} px: {len(model.layers)} rows, {params:,} params, "
                            f"strides {strides}") + "\n")
    for w in lint_warnings:
        console.warning(w.message(cfg.path))
    for line in caught:
        console.warning(f"{cfg.path}: {line}")
