"""`zoo profile`'s output: the per-row rich table, or the JSON/CSV/markdown text of profiles.formats."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from profiles.formats import FORMATTERS
from profiles.profile import ModelProfile
from profiles.rows import args_text, comparison_rows, cross_check_rows, layer_rows, totals_text
from zoo.errors import printable

from . import console

FORMATS = ("table", *FORMATTERS)
LEFT = ("from", "module", "args", "out shape", "uncounted")  # text columns of the row table

# The row table fits the terminal the way YOLOv5's model.info() stays readable: under COMPACT_BELOW columns
# the compact layout, from it on every column. While the table is too wide, columns leave in DROP_ORDER and
# the args are abbreviated (profiles.rows.args_text) into the room left: first the extra columns leave until
# the args get ARGS_GOOD characters, then the rest until they get ARGS_MIN. REQUIRED columns never leave and
# no number is ever cut; `--wide` shows every column in full whatever the width.
COMPACT_BELOW = 100
COMPACT = ("#", "from", "n", "params", "module", "args", "GFLOPs", "ms", "share", "share (MACs)")
REQUIRED = ("#", "params", "module", "GFLOPs")
EXTRA_FIRST = ("uncounted", "GMACs", "p90 ms", "stride", "out shape", "n", "from")  # leave before the args
#                                                                 shrink below ARGS_GOOD
DROP_ORDER = (*EXTRA_FIRST, "share", "share (MACs)", "args", "ms")
ARGS_GOOD = 20  # `[None, 2, 'nearest']`, `[128, 256, 3, 2]` in full
ARGS_MIN = 10  # narrower than `[3, 16, ...]` the args say nothing: the column leaves instead


def render(profiles: Sequence[ModelProfile], fmt: str, out: str | Path | None = None, *, wide: bool = False) -> None:
    """Write `profiles` in `fmt` to `out` (a file) or stdout; lint warnings go to stderr either way."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    print_lint(profiles)  # stderr only: stdout stays pure JSON/CSV; JSON and markdown also carry them
    if fmt == "table":
        if out is None:
            render_table(profiles, console.out_console(), wide=wide)
        else:
            with open(out, "w", encoding="utf-8") as f:
                render_table(profiles, console.file_console(f), wide=wide)
        return
    text = FORMATTERS[fmt](profiles)
    if fmt == "json":
        text += "\n"
    if out is None:
        console.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")


def render_table(profiles: Sequence[ModelProfile], con: Console, *, wide: bool = False) -> None:
    for p in profiles:
        table = fitted_table(p, con, wide=wide)
        if wide:  # as wide as it is: the terminal wraps the lines (or `less -S` scrolls them)
            Console(file=con.file, width=max(con.width, _natural_width(con, table)), color_system=con.color_system,
                    soft_wrap=False, highlight=False).print(table)
        else:
            con.print(table)
        con.print(Text(printable(p.summary)))
        for line in totals_text(p):
            con.print(Text(line))
        if p.uncounted_ops:
            con.print(Text("uncounted ops (cost time, no counter counts them): "
                           + ", ".join(f"{op} x{n}" for op, n in p.uncounted_ops.items())))
        if p.cross_check is not None:
            con.print(metric_table("cross-check (MACs)", *cross_check_rows(p.cross_check)))
        con.print()
    if len(profiles) > 1:
        con.print(metric_table("side by side (deltas against the first)", *comparison_rows(profiles)))


def fitted_table(p: ModelProfile, con: Console, *, wide: bool = False) -> Table:
    """The row table in the layout that fits `con`'s width (every column with `wide`)."""
    head, rows = layer_rows(p)
    if wide:
        return _row_table(p, head, rows, head)
    width = con.width
    columns = [h for h in head if width >= COMPACT_BELOW or h in COMPACT]
    args_full = max(len(x) for x in ["args", *(r[head.index("args")] for r in rows)])
    table = None
    for drop in (None, *DROP_ORDER):
        if drop is not None:
            if drop not in columns:
                continue
            columns.remove(drop)
        table = _row_table(p, head, rows, columns)
        natural = _natural_width(con, table)
        if natural <= width:
            return table
        room = args_full - (natural - width)  # what the args get if the other columns stay
        need = ARGS_GOOD if any(c in EXTRA_FIRST for c in columns) else ARGS_MIN
        if "args" in columns and room >= need:
            return _row_table(p, head, rows, columns, args_width=room)
    assert table is not None
    return table  # only the required columns, wider than the terminal: the terminal wraps it


def _row_table(p: ModelProfile, head: list[str], rows: list[list[str]], columns: Sequence[str],
               args_width: int | None = None) -> Table:
    size = f"input {p.input_text}" if p.input_shape is not None else f"{p.imgsz}px, batch {p.batch}"
    title = Text(printable(f"{p.label}  ({p.source}, {size})"))
    t = Table(title=title, box=box.SIMPLE_HEAD)
    at = [head.index(c) for c in columns]
    for c in columns:
        cells = [r[head.index(c)] for r in rows]
        t.add_column(c, justify="left" if c in LEFT else "right", no_wrap=True,
                     min_width=max(len(x) for x in [c, *cells]) if c not in ("args", "uncounted") else None)
    for lay, r in zip(p.layers, rows):
        cells = [args_text(lay.args, args_width) if head[i] == "args" else r[i] for i in at]
        t.add_row(*(Text(printable(x)) for x in cells))  # Text: a `[None, 2, 'nearest']` is not markup
    return t


def _natural_width(con: Console, table: Table) -> int:
    """The width `table` takes when nothing is squeezed."""
    return Measurement.get(con, con.options.update(width=10 ** 4), table).maximum


SAID_BEFORE = frozenset({"half-on-cpu"})  # latency warnings the handler prints before timing starts


def print_lint(profiles: Sequence[ModelProfile]) -> None:
    """Each profile's shape lint warnings (as `zoo validate` prints them) and the warnings on its latency,
    on stderr, one line each."""
    for p in profiles:
        for w in p.lint:
            console.warning(w.message(p.source))
        for lw in p.latency_warnings:
            if lw.code not in SAID_BEFORE:
                console.warning(f"{p.label}: latency: {lw.text}")


def metric_table(title: str, head: list[str], rows: list[list[str]]) -> Table:
    """A small table: the first column (and a `why` column) left, numbers right."""
    t = Table(title=Text(printable(title)), box=box.SIMPLE_HEAD, title_justify="left")
    for i, h in enumerate(head):
        t.add_column(Text(printable(h)), justify="left" if i == 0 or h.startswith("why") else "right")
    for r in rows:
        t.add_row(*(Text(printable(c)) for c in r))
    return t
