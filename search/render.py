"""Printing for `zoo search`, `zoo score`, `zoo export` (tables on stdout, progress on stderr).

Kept apart from the computing modules, as profiles/report.py is for profiles (it could move there).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .export import SearchResult
from .score import MAEScore


def err_console() -> Console:
    return Console(stderr=True)


def print_score(name: str, score: MAEScore, fmt: str = "table") -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps({"config": name, **score.as_dict()}, indent=2) + "\n")
        return
    table = Table(title=f"MAE score of {name} ({score.method}, scope {score.scope})")
    for col in ("stride", "weight", "stage score", "weighted", "last row"):
        table.add_column(col, justify="right")
    for s in score.stages:
        table.add_row(str(s.stride), f"{s.weight:g}", f"{s.score:.3f}", f"{s.weight * s.score:.3f}", str(s.row))
    table.add_row("", "", "", f"[bold]{score.score:.3f}[/bold]", "score")
    Console().print(table)


class SearchProgress:
    """A rich progress bar over the study's trials, with the best feasible score so far."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.progress = Progress(TextColumn("[bold]search[/bold]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=err_console(), disable=not enabled, transient=False)
        self.task = self.progress.add_task("", total=total)
        self.best: tuple[float, int] | None = None
        self.done = self.feasible = self.failed = 0
        self._started = False

    def __enter__(self) -> SearchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def _first(self, study: optuna.Study | None) -> None:
        """Count the trials of a resumed study once, so the bar starts where the study is."""
        if self._started or study is None:
            return
        self._started = True
        from .export import feasible_trials, trial_score
        from .recovery import counted

        trials = study.get_trials(deepcopy=False)
        done = [t for t in counted(trials) if t.state != TrialState.RUNNING]
        ok = feasible_trials(trials)
        self.done, self.feasible = len(done), len(ok)
        self.failed = sum(1 for t in done if t.state == TrialState.FAIL)
        self.best = (trial_score(ok[0]), ok[0].number) if ok else None

    def trial(self, event: Any) -> None:
        """One trial of this process finished."""
        self.done += 1
        if event.state == "FAIL":
            self.failed += 1
        elif event.feasible:
            self.feasible += 1
            if event.score is not None and (self.best is None or event.score > self.best[0]):
                self.best = (event.score, event.number)
        self._show()

    def poll(self, study: optuna.Study) -> None:
        """Worker processes run the trials: read the study instead."""
        self._started = False
        self._first(study)
        self._show()

    def _show(self) -> None:
        best = f"best {self.best[0]:.2f} (trial {self.best[1]})" if self.best else "no feasible trial yet"
        self.progress.update(self.task, completed=min(self.done, self.total),
                             description=f"{best}, {self.feasible} feasible, {self.failed} failed")


def print_result(r: SearchResult) -> None:
    con = Console()
    table = Table(title=f"zoo search {r.study_name}: {r.n_trials} trials, {r.n_feasible} feasible, "
                        f"{r.n_failed} failed" + (" (interrupted)" if r.interrupted else ""))
    for col in ("", "trial", "score", "latency ms", "params", "GFLOPs", "layers", "meets budget"):
        table.add_column(col, justify="right")
    rows = [("base", r.base)] + [(("best" if c is r.best else "top"), c) for c in r.remeasured]
    for label, c in rows:
        if c is None:
            continue
        lat = f"{c.latency_ms['median']:.2f}" if c.latency_ms else "-"
        table.add_row(label, "-" if c.trial is None else str(c.trial), f"{c.score:.2f}", lat, f"{c.params:,}",
                      f"{c.gflops:.2f}" if c.gflops is not None else "-", str(c.layers), "yes" if c.meets_budget else "no")
    con.print(table)
    for f in r.files:
        err_console().print(f"wrote {f}")


def print_failure(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


def print_line(text: str) -> None:
    err_console().print(text)
