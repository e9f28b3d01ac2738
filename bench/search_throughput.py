"""Search throughput: candidates per minute, split into build / score / latency (and Optuna) time.

Usage: python bench/search_throughput.py [--config yolov5s --imgsz 320 --trials 12]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zoo  # noqa: E402
from search.objective import Budget, Measure  # noqa: E402
from search.space import load_settings  # noqa: E402
from search.study import SearchOptions, run_study  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _search_common import machine, md_table, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="yolov5s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    cfg = zoo.load_config(a.config)
    rows, data = [], {}
    for label, budget in (("latency (every candidate timed)", Budget(latency_ms=1e6)),
                          ("params only (no timing)", Budget(params_m=1e6))):
        with tempfile.TemporaryDirectory() as tmp:
            opts = SearchOptions(budget=budget, measure=Measure(imgsz=a.imgsz, runs=a.runs), trials=a.trials,
                                 settings=load_settings(cfg), storage=str(Path(tmp) / "j.log"), study_name="tp")
            t0 = time.perf_counter()
            info = run_study(cfg, opts)
            wall = time.perf_counter() - t0
            trials = [t for t in info.study.get_trials() if "timings_s" in t.user_attrs]
        parts = {k: sum(t.user_attrs["timings_s"].get(k, 0.0) for t in trials) for k in ("build", "score", "latency")}
        other = wall - sum(parts.values())
        per_min = 60 * len(trials) / wall
        rows.append([label, len(trials), f"{wall:.1f}", f"{per_min:.1f}",
                     *(f"{parts[k] / len(trials):.3f}" for k in ("build", "score", "latency")),
                     f"{other / len(trials):.3f}"])
        data[label] = {"trials": len(trials), "wall_s": wall, "per_minute": per_min,
                       "mean_s": {k: v / len(trials) for k, v in parts.items()}, "other_s": other / len(trials)}
    head = ["budget", "trials", "wall s", "candidates/min", "build s", "score s", "latency s", "other s (optuna, setup)"]
    table = (f"Search throughput on {a.config} at {a.imgsz} px, 1 thread, {a.runs} timed runs per candidate\n\n"
             + md_table(head, rows))
    write("search_throughput", {"config": a.config, "imgsz": a.imgsz, "runs": a.runs, "results": data,
                                "machine": machine()}, table)


if __name__ == "__main__":
    main()
