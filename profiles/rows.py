"""A profile as table rows of plain strings: the rows the markdown report and the face's rich tables share.

Pure: each function returns (header, rows) or lines; nothing here prints or knows about terminals.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from .crosscheck import CrossCheck
from .profile import ModelProfile, jsonable, uncounted_text

Rows = tuple[list[str], list[list[str]]]


def layer_rows(p: ModelProfile) -> Rows:
    """One row per YAML row; latency columns when the profile was timed, the MACs share otherwise."""
    timed = p.latency is not None
    head = ["#", "from", "n", "params", "module", "args", "out shape", "stride", "GMACs", "GFLOPs"]
    head += ["ms", "p90 ms", "share"] if timed else ["share (MACs)"]
    head += ["uncounted"]
    rows = []
    for lay in p.layers:
        row = [str(lay.index), compact(lay.from_), str(lay.repeats), f"{lay.params:,}", lay.module,
               args_text(lay.args), "x".join(map(str, lay.out_shape[1:])) if lay.out_shape else "-",
               f"{lay.stride:g}" if lay.stride else "-", f"{lay.gmacs:.3f}", f"{lay.gflops:.3f}"]
        if timed:
            lat = lay.latency
            row += [f"{lat.median_ms:.2f}" if lat else "-", f"{lat.p90_ms:.2f}" if lat else "-",
                    f"{lay.share:.1%}" if lay.share is not None else "-"]
        else:
            row += [f"{lay.macs_share:.1%}"]
        row += [uncounted_text(lay.uncounted) or "-"]
        rows.append(row)
    return head, rows


def cross_check_rows(cc: CrossCheck) -> Rows:
    head = ["op family", "fvcore", "thop", "torch counter", "why they differ"]
    rows = [[f.family, f"{f.fvcore:,}", f"{f.thop:,}", f"{f.torch:,}", "agree" if f.agree else f.why]
            for f in cc.families]
    rows.append(["total", f"{cc.fvcore_macs:,}", f"{cc.thop_macs:,} ({cc.ratio('thop'):.3f}x)",
                 f"{cc.torch_macs:,} ({cc.ratio('torch'):.3f}x)", ""])
    return head, rows


def comparison_rows(profiles: Sequence[ModelProfile]) -> Rows:
    """Metrics per config, each config after the first with its delta against the first."""
    base = profiles[0]
    metrics: list[tuple[str, Callable[[ModelProfile], float | None], str]] = [
        ("params", lambda p: p.params, ",.0f"),
        ("GMACs", lambda p: p.gmacs, ".3f"),
        ("GFLOPs", lambda p: p.gflops, ".3f"),
        ("latency median ms", lambda p: p.latency.median_ms if p.latency else None, ".2f"),
        ("latency p90 ms", lambda p: p.latency.p90_ms if p.latency else None, ".2f"),
        ("latency CV", lambda p: p.latency.cv if p.latency else None, ".3f"),
        ("param MB", lambda p: p.memory.param_bytes / 1e6, ".2f"),
        ("peak activation MB", lambda p: p.memory.peak_activation_bytes / 1e6, ".2f"),
        ("modules", lambda p: p.n_modules, ".0f"),
        ("rows", lambda p: len(p.layers), ".0f"),
    ]
    head = ["metric", base.label]
    for p in profiles[1:]:
        head += [p.label, "Δ vs first"]
    rows = []
    for name, get, spec in metrics:
        b = get(base)
        row = [name, _num(b, spec)]
        for p in profiles[1:]:
            v = get(p)
            row += [_num(v, spec), _delta(v, b, spec)]
        rows.append(row)
    return head, rows


def totals_text(p: ModelProfile) -> list[str]:
    """The totals under a model's table: counts, latency, memory and the load average."""
    lat = p.latency
    lines = [f"{p.gmacs:.3f} GMACs = {p.gflops:.3f} GFLOPs (2 x fvcore MACs, eval, {p.input_text}"
             f"{', deploy graph' if p.deploy else ''}); {p.params:,} params; {p.n_modules} modules (YOLOv5's "
             f"\"layers\") in {len(p.layers)} {'rows' if p.input_shape is None else 'parts'}"]
    how = p.row_latency
    if lat is not None and how is not None and how.method == "predicted":
        lines.append(f"latency {lat.median_ms:.2f} ms predicted by the latency table {how.table} ({how.backend}, "
                     f"{p.threads} thread(s), {p.device})")
    elif lat is not None:
        backend = f", {how.backend}" if how is not None and how.backend != "torch" else ""
        lines.append(f"latency {lat.median_ms:.2f} ms median, {lat.p90_ms:.2f} ms p90, CV {lat.cv:.3f} "
                     f"({lat.runs} runs after {lat.warmup_runs} warm-up, {p.threads} thread(s), {p.device}, "
                     f"{p.dtype}{backend})")
    if lat is not None and how is not None:
        lines.append(row_latency_text(how, lat.median_ms))
    if lat is None:
        lines.append("latency not measured")
    load = ", ".join(f"{x:.2f}" for x in p.loadavg) if p.loadavg else "n/a"
    cores = f" on {p.cores} core{'s' if p.cores != 1 else ''}" if p.cores else ""
    lines.append(f"memory: params {p.memory.param_bytes / 1e6:.2f} MB, peak activations "
                 f"{p.memory.peak_activation_bytes / 1e6:.2f} MB ({p.memory.method}); load average {load}{cores}")
    return lines


