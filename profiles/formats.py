"""A profile as text: JSON (SPEC §4), CSV (one line per row, then a total) and markdown.

Pure functions returning strings; the face decides where they go (stdout or `--out`).
"""
from __future__ import annotations

import csv
import io
import json
from typing import Callable, Sequence

from .profile import ModelProfile, uncounted_text
from .rows import comparison_rows, compact, cross_check_rows, layer_rows, totals_text

CSV_FIELDS = ("model", "index", "from", "repeats", "module", "args", "params", "macs", "gmacs", "gflops",
              "out_shape", "stride", "latency_median_ms", "latency_p90_ms", "share", "uncounted")


def to_json(profiles: Sequence[ModelProfile]) -> str:
    """A list with one object per config, whether one config or several: `[0]` is always the first
    (a reader written for one config keeps working when a second is added)."""
    return json.dumps([p.as_dict() for p in profiles], indent=2)


def to_csv(profiles: Sequence[ModelProfile]) -> str:
    """One line per row of each model, then a `total` line per model."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for p in profiles:
        for lay in p.layers:
            lat = lay.latency
            w.writerow([p.label, lay.index, compact(lay.from_), lay.repeats, lay.module, compact(lay.args),
                        lay.params, lay.macs, f"{lay.gmacs:.6f}", f"{lay.gflops:.6f}",
                        "x".join(map(str, lay.out_shape)) if lay.out_shape else "", lay.stride or "",
                        f"{lat.median_ms:.4f}" if lat else "", f"{lat.p90_ms:.4f}" if lat else "",
                        f"{lay.share:.4f}" if lay.share is not None else "", uncounted_text(lay.uncounted)])
        lat = p.latency
        w.writerow([p.label, "total", "", "", "", "", p.params, p.macs, f"{p.gmacs:.6f}", f"{p.gflops:.6f}",
                    "", "", f"{lat.median_ms:.4f}" if lat else "", f"{lat.p90_ms:.4f}" if lat else "",
                    "1.0" if lat else "", uncounted_text(p.uncounted_ops)])
    return buf.getvalue()


def to_markdown(profiles: Sequence[ModelProfile]) -> str:
    """Per model: summary, totals, the row table, lint, uncounted ops, cross-check; side by side first."""
    parts: list[str] = []
    if len(profiles) > 1:
        parts += ["## Side by side (deltas against the first)", "", _md_table(*comparison_rows(profiles)), ""]
    for p in profiles:
        parts += [f"## {p.label}", "", f"`{p.summary}`", "", "\n".join(f"- {line}" for line in totals_text(p)),
                  "", _md_table(*layer_rows(p)), ""]
        if p.lint:
            parts += ["Shape lint warnings:", ""] + [f"- {w.message(p.source)}" for w in p.lint] + [""]
        if p.uncounted_ops:
            parts += ["Uncounted ops (cost time, counted by no counter): "
                      + ", ".join(f"`{op}` x{n}" for op, n in p.uncounted_ops.items()), ""]
        if p.cross_check is not None:
            parts += ["Cross-check (MACs):", "", _md_table(*cross_check_rows(p.cross_check)), ""]
    return "\n".join(parts).rstrip() + "\n"


FORMATTERS: dict[str, Callable[[Sequence[ModelProfile]], str]] = {
    "json": to_json, "csv": to_csv, "md": to_markdown}


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
