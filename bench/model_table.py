"""Every built-in config at one size: params, GFLOPs and latency, train form and deploy form.

Writes bench/results/model_table.json and .md. Latency uses the profiles protocol (1 thread by default,
warm-up by time and count, median of >= 20 runs); everything is measured in this one run.
Usage: python bench/model_table.py [--imgsz 640] [--runs 20] [--only yolov5s,yolov8s]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import zoo
from profiles.flops import count_flops
from profiles.latency import measure_latency

RESULTS = Path(__file__).parent / "results"


def measure(name: str, imgsz: int, runs: int, threads: int) -> dict:
    model = zoo.build_model(name).eval()
    row: dict = {"config": name, "params": sum(p.numel() for p in model.parameters())}
    row["gflops"] = count_flops(model, imgsz=imgsz).gflops
    row["latency_ms"] = measure_latency(model, imgsz=imgsz, threads=threads, runs=runs).median_ms
    zoo.deploy(model)
    row["deploy_params"] = sum(p.numel() for p in model.parameters())
    row["deploy_gflops"] = count_flops(model, imgsz=imgsz).gflops
    lat = measure_latency(model, imgsz=imgsz, threads=threads, runs=runs)
    row["deploy_latency_ms"], row["deploy_latency_cv"] = lat.median_ms, lat.cv
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", help="comma-separated config names")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else sorted(zoo.builtin_names())
    rows = []
    for name in names:
        t0 = time.perf_counter()
        rows.append(measure(name, args.imgsz, args.runs, args.threads))
        print(f"{name}: {rows[-1]} ({time.perf_counter() - t0:.0f} s)", flush=True)
    meta = {"imgsz": args.imgsz, "runs": args.runs, "threads": args.threads, "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "model_table.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"Built-in configs at {args.imgsz} px, batch 1, CPU, {args.threads} thread(s), median of "
             f"{args.runs} runs (torch {torch.__version__}).", "",
             "| config | params | GFLOPs | latency ms | deploy params | deploy GFLOPs | deploy latency ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['params']:,} | {r['gflops']:.2f} | {r['latency_ms']:.1f} | "
                     f"{r['deploy_params']:,} | {r['deploy_gflops']:.2f} | {r['deploy_latency_ms']:.1f} |")
    (RESULTS / "model_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
