"""Where the face writes: stdout (data and tables) and the one stderr console (errors, warnings, notes,
progress). With `--format json` and no `--out`, stdout holds only the JSON; everything else is stderr.
"""
from __future__ import annotations

import functools
import sys
import time
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from zoo.errors import printable

WIDE = 220  # columns of a table rendered to a file or a pipe (no terminal to fit)
LINE_EVERY_S = 5.0  # with no terminal, a count's progress line at most this often (and the last one)


@functools.cache
def err_console() -> Console:
    """The one stderr console (its stream is looked up at each write, so a redirected stderr is honoured)."""
    return Console(stderr=True, highlight=False)


def out_console() -> Console:
    """Tables on stdout: the terminal's width, or WIDE and no colour when stdout is a file or a pipe."""
    con = Console(file=sys.stdout)
    return con if con.is_terminal else file_console(sys.stdout)


def file_console(f: IO[str]) -> Console:
    """Tables into a file: WIDE, no colour, lines never wrapped."""
    return Console(file=f, width=WIDE, color_system=None, soft_wrap=False)


def write(text: str) -> None:
    """Data (JSON, CSV, markdown) on stdout exactly as given."""
    sys.stdout.write(text)
    sys.stdout.flush()


def error(text: str) -> None:
    """`error: {text}` as one line on stderr (a ConfigError without a traceback; lines are joined)."""
    _line("error: " + " ".join(part.strip() for part in str(text).splitlines() if part.strip()))


def warning(text: str) -> None:
    """`warning: {text}` as one line on stderr, control characters escaped (names come from configs)."""
    _line(printable("warning: " + " ".join(part.strip() for part in str(text).splitlines() if part.strip())))


def note(text: str) -> None:
    """A line for the user on stderr (`wrote FILE`), wrapped to the terminal by rich (never wrapped in a
    log file or a pipe, where a path cut in two cannot be read back), never read as markup."""
    con = err_console()
    con.print(printable(text), highlight=False, markup=False, soft_wrap=not con.is_terminal)


def _line(text: str) -> None:
    f = err_console().file
    f.write(text + "\n")
    f.flush()


class Progress:
    """What a long command is doing, on stderr; the one progress helper of every command.

    Without `total`: named stages (`stage("counting MACs")`) as a spinner on a terminal, as plain lines
    `label: stage` otherwise. With `total`: a bar over a count (`count(done, text)`), the label in front,
    the time elapsed and, with `eta`, the time left (from the rate so far); with no terminal (a log file,
    a pipe, CI) a plain line `label: done/total, text, rate` at the first count, then at most every
    LINE_EVERY_S seconds, and at the total. Disabled, it shows nothing.
    """

    def __init__(self, label: str, *, total: int | None = None, enabled: bool = True, eta: bool = False) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self._status: Any = None
        self._bar: RichProgress | None = None
        self._lines: list[float] | None = None  # plain mode: [start, first count, last line's time, its count]
        if total is not None and enabled and not err_console().is_terminal:
            self._lines = []
        elif total is not None:
            columns: list[Any] = [TextColumn(f"[bold]{escape(label)}[/bold]"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.description}"), TimeElapsedColumn()]
            if eta:
                columns += [TextColumn("left"), TimeRemainingColumn()]
            self._bar = RichProgress(*columns, console=err_console(), disable=not enabled, transient=False)
            self._task = self._bar.add_task("", total=total)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        elif self.enabled and err_console().is_terminal:
            self._status = err_console().status(self.label)
            self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._status is not None:
            self._status.__exit__(*exc)
            self._status = None

    def stage(self, text: str) -> None:
        """The stage now in progress."""
        if not self.enabled:
            return
        if self._status is not None:
            self._status.update(f"{self.label}: {text}")
        else:
            err_console().print(f"{self.label}: {text}", highlight=False)

    def count(self, done: int, text: str, total: int | None = None) -> None:
        """How many of `total` are done (a new `total` when the work turns out larger or smaller), and a
        word on them."""
        if total is not None:
            self.total = total
        if self._bar is not None:
            if total is not None:
                self._bar.update(self._task, total=total)
            self._bar.update(self._task, completed=min(done, self.total or done), description=escape(text))
        elif self._lines is not None:
            now = time.monotonic()
            if not self._lines:
                self._lines[:] = [now, float(done), now - LINE_EVERY_S, -1.0]
            start, first, last, shown = self._lines
            if done == shown or (now - last < LINE_EVERY_S and done < (self.total or 0)):
                return
            self._lines[2:] = [now, float(done)]
            rate = f", {(done - first) / (now - start):.2f}/s" if now - start > 0.5 and done > first else ""
            _line(f"{self.label}: {done}/{self.total}, {text}{rate}")
