"""The only module that prints: profiles as a rich table, JSON, CSV or markdown; the small listings of
`zoo configs`, `zoo modules`, `zoo validate`; progress on stderr.

With `--format json` and no `--out`, stdout holds only the JSON; progress and warnings go to stderr.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from .crosscheck import CrossCheck
from .profile import LayerProfile, ModelProfile

FORMATS = ("table", "json", "csv", "md")
WIDE = 220  # columns when rendering a table to a file or a pipe


# ----------------------------------------------------------------------------- plain data

def summary_line(p: ModelProfile) -> str:
    """YOLOv5's summary line ("layers" is its count of modules)."""
    return (f"{p.name} summary{' (deploy)' if p.deploy else ''}: {p.n_modules} layers, {p.params} parameters, "
            f"{p.gflops:.2f} GFLOPs")


def layer_dict(layer: LayerProfile) -> dict[str, Any]:
    lat = layer.latency
    return {
        "index": layer.index, "from": _jsonable(layer.from_), "repeats": layer.repeats, "module": layer.module,
        "args": _jsonable(layer.args), "params": layer.params, "macs": layer.macs,
        "gmacs": layer.gmacs, "gflops": layer.gflops,
        "out_shape": list(layer.out_shape) if layer.out_shape is not None else None,
        "stride": layer.stride,
        "latency_ms": None if lat is None else {"median": round(lat.median_ms, 4), "p90": round(lat.p90_ms, 4)},
        "share": None if layer.share is None else round(layer.share, 4),
        "macs_share": round(layer.macs_share, 4), "uncounted_ops": dict(layer.uncounted),
        "uncounted": uncounted_text(layer.uncounted),
    }


def profile_dict(p: ModelProfile) -> dict[str, Any]:
    """SPEC §4's JSON object for one model (its keys at least, and a few more)."""
    return {
        "name": p.name, "scale": p.scale, "source": p.source, "summary": summary_line(p),
        "imgsz": p.imgsz, "batch": p.batch, "device": p.device, "dtype": p.dtype, "deploy": p.deploy,
        "params": p.params, "macs": p.macs, "gmacs": p.gmacs, "gflops": p.gflops,
        "latency_ms": None if p.latency is None else p.latency.as_dict(),
        "latency_runs": None if p.latency is None else p.latency.runs,
        "threads": p.threads, "loadavg": list(p.loadavg) if p.loadavg is not None else None,
        "memory": {**p.memory.as_dict(), "method": p.memory.method},
        "uncounted_ops": dict(p.uncounted_ops), "macs_by_operator": dict(p.by_operator),
        "cross_check": None if p.cross_check is None else cross_check_dict(p.cross_check),
        "lint": [{"row": w.row, "code": w.code, "text": w.text} for w in p.lint],
        "layers": [layer_dict(lay) for lay in p.layers],
    }


def cross_check_dict(cc: CrossCheck) -> dict[str, Any]:
    return {"fvcore_macs": cc.fvcore_macs, "thop_macs": cc.thop_macs, "torch_macs": cc.torch_macs,
            "by_family": [{"family": f.family, "fvcore": f.fvcore, "thop": f.thop, "torch": f.torch,
                           "why": f.why} for f in cc.families]}


def to_json(profiles: Sequence[ModelProfile]) -> str:
    """One object for one config, a list for several."""
    data = [profile_dict(p) for p in profiles]
    return json.dumps(data[0] if len(data) == 1 else data, indent=2)


CSV_FIELDS = ("model", "index", "from", "repeats", "module", "args", "params", "macs", "gmacs", "gflops",
              "out_shape", "stride", "latency_median_ms", "latency_p90_ms", "share", "uncounted")


