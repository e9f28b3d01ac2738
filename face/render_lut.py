"""`zoo lut` output: what a build measured (stderr notes, then the calibration table on stdout) and a
table's summary (fingerprint, coverage, calibration, residuals) as rich tables or JSON."""
from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.table import Table

from profiles.lut import Anchor, Calibration, TableSummary, summarize_table
from profiles.lutbuild import BuildReport
from profiles.lutimport import ImportReport

from . import console


def print_build(r: BuildReport) -> None:
    """The rows and models this build measured, then the table's calibration."""
    console.note(f"{r.path}: measured {r.rows_measured} of {r.rows} distinct rows "
                 f"({r.rows - r.rows_measured} already there) and {r.models_measured} of {r.models} calibration "
                 f"models from {r.sources} plan(s) in {_duration(r.seconds)}")
    s = summarize_table(r.table)
    con = console.out_console()
    con.print(calibration_table(s))
    if r.calibration is None:
        console.warning(f"{r.path}: no calibration model: predictions are plain row sums")
    warn(s)


def warn(s: TableSummary) -> None:
    """The table's warnings (TableSummary.warnings) on stderr, whatever the output format."""
    for w in s.warnings:
        console.warning(w)


def print_summary(s: TableSummary, fmt: str = "table") -> None:
    if fmt == "json":
        console.write(json.dumps(s.as_dict(), indent=2) + "\n")
        warn(s)
        return
    con = console.out_console()
    fp = s.fingerprint.as_dict()
    t = Table(title=f"latency table {s.path}", box=box.SIMPLE_HEAD, title_justify="left", show_header=False)
    t.add_column("field")
    t.add_column("value")
    for k in ("cpu_model", "physical_cores", "logical_cores", "machine", "torch_version", "backend",
              "backend_version", "device", "dtype", "threads"):
        t.add_row(k, str(fp[k]))
    for k, v in sorted(fp["settings"].items()):
        t.add_row(f"  {k}", ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    t.add_row("form", s.form)
    t.add_row("rows timed", s.timing.replace("_", " "))
    if s.timing == "in_context":
        t.add_row("levels", "per model: each model's level fitted and divided out" + (
            f" (5th-95th percentile {s.level_range[0]:.3f}-{s.level_range[1]:.3f})" if s.level_range else "")
            if s.levels == "per_model" else "none: entries as timed")
    t.add_row("row protocol", _protocol(s.protocol.as_dict()))
    t.add_row("model protocol", _protocol(s.model_protocol.as_dict()))
    t.add_row("created", str(s.created))
    lo = f"{s.row_ms[0]:.3f} / {s.row_ms[1]:.3f} / {s.row_ms[2]:.3f} ms (min / median / max)" if s.row_ms else "-"
    t.add_row("rows", f"{s.rows:,}: {lo}")
    t.add_row("  by module", ", ".join(f"{m} {n}" for m, n in s.rows_by_module) or "-")
    t.add_row("calibration models", str(len(s.models)))
    t.add_row("builds", f"{len(s.builds)}, {_duration(s.build_seconds)} in all" if s.builds else "none recorded")
    t.add_row("anchor", anchor_text(s.anchor) if s.anchor is not None else "none (predictions at the build's speed)")
    t.add_row("file", f"{s.bytes:,} bytes")
    con.print(t)
    con.print(calibration_table(s))
    warn(s)


def anchor_text(a: Anchor) -> str:
    ratios = sorted(m.ratio for m in a.models)
    return (f"x{a.factor:.3f} since {a.at}: {len(a.models)} model(s) measured / predicted "
            f"{ratios[0]:.3f} to {ratios[-1]:.3f}, {a.rounds} round(s)")


def print_anchor(path: str, a: Anchor) -> None:
    """Each anchor model's prediction before the anchor and its time now, then the factor applied."""
    t = Table(title=f"anchor of {path}", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("model", "predicted ms", "measured ms", "measured / predicted"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for m in a.models:
        t.add_row(m.name, f"{m.predicted_ms:.2f}", f"{m.measured_ms:.2f}", f"{m.ratio:.3f}")
    t.caption = f"median x{a.factor:.3f}: predictions from {path} are scaled by it from now"
    console.out_console().print(t)
    if a.note is not None:
        console.note(f"{path}: {a.note}")


def calibration_table(s: TableSummary) -> Table:
    """The fit and each calibration model: its row sum, measured, predicted, error."""
    cal = s.calibration
    title = "calibration: " + (_fit_text(cal) + ("" if s.fit_is_current else " (stale: models added since)")
                               if cal is not None else "none (predictions are plain row sums)")
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("model", "rows", "row sum ms", "measured ms", "predicted ms", "error", "CV"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for m in s.models:
        t.add_row(m.name + ("" if m.in_fit else " *"), str(m.rows), f"{m.row_sum_ms:.2f}", f"{m.measured_ms:.2f}",
                  f"{m.predicted_ms:.2f}", f"{m.error:+.1%}", f"{m.cv:.3f}")
    if s.models:
        t.caption = (f"|error| median {s.check_error:.1%}, max {max(abs(m.error) for m in s.models):.1%}"
                     + ("; * not in the fit" if any(not m.in_fit for m in s.models) else ""))
    return t


def _fit_text(cal: Calibration) -> str:
    if cal.method == "identity":
        return f"total = row sum (rows timed in context add up; {len(cal.models)} models a check, no fit)"
    return f"total = {cal.a:.4f} x row sum {cal.b:+.3f} ms ({cal.method}, {len(cal.models)} models)"


def _protocol(p: dict[str, Any]) -> str:
    return (f"{p['runs']} runs after {p['warmup_runs']} warm-up calls and {p['warmup_s']:g} s "
            f"(warm-up capped at {p['max_warmup_s']:g} s)")


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def print_import(r: ImportReport) -> None:
    """What an import added (profiles.lutimport.ImportReport), what the runner left, then the calibration."""
    console.note(f"{r.path}: imported {r.rows_added} rows ({r.rows} in the export) and {r.models_added} whole "
                 f"models ({r.models} in the export)")
    if r.not_measured:
        console.warning(f"{len(r.not_measured)} item(s) not measured yet (e.g. {r.not_measured[0]}): run the "
                        "runner again to finish, then import again")
    for what, why in r.failed[:5]:
        console.warning(f"the runner could not time {what}: {why}")
    if len(r.failed) > 5:
        console.warning(f"... and {len(r.failed) - 5} more item(s) the runner could not time")
    s = summarize_table(r.table)
    console.out_console().print(calibration_table(s))
    if r.calibration is None:
        console.warning(f"{r.path}: no calibration model: predictions are plain row sums")
    warn(s)
