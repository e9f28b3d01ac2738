"""How stable is a measured latency? Five `zoo profile` runs of one model, each a fresh process.

yolov5s at 320 px, 1 thread, for each backend (torch eager, onnxruntime): the whole model's median of
each run (30 timed runs after the warm-up, `zoo profile`'s protocol), their coefficient of variation
(sample standard deviation / mean) and range, and each run's own CV over its timed runs. This is the
noise a latency table's prediction is judged against (bench/lut_accuracy.py): a target of +-5% means
little on a machine whose repeated measurements spread by more.

Then the estimators of in-context row timing (profiles.incontext.ESTIMATORS: median, trimmed mean, minimum
of medians over interleaved blocks), compared on eager torch in one process: `--estimator-repeats`
timings of the model's rows in context (30 passes each), and for each estimator the CV across those
repeats of the model's total and the mean CV of its rows. The steadiest is the one to choose
(profiles.incontext.DEFAULT_ESTIMATOR).

Writes bench/results/latency_stability.{json,md} (run it alone on a quiet machine). `--quick` (two
runs, 5 timed runs each) writes to `--results` (default: a temporary folder), never the record.
Usage: python bench/latency_stability.py [--quick] [--config yolov5s] [--imgsz 320] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import RESULTS, machine, md_table  # noqa: E402


def profile_once(config: str, imgsz: int, backend: str, runs: int) -> dict:
    """One `zoo profile` in a fresh process (rows timed too, as a user runs it), its JSON."""
    cmd = [sys.executable, str(ROOT / "cli.py"), "profile", config, "--imgsz", str(imgsz), "--threads", "1",
           "--runs", str(runs), "--backend", backend, "--format", "json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}")
    (data,) = json.loads(done.stdout)  # one config: a list of one
    return {"median_ms": data["latency_ms"]["median"], "p90_ms": data["latency_ms"]["p90"],
            "cv": data["latency_ms"]["cv"], "row_sum_ms": data["latency"]["row_sum_ms"],
            "wall_s": time.perf_counter() - t0, "loadavg": data.get("loadavg")}


def compare_estimators(config: str, imgsz: int, repeats: int, runs: int) -> dict:
    """Each estimator's steadiness over `repeats` in-context timings of one model (eager torch, 1 thread)."""
    from profiles.backends import TorchBackend
    from profiles.incontext import ESTIMATORS
    from profiles.latency import TimingProtocol
    from zoo.builder import build_model
    from zoo.config import load_config

    backend = TorchBackend(threads=1)
    model = build_model(load_config(config), device="cpu")
    timings = [backend.time_in_context(model, (1, 3, imgsz, imgsz), TimingProtocol(runs=runs, warmup_runs=3,
                                                                                      warmup_s=0.5))
               for _ in range(repeats)]
    out = {}
    for name, fn in ESTIMATORS.items():
        totals = [fn([sum(p) for p in zip(*t.row_samples_ms)]) for t in timings]
        rows = [[fn(t.row_samples_ms[i]) for t in timings] for i in range(len(timings[0].rows_ms))]
        cv = lambda xs: statistics.stdev(xs) / statistics.fmean(xs) if len(xs) > 1 and statistics.fmean(xs) > 0 else 0.0
        out[name] = {"total_ms": totals, "total_cv": cv(totals), "mean_row_cv": statistics.fmean(cv(r) for r in rows)}
    return {"overhead_ms": timings[0].overhead_ms, "estimators": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (not the record)")
    ap.add_argument("--config", default="yolov5s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--backends", default="torch,onnxruntime")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--estimator-repeats", type=int, default=10, help="in-context timings per estimator (0: skip)")
    ap.add_argument("--results", help="where to write latency_stability.{json,md} (default bench/results; "
                                      "--quick: a temporary folder)")
    a = ap.parse_args()
    if a.quick:
        a.repeats, a.runs = min(a.repeats, 2), min(a.runs, 5)
    results = Path(a.results) if a.results else (Path(tempfile.mkdtemp(prefix="zoo-bench-")) if a.quick else RESULTS)
    cases, rows = [], []
    for backend in a.backends.split(","):
        runs = []
        for i in range(a.repeats):
            runs.append(profile_once(a.config, a.imgsz, backend, a.runs))
            print(f"{backend} run {i + 1}: {runs[-1]['median_ms']:.2f} ms", file=sys.stderr, flush=True)
        meds = [r["median_ms"] for r in runs]
        mean = statistics.fmean(meds)
        cv = statistics.stdev(meds) / mean if len(meds) > 1 else 0.0
        cases.append({"backend": backend, "runs": runs, "mean_ms": mean, "cv": cv,
                      "range": (max(meds) - min(meds)) / mean, "within_run_cv": statistics.fmean(r["cv"] for r in runs)})
        c = cases[-1]
        rows.append([backend, len(meds), " / ".join(f"{m:.2f}" for m in meds), f"{mean:.2f}", f"{cv:.2%}",
                     f"{c['range']:.2%}", f"{c['within_run_cv']:.3f}"])
    head = ["backend", "runs", "medians ms", "mean ms", "CV of medians", "range / mean", "mean within-run CV"]
    title = (f"Latency stability{' (QUICK SMOKE RUN: not the record)' if a.quick else ''}: {a.repeats} x "
             f"`zoo profile {a.config} --imgsz {a.imgsz} --threads 1 --runs {a.runs}`, each a fresh process")
    text = title + "\n\n" + md_table(head, rows)
    est = None
    if a.estimator_repeats > 0:
        est = compare_estimators(a.config, a.imgsz, min(a.estimator_repeats, 2) if a.quick else a.estimator_repeats,
                                 a.runs)
        text += (f"\n\nIn-context estimators ({a.estimator_repeats if not a.quick else 2} timings of {a.runs} passes in one "
                 f"process; hook cost {est['overhead_ms'] * 1e3:.1f} us per row)\n\n"
                 + md_table(["estimator", "totals ms", "CV of totals", "mean CV of rows"],
                            [[k, " / ".join(f"{x:.2f}" for x in v["total_ms"]), f"{v['total_cv']:.2%}",
                              f"{v['mean_row_cv']:.2%}"] for k, v in est["estimators"].items()]))
    results.mkdir(parents=True, exist_ok=True)
    (results / "latency_stability.json").write_text(json.dumps({"quick": a.quick, "config": a.config,
                                                                "imgsz": a.imgsz, "machine": machine(),
                                                                "cases": cases, "estimators": est}, indent=2) + "\n")
    (results / "latency_stability.md").write_text(text + "\n")
    print(text)
    print(f"wrote {results / 'latency_stability.json'} and .md")


if __name__ == "__main__":
    main()
