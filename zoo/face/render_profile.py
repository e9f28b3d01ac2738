"""`zoo profile`'s output: the per-row rich table, or the JSON/CSV/markdown text of profiles.formats."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from profiles.formats import FORMATTERS
from profiles.profile import ModelProfile
from profiles.rows import comparison_rows, cross_check_rows, layer_rows, totals_text

from . import console

FORMATS = ("table", *FORMATTERS)
LEFT = ("from", "module", "args", "out shape", "uncounted")  # text columns of the row table


def render(profiles: Sequence[ModelProfile], fmt: str, out: str | Path | None = None) -> None:
    """Write `profiles` in `fmt` to `out` (a file) or stdout; lint warnings go to stderr either way."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    print_lint(profiles)  # stderr only: stdout stays pure JSON/CSV; JSON and markdown also carry them
    if fmt == "table":
        if out is None:
            render_table(profiles, console.out_console())
        else:
            with open(out, "w", encoding="utf-8") as f:
                render_table(profiles, console.file_console(f))
        return
    text = FORMATTERS[fmt](profiles)
    if fmt == "json":
        text += "\n"
    if out is None:
        console.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")


def render_table(profiles: Sequence[ModelProfile], con: Console) -> None:
    for p in profiles:
        head, rows = layer_rows(p)
        t = Table(title=f"{p.label}  ({p.source}, {p.imgsz}px, batch {p.batch})", box=box.SIMPLE_HEAD)
        for h in head:
            t.add_column(h, justify="left" if h in LEFT else "right", no_wrap=h not in ("args", "uncounted"))
        for r in rows:
            t.add_row(*r)
        con.print(t)
        con.print(p.summary, highlight=False)
        for line in totals_text(p):
            con.print(line, highlight=False)
        if p.uncounted_ops:
            con.print("uncounted ops (cost time, no counter counts them): "
                      + ", ".join(f"{op} x{n}" for op, n in p.uncounted_ops.items()), highlight=False)
        if p.cross_check is not None:
            con.print(metric_table("cross-check (MACs)", *cross_check_rows(p.cross_check)))
        con.print()
    if len(profiles) > 1:
        con.print(metric_table("side by side (deltas against the first)", *comparison_rows(profiles)))


def print_lint(profiles: Sequence[ModelProfile]) -> None:
    """Each profile's shape lint warnings on stderr, one line each, as `zoo validate` prints them."""
    for p in profiles:
        for w in p.lint:
            console.warning(w.message(p.source))


def metric_table(title: str, head: list[str], rows: list[list[str]]) -> Table:
    """A small table: the first column (and a `why` column) left, numbers right."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for i, h in enumerate(head):
        t.add_column(h, justify="left" if i == 0 or h.startswith("why") else "right")
    for r in rows:
        t.add_row(*r)
    return t