def to_csv(profiles: Sequence[ModelProfile]) -> str:
    """One line per row of each model, then a `total` line per model."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for p in profiles:
        for lay in p.layers:
            lat = lay.latency
            w.writerow([p.label, lay.index, _compact(lay.from_), lay.repeats, lay.module, _compact(lay.args),
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
    parts: list[str] = []
    if len(profiles) > 1:
        parts += ["## Side by side (deltas against the first)", "", _md_table(*comparison_rows(profiles)), ""]
    for p in profiles:
        parts += [f"## {p.label}", "", f"`{summary_line(p)}`", "", _md_bullets(p), "",
                  _md_table(*layer_rows(p)), ""]
        if p.lint:
            parts += ["Shape lint warnings:", ""] + [f"- {lint_text(p.source, w)}" for w in p.lint] + [""]
        if p.uncounted_ops:
            parts += ["Uncounted ops (cost time, counted by no counter): "
                      + ", ".join(f"`{op}` x{n}" for op, n in p.uncounted_ops.items()), ""]
        if p.cross_check is not None:
            parts += ["Cross-check (MACs):", "", _md_table(*cross_check_rows(p.cross_check)), ""]
    return "\n".join(parts).rstrip() + "\n"


# ----------------------------------------------------------------------------- table rows (shared)

def layer_rows(p: ModelProfile) -> tuple[list[str], list[list[str]]]:
    timed = p.latency is not None
    head = ["#", "from", "n", "params", "module", "args", "out shape", "stride", "GMACs", "GFLOPs"]
    head += ["ms", "p90 ms", "share"] if timed else ["share (MACs)"]
    head += ["uncounted"]
    rows = []
    for lay in p.layers:
        row = [str(lay.index), _compact(lay.from_), str(lay.repeats), f"{lay.params:,}", lay.module,
               _short(_compact(lay.args), 44), "x".join(map(str, lay.out_shape[1:])) if lay.out_shape else "-",
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


def uncounted_text(ops: dict[str, int]) -> str:
    """{'aten::silu': 2, 'aten::max_pool2d': 3} -> 'silu×2, max_pool2d×3' (the ops a row leaves uncounted)."""
    return ", ".join(f"{op.split('::')[-1]}×{n}" for op, n in ops.items())


def lint_text(source: str, w: Any) -> str:
    """One lint warning as `zoo validate` words it: where, then what."""
    where = f"{source}: row {w.row}" if getattr(w, "row", None) is not None else source
    return f"{where}: {w.text}"


def cross_check_rows(cc: CrossCheck) -> tuple[list[str], list[list[str]]]:
    head = ["op family", "fvcore", "thop", "torch counter", "why they differ"]
    rows = [[f.family, f"{f.fvcore:,}", f"{f.thop:,}", f"{f.torch:,}", "agree" if f.agree else f.why]
            for f in cc.families]
    rows.append(["total", f"{cc.fvcore_macs:,}", f"{cc.thop_macs:,} ({cc.ratio('thop'):.3f}x)",
                 f"{cc.torch_macs:,} ({cc.ratio('torch'):.3f}x)", ""])
    return head, rows


def comparison_rows(profiles: Sequence[ModelProfile]) -> tuple[list[str], list[list[str]]]:
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
    lat = p.latency
    lines = [f"{p.gmacs:.3f} GMACs = {p.gflops:.3f} GFLOPs (2 x fvcore MACs, eval, {p.batch}x{p.imgsz}x{p.imgsz}"
             f"{', deploy graph' if p.deploy else ''}); {p.params:,} params"]
    if lat is not None:
        lines.append(f"latency {lat.median_ms:.2f} ms median, {lat.p90_ms:.2f} ms p90, CV {lat.cv:.3f} "
                     f"({lat.runs} runs after {lat.warmup_runs} warm-up, {p.threads} thread(s), {p.device}, {p.dtype})")
    else:
        lines.append("latency not measured (--no-latency)")
    load = ", ".join(f"{x:.2f}" for x in p.loadavg) if p.loadavg else "n/a"
    lines.append(f"memory: params {p.memory.param_bytes / 1e6:.2f} MB, peak activations "
                 f"{p.memory.peak_activation_bytes / 1e6:.2f} MB ({p.memory.method}); load average {load}")
    return lines


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
        console.print(summary_line(p), highlight=False)
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
    text = {"json": to_json, "csv": to_csv, "md": to_markdown}[fmt](profiles)
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
            print(f"warning: {lint_text(p.source, w)}", file=sys.stderr, flush=True)


def print_error(text: str, *, label: str = "error") -> None:
    """`error: {text}` as one line on stderr (the CLI's way to report a ConfigError without a traceback)."""
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    sys.stderr.write(f"{label}: {line}\n")
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
        print(f"warning: {lint_text(cfg.path, w)}", file=sys.stderr, flush=True)


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


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _md_bullets(p: ModelProfile) -> str:
    return "\n".join(f"- {line}" for line in totals_text(p))


def _compact(value: Any) -> str:
    return json.dumps(_jsonable(value), separators=(",", ":")) if not isinstance(value, str) else value


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def _num(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _delta(v: float | None, base: float | None, spec: str) -> str:
    if v is None or base is None:
        return "-"
    d = v - base
    pct = f" ({d / base:+.1%})" if base else ""
    return format(d, "+" + spec) + pct