def row_latency_text(how: Any, total_ms: float) -> str:
    """How the rows' milliseconds relate to the total (profiles.profile.RowLatency)."""
    if how.method == "predicted":
        return (f"rows: the table's entries, {how.row_sum_ms:.2f} ms in all; total = {how.a:.4f} x row sum "
                f"{how.b:+.3f} ms ({how.fit} fit of the table"
                + (f", anchored to the device's speed at {how.anchored})" if how.anchored else ")"))
    ratio = how.row_sum_ms / total_ms if total_ms > 0 else float("nan")
    return (f"rows: timed {how.rows}, {how.row_sum_ms:.2f} ms in all = {ratio:.3f} x the total "
            f"(total = {how.a:.4f} x row sum)")


def compact(value: Any) -> str:
    """A `from` or an argument list on one line, as JSON without spaces (strings as they are; no `from`: -)."""
    if value is None:
        return "-"
    return json.dumps(jsonable(value), separators=(",", ":")) if not isinstance(value, str) else value


def args_text(args: Any, width: int | None = None) -> str:
    """A row's arguments as YOLOv5's summary and its users write them (`[None, 2, 'nearest']`), in at most
    `width` characters: nested lists are collapsed to `[...]` deepest first, then trailing items are
    left out (`[3, 16, ...]`); a number is never cut."""
    value = list(args) if isinstance(args, tuple) else args
    full = literal(value)
    if width is None or len(full) <= width:
        return full
    for depth in range(_depth(value) - 1, 0, -1):
        text = literal(value, depth)
        if len(text) <= width:
            return text
    if isinstance(value, list):
        for keep in range(len(value) - 1, 0, -1):
            text = "[" + ", ".join(literal(v, 0) for v in value[:keep]) + ", ...]"
            if len(text) <= width:
                return text
    return literal(value, 0)


def literal(value: Any, depth: int | None = None) -> str:
    """Python's literal form (tuples as lists); lists nested `depth` levels down are written `[...]`."""
    if isinstance(value, (list, tuple)):
        if depth is not None and depth <= 0:
            return "[...]"
        inner = None if depth is None else depth - 1
        return "[" + ", ".join(literal(v, inner) for v in value) + "]"
    return repr(value)


def _depth(value: Any) -> int:
    """List nesting: 0 for a scalar, 1 for [1, 2], 2 for [[1], 2]."""
    if isinstance(value, (list, tuple)):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _num(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _delta(v: float | None, base: float | None, spec: str) -> str:
    if v is None or base is None:
        return "-"
    d = v - base
    pct = f" ({d / base:+.1%})" if base else ""
    return format(d, "+" + spec) + pct
