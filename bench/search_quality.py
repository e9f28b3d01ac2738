"""Search quality: best MAE score under one budget at equal trials, TPE vs random, 5 seeds.

The budget is params (80% of the base's), so every trial costs a build and a score only and the
comparison measures the samplers, not latency noise. Usage: python bench/search_quality.py [--trials 30]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zoo  # noqa: E402
from search.export import feasible_trials, trial_score  # noqa: E402
from search.objective import Budget, Measure  # noqa: E402
from search.space import load_settings  # noqa: E402
from search.study import SearchOptions, run_study  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _search_common import machine, md_table, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="yolov5n")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--fraction", type=float, default=0.8)
    a = ap.parse_args()
    cfg = zoo.load_config(a.config)
    base_params = sum(p.numel() for p in zoo.build_model(cfg).parameters())
    budget = Budget(params_m=a.fraction * base_params / 1e6)
    results: dict[str, list[float]] = {}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in ("tpe", "random"):
            for seed in range(a.seeds):
                opts = SearchOptions(budget=budget, measure=Measure(imgsz=320), settings=load_settings(cfg),
                                     trials=a.trials, sampler=sampler, seed=seed, max_uniform=0,
                                     storage=str(Path(tmp) / f"{sampler}{seed}.log"), study_name="q")
                info = run_study(cfg, opts)
                ok = feasible_trials(info.study.get_trials())
                results.setdefault(sampler, []).append(trial_score(ok[0]) if ok else float("nan"))
                print(sampler, seed, results[sampler][-1], flush=True)
    rows = [[s, a.trials, *(f"{v:.2f}" for v in vs), f"{statistics.mean(vs):.2f}", f"{statistics.pstdev(vs):.2f}"]
            for s, vs in results.items()]
    ratio = statistics.mean(results["tpe"]) / statistics.mean(results["random"])
    head = ["sampler", "trials", *(f"seed {i}" for i in range(a.seeds)), "mean", "sd"]
    table = (f"Search quality: best MAE score of {a.config} under {budget.params_m:.3f} M params "
             f"({a.fraction:.0%} of the base), base enqueued only\n\n" + md_table(head, rows) +
             f"\n\nTPE / random mean best score: {ratio:.4f}; TPE wins {sum(t > r for t, r in zip(results['tpe'], results['random']))}"
             f"/{a.seeds} seeds; {time.time() - t0:.0f} s")
    write("search_quality", {"config": a.config, "trials": a.trials, "budget_params_m": budget.params_m,
                             "scores": results, "tpe_over_random": ratio, "machine": machine()}, table)


if __name__ == "__main__":
    main()
