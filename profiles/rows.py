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
               short(compact(lay.args), 44), "x".join(map(str, lay.out_shape[1:])) if lay.out_shape else "-",
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
    lines = [f"{p.gmacs:.3f} GMACs = {p.gflops:.3f} GFLOPs (2 x fvcore MACs, eval, {p.batch}x{p.imgsz}x{p.imgsz}"
             f"{', deploy graph' if p.deploy else ''}); {p.params:,} params"]
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
        lines.append("latency not measured (--no-latency)")
    load = ", ".join(f"{x:.2f}" for x in p.loadavg) if p.loadavg else "n/a"
    lines.append(f"memory: params {p.memory.param_bytes / 1e6:.2f} MB, peak activations "
                 f"{p.memory.peak_activation_bytes / 1e6:.2f} MB ({p.memory.method}); load average {load}")
    return lines


def row_latency_text(how: Any, total_ms: float) -> str:
    """How the rows' milliseconds relate to the total (profiles.profile.RowLatency)."""
    if how.method == "predicted":
        return (f"rows: the table's entries, {how.row_sum_ms:.2f} ms in all; total = {how.a:.4f} x row sum "
                f"{how.b:+.3f} ms ({how.fit} fit of the table)")
    ratio = how.row_sum_ms / total_ms if total_ms > 0 else float("nan")
    return (f"rows: timed {how.rows}, {how.row_sum_ms:.2f} ms in all = {ratio:.3f} x the total "
            f"(total = {how.a:.4f} x row sum)")


def compact(value: Any) -> str:
    """A `from` or an argument list on one line, as JSON without spaces (strings as they are)."""
    return json.dumps(jsonable(value), separators=(",", ":")) if not isinstance(value, str) else value


def short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _num(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _delta(v: float | None, base: float | None, spec: str) -> str:
    if v is None or base is None:
        return "-"
    d = v - base
    pct = f" ({d / base:+.1%})" if base else ""
    return format(d, "+" + spec) + pct
