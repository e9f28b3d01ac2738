"""Counting benchmark: zoo's totals against fvcore, thop and torch.utils.flop_counter run by hand, and
the wall time of `profile_model(latency=False)` against running the three counters directly.

    .venv/bin/python bench/counting.py [--imgsz 640] [--only yolov5n,yolov5s ...]

Writes bench/results/counting.json and bench/results/counting.md; prints the markdown table. With
`--only`, the new records are merged into the existing results (same config replaced, others kept), so
one new family can be measured without re-running the whole table; the merged run is noted in the table.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zoo  # noqa: E402
from profiles import profile_model  # noqa: E402

RESULTS = ROOT / "bench" / "results"

# What YOLOv5 v7.0 prints at build time (thop on a 32 px image, x400): SPEC §4 / issue 2.
YOLOV5_PRINTED = {"yolov5n": 4.56, "yolov5s": 16.62, "yolov5m": 49.23, "yolov5l": 109.58, "yolov5x": 206.31}


def by_hand(model: torch.nn.Module, imgsz: int) -> dict[str, Any]:
    """The three counters called directly, as a user would, each timed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import thop
        from fvcore.nn import FlopCountAnalysis
        from torch.utils.flop_counter import FlopCounterMode

        x = torch.zeros(1, model.config.ch, imgsz, imgsz)
        model.eval()
        out: dict[str, Any] = {}
        t0 = time.perf_counter()
        try:
            fa = (FlopCountAnalysis(model, x).unsupported_ops_warnings(False)
                  .uncalled_modules_warnings(False).tracer_warnings("none"))
            out["fvcore_macs"] = int(fa.total())
        except Exception as e:  # record, do not hide: some heads may not trace without a wrapper
            out["fvcore_macs"] = None
            out["fvcore_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        t1 = time.perf_counter()
        with torch.no_grad():
            macs, _ = thop.profile(copy.deepcopy(model), inputs=(x,), verbose=False)
        out["thop_macs"] = int(macs)
        t2 = time.perf_counter()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(x)
        out["torch_macs"] = int(fc.get_total_flops()) // 2
        t3 = time.perf_counter()
    out["time_s"] = {"fvcore": t1 - t0, "thop": t2 - t1, "torch": t3 - t2, "total": t3 - t0}
    return out


def bench_one(name: str, imgsz: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    model = zoo.build_model(name)
    build_s = time.perf_counter() - t0
    hand = by_hand(model, imgsz)
    t1 = time.perf_counter()
    p = profile_model(model, imgsz=imgsz, latency=False)
    zoo_s = time.perf_counter() - t1
    cc = p.cross_check
    rec: dict[str, Any] = {
        "config": name, "params": p.params, "imgsz": imgsz, "build_s": round(build_s, 3),
        "zoo": {"macs": p.macs, "gflops": p.gflops, "thop_macs": cc.thop_macs if cc else None,
                "torch_macs": cc.torch_macs if cc else None, "time_s": round(zoo_s, 3),
                "uncounted_ops": sum(p.uncounted_ops.values())},
        "direct": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in hand.items() if k != "time_s"},
        "direct_time_s": {k: round(v, 3) for k, v in hand["time_s"].items()},
        "yolov5_printed_gflops": YOLOV5_PRINTED.get(name) if imgsz == 640 else None,
    }
    rec["agree"] = {"fvcore": hand["fvcore_macs"] == p.macs,
                    "thop": cc is not None and hand["thop_macs"] == cc.thop_macs,
                    "torch": cc is not None and hand["torch_macs"] == cc.torch_macs}
    return rec


def gf(macs: int | None) -> str:
    return "-" if macs is None else f"{2 * macs / 1e9:.2f}"


def markdown(records: list[dict[str, Any]], imgsz: int) -> str:
    head = ["config", "params", "zoo GFLOPs", "fvcore", "thop", "torch counter", "YOLOv5 prints", "zoo vs print",
            "same as direct", "zoo profile s", "3 counters s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['config']} | error: {r['error']} |" + " |" * (len(head) - 2))
            continue
        z, d = r["zoo"], r["direct"]
        ref = r["yolov5_printed_gflops"]
        vs = f"{(z['gflops'] / ref - 1):+.1%}" if ref else "-"
        agree = "yes" if all(r["agree"].values()) else ", ".join(k for k, v in r["agree"].items() if not v) + " differ"
        lines.append("| " + " | ".join([
            r["config"], f"{r['params']:,}", f"{z['gflops']:.2f}", gf(d["fvcore_macs"]), gf(d["thop_macs"]),
            gf(d["torch_macs"]), f"{ref:.2f}" if ref else "-", vs, agree, f"{z['time_s']:.2f}",
            f"{r['direct_time_s']['total']:.2f}"]) + " |")
    return "\n".join(lines)


def only_names(values: list[str] | None) -> list[str]:
    """`--only a,b c` -> [a, b, c], first occurrence kept."""
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def merge(old: dict[str, Any], records: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """`records` into an earlier result: a config measured again replaces its record, the others stay;
    records follow the built-in order so the table reads the same however it was assembled."""
    by_config = {r["config"]: r for r in old.get("records", [])}
    by_config.update({r["config"]: r for r in records})
    order = {n: i for i, n in enumerate(zoo.builtin_names())}
    merged = sorted(by_config.values(), key=lambda r: (order.get(r["config"], len(order)), r["config"]))
    meta = dict(old["meta"])
    meta["merged_runs"] = [*meta.get("merged_runs", []), run]
    return {"meta": meta, "records": merged}


def note(meta: dict[str, Any]) -> str:
    text = (f"Counting at {meta['imgsz']} px, batch 1, eval mode, CPU (torch {meta['torch']}, {meta['cpu_count']} "
            f"cores, load average at the end {', '.join(f'{x:.1f}' for x in meta['loadavg_end'])}).\n"
            "zoo GFLOPs = 2 x fvcore MACs (BN included). thop counts BN at 4/element (fvcore 2) and the torch "
            "counter counts neither BN nor upsample; 'same as direct': zoo's three totals equal the counters run "
            "by hand. 'zoo profile s' is profile_model(latency=False): fvcore + thop + torch counter + one "
            "shape/memory pass; '3 counters s' runs the three counters by hand. 'YOLOv5 prints' is thop on a "
            "32 px image x400.\n")
    for run in meta.get("merged_runs", []):
        text += (f"Measured later with `--only` and merged ({run['date']}, torch {run['torch']}, load average "
                 f"at the end {', '.join(f'{x:.1f}' for x in run['loadavg_end'])}): "
                 f"{', '.join(run['configs'])}.\n")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--only", nargs="*", metavar="CFG[,CFG]",
                    help="configs to run, merged into the existing results (default: every built-in, replacing them)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    only = only_names(args.only)
    names = only or list(zoo.builtin_names())
    old_path = args.out_dir / "counting.json"
    old = json.loads(old_path.read_text()) if only and old_path.exists() else None
    if old is not None and old["meta"]["imgsz"] != args.imgsz:
        print(f"error: {old_path} was measured at {old['meta']['imgsz']} px, not {args.imgsz}: "
              "re-run every config or use another --out-dir", file=sys.stderr)
        return 2
    records = []
    warm = zoo.build_model("yolov5n")  # one-time costs (imports, first trace) out of the timings
    by_hand(warm, 64)
    profile_model(warm, imgsz=64, latency=False)
    t0 = time.perf_counter()
    for name in names:
        try:
            rec = bench_one(name, args.imgsz)
        except Exception as e:  # a config another branch is still writing: record and go on
            rec = {"config": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        records.append(rec)
        print(f"{name}: {'error' if 'error' in rec else 'ok'}", file=sys.stderr, flush=True)
    meta = {"imgsz": args.imgsz, "torch": torch.__version__, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "loadavg_end": list(os.getloadavg()), "wall_s": round(time.perf_counter() - t0, 1)}
    if old is not None:
        run = {"configs": names, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "torch": meta["torch"], "loadavg_end": meta["loadavg_end"], "wall_s": meta["wall_s"]}
        result = merge(old, records, run)
    else:
        result = {"meta": meta, "records": records}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "counting.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result["records"], args.imgsz)
    (args.out_dir / "counting.md").write_text("# Counting benchmark\n\n" + note(result["meta"]) + "\n" + table + "\n")
    print(markdown(records, args.imgsz) if old is not None else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
