"""The only module that prints: profiles as a rich table, JSON, CSV or markdown; the small listings of
`zoo configs`, `zoo modules`, `zoo validate`; progress on stderr.

With `--format json` and no `--out`, stdout holds only the JSON; progress and warnings go to stderr.
"""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from .formats import FORMATTERS, to_csv, to_json, to_markdown  # noqa: F401 (the text formats)
from .profile import ModelProfile
from .rows import comparison_rows, cross_check_rows, layer_rows, totals_text

FORMATS = ("table", *FORMATTERS)
WIDE = 220  # columns when rendering a table to a file or a pipe


# ----------------------------------------------------------------------------- rendering

def render_table(profiles: Sequence[ModelProfile], console: Console) -> None:
    for p in profiles:
        head, rows = layer_rows(p)
        t = Table(title=f"{p.label}  ({p.source}, {p.imgsz}px, batch {p.batch})", box=box.SIMPLE_HEAD)
        for i, h in enumerate(head):
            left = h in ("from", "module", "args", "out shape", "uncounted")
            t.add_column(h, justify="left" if left else "right", no_wrap=h not in ("args", "uncounted"))
        for r in rows:
            t.add_row(*r)
        console.print(t)
        console.print(p.summary, highlight=False)
        for line in totals_text(p):
            console.print(line, highlight=False)
        if p.uncounted_ops:
            console.print("uncounted ops (cost time, no counter counts them): "
                          + ", ".join(f"{op} x{n}" for op, n in p.uncounted_ops.items()), highlight=False)
        if p.cross_check is not None:
            console.print(_rich_table("cross-check (MACs)", *cross_check_rows(p.cross_check)))
        console.print()
    if len(profiles) > 1:
        console.print(_rich_table("side by side (deltas against the first)", *comparison_rows(profiles)))


def render(profiles: Sequence[ModelProfile], fmt: str, out: str | Path | None = None) -> None:
    """Write `profiles` in `fmt` to `out` (a file) or stdout."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    print_lint(profiles)  # stderr only: stdout stays pure JSON/CSV; JSON and markdown also carry them
    if fmt == "table":
        if out is None:
            render_table(profiles, _stdout_console())
        else:
            with open(out, "w", encoding="utf-8") as f:
                render_table(profiles, Console(file=f, width=WIDE, color_system=None, soft_wrap=False))
        return
    text = FORMATTERS[fmt](profiles)
    if fmt == "json":
        text += "\n"
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(out).write_text(text, encoding="utf-8")


def print_lint(profiles: Sequence[ModelProfile]) -> None:
    """Each profile's shape lint warnings on stderr, one line each, as `zoo validate` prints them."""
    for p in profiles:
        for w in p.lint:
            print(f"warning: {w.message(p.source)}", file=sys.stderr, flush=True)


def print_error(text: str) -> None:
    """`error: {text}` as one line on stderr (the CLI's way to report a ConfigError without a traceback)."""
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()


def wrote(path: str | Path) -> None:
    err_console().print(f"wrote {path}", highlight=False)


@contextlib.contextmanager
def stage_progress(label: str, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr (plain lines when stderr is not a terminal) naming the stage in progress."""
    con = err_console()
    if not enabled:
        yield lambda _s: None
        return
    if not con.is_terminal:
        yield lambda s: con.print(f"{label}: {s}", highlight=False)
        return
    with con.status(f"{label}") as status:
        yield lambda s: status.update(f"{label}: {s}")


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def _stdout_console() -> Console:
    con = Console(file=sys.stdout)
    return con if con.is_terminal else Console(file=sys.stdout, width=WIDE, color_system=None)


# ----------------------------------------------------------------------------- zoo configs / modules / validate

def print_builtins(names: dict[str, tuple[Path, str | None]], fmt: str = "table") -> None:
    if fmt == "json":
        data = [{"name": n, "file": str(path), "scale": scale} for n, (path, scale) in names.items()]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    t = Table(box=box.SIMPLE_HEAD)
    for h in ("name", "scale", "file"):
        t.add_column(h)
    for n, (path, scale) in names.items():
        t.add_row(n, scale or "-", Path(path).name)
    _stdout_console().print(t)


def print_modules(specs: Sequence[Any], fmt: str = "table") -> None:
    """Registered modules: name, family, channel rule, repeat style, constructor signature."""
    rows = [{"name": s.name, "family": s.family, "io": s.io, "repeat": s.repeat,
             "signature": _signature(s), "doc": s.describe() if hasattr(s, "describe") else ""}
            for s in sorted(specs, key=lambda s: (s.family, s.name))]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(box=box.SIMPLE_HEAD)
    for h in ("name", "family", "io rule", "repeat", "signature"):
        t.add_column(h, no_wrap=h != "signature")
    for r in rows:
        t.add_row(r["name"], r["family"], r["io"], r["repeat"], r["signature"])
    _stdout_console().print(t)


def print_validated(model: Any, lint_warnings: Sequence[Any] = ()) -> None:
    """One line per config on stdout; lint warnings on stderr."""
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    strides = "/".join(f"{float(s):g}" for s in model.stride.flatten().tolist())
    print(f"{cfg.path}: ok, {len(model.layers)} rows, {params:,} params, strides {strides}", flush=True)
    for w in lint_warnings:
        print(f"warning: {w.message(cfg.path)}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- helpers

def _signature(spec: Any) -> str:
    try:
        return str(spec.signature)
    except (TypeError, ValueError):
        return "(...)"


def _rich_table(title: str, head: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for i, h in enumerate(head):
        t.add_column(h, justify="left" if i == 0 or h.startswith("why") else "right")
    for r in rows:
        t.add_row(*r)
    return t
