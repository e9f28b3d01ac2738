"""`zoo score` and `zoo search` output: tables (or JSON) on stdout, the files written on stderr."""
from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from search import SearchResult

from . import console


def print_score(result: Any, fmt: str = "table") -> None:
    """One config's score: JSON, or the MAE stage table, or the value and its named parts."""
    if fmt == "json":
        console.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return
    if result.mae is None:
        table = Table(title=f"{result.objective} score of {result.name} at {result.imgsz} px")
        table.add_column("part")
        table.add_column("value", justify="right")
        for k, v in result.value.terms.items():
            table.add_row(k, f"{v:.4f}")
        table.add_row("[bold]score[/bold]", f"[bold]{result.value.value:.4f}[/bold]")
        console.out_console().print(table)
        if not result.value.feasible:
            console.warning(f"{result.name}: {result.value.reason}")
        return
    score = result.mae
    table = Table(title=f"MAE score of {result.name} ({score.method}, scope {score.scope})")
    for col in ("stride", "weight", "stage score", "weighted", "last row"):
        table.add_column(col, justify="right")
    for s in score.stages:
        table.add_row(str(s.stride), f"{s.weight:g}", f"{s.score:.3f}", f"{s.weight * s.score:.3f}", str(s.row))
    table.add_row("", "", "", f"[bold]{score.score:.3f}[/bold]", "score")
    console.out_console().print(table)


def print_result(r: SearchResult) -> None:
    """The base and the re-measured candidates against the budgets; then each file written."""
    table = Table(title=f"zoo search {r.study_name}: {r.n_trials} trials, {r.n_feasible} feasible, "
                        f"{r.n_failed} failed" + (" (interrupted)" if r.interrupted else ""))
    for col in ("", "trial", "score", "latency ms", "params", "GFLOPs", "convs (deploy)", "meets budget"):
        table.add_column(col, justify="right")
    rows: list[tuple[str, Any]] = [("base", r.base)] + [(("best" if c is r.best else "top"), c) for c in r.remeasured]
    for label, c in rows:
        if c is None:
            continue
        lat = f"{c.latency_ms['median']:.2f}" if c.latency_ms else "-"
        table.add_row(label, "-" if c.trial is None else str(c.trial), f"{c.score:.2f}", lat, f"{c.params:,}",
                      f"{c.gflops:.2f}" if c.gflops is not None else "-", str(c.layers),
                      "yes" if c.meets_budget else "no")
    console.out_console().print(table)
    if r.best is not None and r.report.get("train"):
        size = f" at input size {r.best.imgsz}" if r.best.imgsz else ""
        console.note(f"train the best{size}: " + "  or  ".join(r.report["train"].values()))
    for f in r.files:
        console.note(f"wrote {f}")
