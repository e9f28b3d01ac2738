"""Search throughput: candidates per minute on one worker, and where a candidate's time goes.

Each case is a fresh study on the default journal storage with an empty row-cost cache (so the first
trials pay for computing their rows' costs), run to --trials with the default sampler and objective:
yolov5s and yolov8s at 320 px under a params budget and under a GFLOPs budget (80% of the base), and
yolov5s under the GFLOPs budget to --long trials (the rate over the last 1,000 trials shows whether
the sampler's own cost grows). Per-candidate time is split into sampler (ask + tell, in memory), claim
(the shared study's lock and one write), plan, costs (row costs: cached lookups after the first sight
of a row), record (one grouped write) and other (progress, syncs, recovery).
Usage: python bench/search_throughput.py [--trials 2000 --long 10000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402

import zoo  # noqa: E402
from profiles.rowcosts import CostCache  # noqa: E402
from search import Budget, Measure, SearchOptions, load_settings  # noqa: E402
from search.evaluate import candidate_costs, make_scoring, plan_candidate  # noqa: E402
from search.run import run_study  # noqa: E402
from search.space import build_space  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _search_common import machine, md_table, write  # noqa: E402

PARTS = ("sampler", "claim", "plan", "costs", "record")


def base_costs(name: str, imgsz: int) -> tuple[float, float]:
    """(params in millions, GFLOPs) of the base config at `imgsz`, from its plan."""
    cfg = zoo.load_config(name)
    cache = CostCache()
    space = build_space(cfg, load_settings(cfg), prober=cache)
    measure = Measure(imgsz=imgsz)
    scoring = make_scoring(space, Budget(gflops=1e9), measure, cache)
    c = candidate_costs(plan_candidate(space, space.uniform_params(1.0), imgsz=imgsz, prober=cache), cache, scoring)
    return c.params / 1e6, c.gflops


def run_case(name: str, imgsz: int, budget: Budget, trials: int) -> dict:
    cfg = zoo.load_config(name)
    marks: list[float] = []
    parts = dict.fromkeys(PARTS, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        opts = SearchOptions(budget=budget, measure=Measure(imgsz=imgsz), settings=load_settings(cfg), trials=trials,
                             storage=str(Path(tmp) / "journal.log"), study_name="tp", out=tmp)
        t0 = time.perf_counter()

        def on_trial(ev) -> None:
            marks.append(time.perf_counter() - t0)
            for k in PARTS:
                parts[k] += ev.timings_s.get(k, 0.0)

        cpu0 = time.process_time()
        info = run_study(cfg, opts, on_trial=on_trial)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        best = max((t.values[0] for t in info.study.get_trials(deepcopy=False)
                    if t.state.name == "COMPLETE" and t.user_attrs.get("feasible")), default=None)
    n = len(marks)
    last = min(1000, n - 1)
    tail_rate = 60 * last / (marks[-1] - marks[-1 - last]) if last > 0 else float("nan")
    per = {k: v / n for k, v in parts.items()}
    per["other"] = wall / n - sum(per.values())
    return {"config": name, "imgsz": imgsz, "budget": budget.as_dict(), "trials": n, "wall_s": wall, "cpu_s": cpu,
            "per_minute": 60 * n / wall, "last_1000_per_minute": tail_rate, "mean_ms": {k: 1000 * v for k, v in per.items()},
            "best_score": best, "objective": info.scoring.objective.name}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--long", type=int, default=10000, help="trials of the long run (0: skip it)")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--fraction", type=float, default=0.8)
    a = ap.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    load0 = os.getloadavg()
    cases = []
    for name in ("yolov5s", "yolov8s"):
        params_m, gflops = base_costs(name, a.imgsz)
        cases.append((name, Budget(params_m=round(a.fraction * params_m, 3)), a.trials))
        cases.append((name, Budget(gflops=round(a.fraction * gflops, 2)), a.trials))
    if a.long:
        _, gflops = base_costs("yolov5s", a.imgsz)
        cases.append(("yolov5s", Budget(gflops=round(a.fraction * gflops, 2)), a.long))
    results = []
    for name, budget, trials in cases:
        r = run_case(name, a.imgsz, budget, trials)
        results.append(r)
        print(f"{name} {budget.as_dict()} {trials}: {r['per_minute']:.0f}/min (last 1000: "
              f"{r['last_1000_per_minute']:.0f}/min), wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s", flush=True)
    rows = []
    for r in results:
        b = {k: v for k, v in r["budget"].items() if v is not None}
        ms = r["mean_ms"]
        rows.append([r["config"], ", ".join(f"{k} {v:g}" for k, v in b.items()), r["trials"], f"{r['wall_s']:.1f}",
                     f"{r['cpu_s']:.1f}", f"{r['per_minute']:,.0f}", f"{r['last_1000_per_minute']:,.0f}",
                     *(f"{ms[k]:.2f}" for k in (*PARTS, "other"))])
    head = ["config", "budget", "trials", "wall s", "cpu s", "candidates/min", "last 1,000: /min",
            *(f"{k} ms" for k in (*PARTS, "other"))]
    load1 = os.getloadavg()
    table = (f"Search throughput, one worker, {a.imgsz} px, default sampler and objective "
             f"({results[0]['objective']}), journal storage, empty row-cost cache at the start of each run; "
             f"load average {load0[0]:.2f} before, {load1[0]:.2f} after\n\n" + md_table(head, rows))
    write("search_throughput", {"imgsz": a.imgsz, "results": results, "loadavg_before": load0, "loadavg_after": load1,
                                "machine": machine()}, table)


if __name__ == "__main__":
    main()
