"""Acceptance run: `zoo search` on yolov5s vs every uniform YOLOv5 scaling, one budget, one run.

Budget = 80% of yolov5s's measured latency (--imgsz 320 --threads 1). The search runs 60 trials; then
best.yaml and every uniform scaling (depth 0.25/0.33/0.5 x width 0.25..0.50 step 0.05) are measured
with the same protocol, side by side, and scored (MAE, default weights and scope).
Usage: python bench/search_vs_scaling.py [--trials 60 --imgsz 320]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zoo  # noqa: E402
from profiles.latency import measure_latency  # noqa: E402
from search import Budget, Measure, SearchOptions, mae_score, run_search  # noqa: E402
from search.space import load_settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _search_common import RESULTS, machine, md_table, write  # noqa: E402

DEPTHS = (0.25, 0.33, 0.5)
WIDTHS = (0.25, 0.30, 0.35, 0.40, 0.45, 0.50)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--runs", type=int, default=60, help="timed runs of the side-by-side measurements")
    a = ap.parse_args()
    t0 = time.time()
    kw = dict(imgsz=a.imgsz, threads=1, runs=a.runs, warmup_s=1.0)
    base = zoo.build_model("yolov5s")
    base_ms = measure_latency(base, **kw).median_ms
    budget = round(0.8 * base_ms, 2)
    print(f"yolov5s {base_ms:.2f} ms -> budget {budget} ms", flush=True)
    cfg = zoo.load_config("yolov5s")
    out = RESULTS / "search_vs_scaling_run"
    opts = SearchOptions(budget=Budget(latency_ms=budget), measure=Measure(imgsz=a.imgsz, threads=1),
                         settings=load_settings(cfg), trials=a.trials, study_name=f"yolov5s-{a.imgsz}-{budget}ms",
                         storage=str(out / "journal.log"), out=str(out))
    result = run_search(cfg, opts)
    t_search = time.time() - t0
    rows, data = [], []
    raw = dict(zoo.yamlio.read_file(zoo.config.CONFIG_DIR / "yolov5.yaml").data)
    raw.pop("scales")
    candidates = [("search best", str(out / "best.yaml"))] if result.best else []
    candidates += [(f"yolov5 d{d} w{w:.2f}", {**raw, "depth_multiple": d, "width_multiple": w})
                   for d in DEPTHS for w in WIDTHS]
    for name, src in candidates:
        m = zoo.build_model(src)
        lat = measure_latency(m, **kw)
        s = mae_score(m).score
        meets = lat.median_ms <= budget
        data.append({"name": name, "score": s, "latency_ms": lat.as_dict(), "meets_budget": meets,
                     "params": sum(p.numel() for p in m.parameters())})
        rows.append([name, f"{s:.2f}", f"{lat.median_ms:.2f}", f"{lat.cv:.3f}", "yes" if meets else "no",
                     f"{data[-1]['params']:,}"])
        print(rows[-1], flush=True)
    best = data[0] if result.best else None
    uniform_ok = [d for d in data[1:] if d["meets_budget"]]
    top_uniform = max(uniform_ok, key=lambda d: d["score"]) if uniform_ok else None
    verdict = (best is not None and best["latency_ms"]["median"] <= 1.05 * budget  # 5% noise allowed
               and all(best["score"] > d["score"] for d in uniform_ok))
    head = ["config", "MAE score", "latency ms", "cv", f"meets {budget} ms", "params"]
    summary = (f"yolov5s at {a.imgsz} px, 1 thread: {base_ms:.2f} ms; budget 80% = {budget} ms; "
               f"search {a.trials} trials in {t_search:.0f} s ({result.n_feasible} feasible).\n"
               f"Search best: score {best['score']:.2f} at {best['latency_ms']['median']:.2f} ms; " if best else "no best; ")
    if top_uniform:
        summary += (f"best uniform scaling within budget: {top_uniform['name']} score {top_uniform['score']:.2f} at "
                    f"{top_uniform['latency_ms']['median']:.2f} ms. ")
    summary += f"Search beats every uniform scaling that meets the budget: {'YES' if verdict else 'NO'}"
    table = summary + "\n\n" + md_table(head, rows)
    write("search_vs_scaling", {"imgsz": a.imgsz, "base_ms": base_ms, "budget_ms": budget, "trials": a.trials,
                                "search_report": result.report, "rows": data, "search_beats_uniform": verdict,
                                "machine": machine(), "wall_s": time.time() - t0}, table)


if __name__ == "__main__":
    main()
